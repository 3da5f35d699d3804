//! Committing a send's result: success (outputs, or waiting for the callback), or a failure that
//! retries with backoff up to `max_attempts` and then follows `on_failure`. How the activity
//! then ends goes through `ops::outcomes::end`, as for every other way an activity ends.

use chrono::{DateTime, Utc};
use diesel_async::{AsyncConnection, AsyncPgConnection};
use serde_json::{json, Map, Value};

use super::request::{claim_next_of_account, Claimed, Senders};
use super::timeout_of;
use super::transport::{is_success, Outcome};
use crate::db::audit::{self, NewEvent};
use crate::db::models::processes::DefinitionCache;
use crate::db::models::webhook_attempts::{self as attempts, Sent};
use crate::domain::engine::{AttemptState, Node};
use crate::ops::outcomes::{self, Ending, Then};
use crate::ops::OpError;

/// Records the result; with `take_next`, in the same transaction, the account's next due attempt
/// is leased to this worker and comes back for the caller to send next.
pub async fn complete(
    conn: &mut AsyncPgConnection,
    senders: Senders<'_>,
    attempt_id: i64,
    worker: &str,
    outcome: Outcome,
    take_next: bool,
    now: DateTime<Utc>,
) -> Result<Option<Claimed>, OpError> {
    conn.transaction(async |conn| {
        let account_id = record(conn, senders.2, attempt_id, worker, outcome, now).await?;
        if !take_next {
            return Ok(None);
        }
        // In a savepoint: a next attempt that cannot be leased must not undo this result (it
        // would be sent again); the claim loop meets it on its own later.
        match conn.transaction(async |conn| claim_next_of_account(conn, worker, senders, account_id, now).await).await {
            Ok(next) => Ok(next),
            Err(e) => {
                tracing::warn!(error = ?e, account_id, "taking the account's next webhook attempt failed; the claim loop will");
                Ok(None)
            }
        }
    })
    .await
}

fn new_state(ok: bool, callback: bool) -> AttemptState {
    match (ok, callback) {
        (false, _) => AttemptState::Failed,
        (true, true) => AttemptState::Sent,
        (true, false) => AttemptState::Succeeded,
    }
}

/// Records a send's result in the caller's transaction; returns the attempt's account.
async fn record(
    conn: &mut AsyncPgConnection,
    defs: &DefinitionCache,
    attempt_id: i64,
    worker: &str,
    outcome: Outcome,
    now: DateTime<Utc>,
) -> Result<i64, OpError> {
    // One lock order with callbacks: the release first, then the attempt (read again under its
    // lock, so a callback that came first is seen and its outcome stands).
    let release_id = attempts::release_of(conn, attempt_id).await?;
    let r = crate::db::engine::lock_release(conn, release_id).await?;
    let attempt = attempts::lock(conn, attempt_id).await?;
    if attempt.state != AttemptState::Sending || attempt.lease_owner.as_deref() != Some(worker) {
        // Taken over by another worker, voided meanwhile, or already decided by its callback
        // (a receiver may call back before it answers): its result is not ours to record.
        return Ok(r.account_id);
    }
    let ok = is_success(&outcome);
    // `claim` gave the attempt a callback token exactly when its activity completes by callback.
    let callback = ok && attempt.has_callback;
    let state = new_state(ok, callback);
    let body = outcome.body.as_ref().map(|b| b.chars().take(10_000).collect::<String>());
    let sent = Sent {
        state,
        status: outcome.status.map(i32::from),
        body: body.as_deref(),
        error: outcome.error.as_deref(),
        duration_ms: outcome.duration_ms,
        finished_at: (!callback).then_some(now),
    };
    attempts::record(conn, attempt_id, sent, now).await?;
    let (phase, activity) = (attempt.phase_key.as_str(), attempt.activity_key.as_str());
    if !crate::domain::release::in_flight(r.state(), r.status()) {
        return Ok(r.account_id);
    }
    let row = crate::db::engine::activity(conn, r.id, (phase, activity)).await?;
    if row.node() != Node::Running {
        return Ok(r.account_id);
    }
    let event =
        NewEvent { reason: outcome.error.clone(), ..NewEvent::release(&r, format!("system:worker:{worker}"), format!("webhook.{state}")) }
            .with_subject(format!("activity:{phase}.{activity}"))
            .with_details(json!({"attempt": row.attempts, "status": outcome.status}));
    audit::append(conn, event, now).await?;
    let by = format!("system:worker:{worker}");
    let def = defs.pinned(conn, &r).await?;
    if callback {
        let adef = def.activity(phase, activity).ok_or(OpError::NotFound)?;
        let deadline = now + timeout_of(adef);
        crate::db::engine::await_callback(conn, r.id, (phase, activity), deadline).await?;
        crate::db::engine::due_by(conn, &r, deadline).await?;
        return Ok(r.account_id);
    }
    if !ok {
        let message = outcome.error.clone().unwrap_or_else(|| "failed".into());
        let ending = Ending::Failed { message, permanent: outcome.permanent };
        outcomes::end(conn, (&r, &def), &row, ending, &by, Then::Engine, now).await?;
        return Ok(r.account_id);
    }
    let outputs: Map<String, Value> = outcome.outputs.clone().unwrap_or_default();
    outcomes::end(conn, (&r, &def), &row, Ending::Succeeded { outputs }, &by, Then::Caller, now).await?;
    // The release is locked already: move it on here, so the next activity starts in this
    // transaction instead of waiting for an engine pass. In a savepoint: if that fails, the
    // success stays recorded (no re-send) and the engine pass retries.
    let (release_id, account_id) = (r.id, r.account_id);
    if let Err(e) = conn.transaction(async |conn| crate::engine::advance(conn, defs, r, now).await).await {
        tracing::warn!(error = ?e, release_id, "advancing after a webhook success failed; the engine will retry");
        crate::db::wake::schedule_now(conn, release_id, now).await?;
    }
    Ok(account_id)
}
