//! How an automated activity ends: success (outputs, artifacts, deployments), a failed attempt
//! (retry with backoff, then `on_failure`), a callback, and a subprocess's child finishing.

use chrono::{DateTime, TimeDelta, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use serde::Deserialize;
use serde_json::{json, Map, Value};

use crate::db::audit::{self, NewEvent};
use crate::db::models::releases::activity_by_key;
use crate::db::models::releases::{self as rows, Release, ReleaseActivity};
use crate::db::schema::{release_activities, releases, webhook_attempts};
use crate::domain::engine::{AttemptState, Node};
use crate::domain::process::definition::{ActivityKind, RetryDef};
use crate::domain::process::template::to_text;
use crate::domain::process::time::parse_duration;
use crate::domain::release::{Hold, LinkKind};
use crate::domain::rule::RuleCode;
use crate::ops::OpError;
use crate::security::sha256_hex;

/// How an activity's run ended, whoever saw it end.
pub enum Ending {
    Succeeded {
        outputs: Map<String, Value>,
    },
    /// A failed attempt: retried while attempts remain (unless `permanent`), else the activity
    /// fails by its `on_failure`.
    Failed {
        message: String,
        permanent: bool,
    },
}

/// Who moves the release on once the activity has ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Then {
    /// The engine, woken now.
    Engine,
    /// The caller, which holds the release's lock and advances it in the same transaction.
    Caller,
}

/// The one way an activity's run ends: a webhook's answer or callback, a child release that
/// finished, a timeout, a subprocess that could not start, the demo's CI.
pub async fn end(
    conn: &mut AsyncPgConnection,
    (r, def): (&Release, &crate::domain::process::Definition),
    row: &ReleaseActivity,
    ending: Ending,
    by: &str,
    then: Then,
    now: DateTime<Utc>,
) -> Result<(), OpError> {
    match ending {
        Ending::Succeeded { outputs } => {
            record_success(conn, r, def, row, outputs, by, now).await?;
            if then == Then::Engine {
                crate::db::wake::schedule_now(conn, r.id, now).await?;
            }
            Ok(())
        }
        Ending::Failed { message, permanent } => attempt_failed(conn, r, def, row, &message, permanent, now).await,
    }
}

/// The activity succeeded with these outputs: `records` become artifacts, `deploys` deployments.
async fn record_success(
    conn: &mut AsyncPgConnection,
    r: &Release,
    def: &crate::domain::process::Definition,
    row: &ReleaseActivity,
    outputs: Map<String, Value>,
    actor: &str,
    now: DateTime<Utc>,
) -> Result<(), OpError> {
    let mut merged = row.outputs.as_object().cloned().unwrap_or_default();
    merged.extend(outputs.clone());
    diesel::update(activity_by_key(r.id, &row.phase_key, &row.key))
        .set((
            release_activities::status.eq(Node::Success),
            release_activities::hold.eq(None::<Hold>),
            release_activities::outputs.eq(Value::Object(merged)),
            release_activities::finished_at.eq(now),
            release_activities::status_reason.eq(None::<String>),
            release_activities::wake_at.eq(None::<DateTime<Utc>>),
            release_activities::last_actor.eq(actor),
        ))
        .execute(conn)
        .await?;
    crate::ops::results::record_results_of(conn, r, def, (&row.phase_key, &row.key), now).await?;
    let event = NewEvent::release(r, actor, "activity.success")
        .with_subject(format!("activity:{}.{}", row.phase_key, row.key))
        .with_details(json!({"outputs": outputs}));
    audit::append(conn, event, now).await?;
    Ok(())
}

/// A failed attempt: retried with backoff while attempts remain (unless `permanent`), else the
/// activity fails by its `on_failure`.
async fn attempt_failed(
    conn: &mut AsyncPgConnection,
    r: &Release,
    def: &crate::domain::process::Definition,
    row: &ReleaseActivity,
    message: &str,
    permanent: bool,
    now: DateTime<Utc>,
) -> Result<(), OpError> {
    let retry: RetryDef = def.activity(&row.phase_key, &row.key).and_then(|a| a.retry.clone()).unwrap_or_default();
    // Automatic retries count within this run of the activity (a manual retry starts a new run).
    let run_attempts = i64::from(row.attempts - row.run_first_attempt + 1);
    if !permanent && run_attempts < i64::from(retry.max_attempts) {
        let backoff = parse_duration(&retry.backoff).unwrap_or(TimeDelta::seconds(30));
        let next = row.attempts + 1;
        let due = now + backoff;
        diesel::update(activity_by_key(r.id, &row.phase_key, &row.key))
            .set((
                release_activities::attempts.eq(next),
                release_activities::status_reason.eq(format!(
                    "attempt {} failed: {message}; attempt {next} at {}",
                    row.attempts,
                    due.format("%H:%M:%S UTC")
                )),
                release_activities::wake_at.eq(None::<DateTime<Utc>>),
            ))
            .execute(conn)
            .await?;
        crate::db::models::webhook_attempts::enqueue(conn, r, &row.phase_key, &row.key, next, due, now).await?;
        return Ok(());
    }
    let (status, hold, reason) = crate::ops::activities::failed_status(row, message);
    diesel::update(activity_by_key(r.id, &row.phase_key, &row.key))
        .set((
            release_activities::status.eq(status),
            release_activities::hold.eq(hold),
            release_activities::status_reason.eq(&reason),
            release_activities::finished_at.eq(status.is_finished().then_some(now)),
            release_activities::wake_at.eq(None::<DateTime<Utc>>),
            // The run is over (a decision hold must not time out again).
            release_activities::deadline.eq(None::<DateTime<Utc>>),
        ))
        .execute(conn)
        .await?;
    audit::append(
        conn,
        NewEvent::release(r, "system:engine", "activity.failed")
            .with_subject(format!("activity:{}.{}", row.phase_key, row.key))
            .with_details(json!({"attempt": row.attempts}))
            .with_reason(message.to_string()),
        now,
    )
    .await?;
    crate::db::wake::schedule_now(conn, r.id, now).await?;
    Ok(())
}

/// (attempt id, release id, phase, activity, attempt number, state, used at)
type CallbackAttempt = (i64, i64, String, String, i32, AttemptState, Option<DateTime<Utc>>);

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CallbackBody {
    pub status: String,
    #[serde(default)]
    pub outputs: Map<String, Value>,
}

/// `POST /api/v1/callbacks/{token}`: the token is the only credential and works once.
pub async fn callback(conn: &mut AsyncPgConnection, token: &str, body: CallbackBody, now: DateTime<Utc>) -> Result<(), OpError> {
    let success = match body.status.as_str() {
        "success" => true,
        "failure" => false,
        other => return Err(OpError::invalid("status", format!("{other:?} is not \"success\" or \"failure\""))),
    };
    conn.transaction(async |conn| {
        // One lock order with a send's result: the release first, then the attempt.
        let token_hash = sha256_hex(token);
        let release_id: Option<i64> = webhook_attempts::table
            .filter(webhook_attempts::callback_token_hash.eq(&token_hash))
            .select(webhook_attempts::release_id)
            .first(conn)
            .await
            .optional()?;
        let Some(release_id) = release_id else { return Err(OpError::NotFound) };
        let r: Release = releases::table.find(release_id).select(Release::as_select()).for_update().first(conn).await?;
        let found: Option<CallbackAttempt> = webhook_attempts::table
            .filter(webhook_attempts::callback_token_hash.eq(&token_hash))
            .select((
                webhook_attempts::id,
                webhook_attempts::release_id,
                webhook_attempts::phase_key,
                webhook_attempts::activity_key,
                webhook_attempts::attempt,
                webhook_attempts::state,
                webhook_attempts::callback_used_at,
            ))
            .for_update()
            .first(conn)
            .await
            .optional()?;
        let Some((attempt_id, _, phase, key, attempt, state, used)) = found else {
            return Err(OpError::NotFound);
        };
        if used.is_some() {
            return Err(OpError::Conflict { message: "This callback URL was already used; a callback token works once.".into() });
        }
        if r.status() == crate::domain::release::Status::Aborted {
            return Err(OpError::Conflict { message: format!("Release #{} was aborted; this late callback changes nothing.", r.id) });
        }
        if !crate::domain::release::in_flight(r.state(), r.status()) {
            return Err(OpError::Conflict {
                message: format!("Release #{} is no longer running ({}); the callback is refused.", r.id, r.status()),
            });
        }
        let row: ReleaseActivity = activity_by_key(r.id, &phase, &key).select(ReleaseActivity::as_select()).first(conn).await?;
        // `sending`: the receiver called back before it answered; the callback decides, and the
        // send's result, when it comes, finds the attempt decided and changes nothing.
        if !matches!(state, AttemptState::Sent | AttemptState::Sending) || row.node() != Node::Running || row.attempts != attempt {
            return Err(OpError::Rule {
                code: RuleCode::CallbackExpired,
                message: "This callback URL has expired: its attempt timed out or was replaced by a retry.".into(),
                field: None,
            });
        }
        diesel::update(webhook_attempts::table.find(attempt_id))
            .set((
                webhook_attempts::callback_used_at.eq(now),
                webhook_attempts::state.eq(if success { AttemptState::Succeeded } else { AttemptState::Failed }),
                webhook_attempts::finished_at.eq(now),
            ))
            .execute(conn)
            .await?;
        audit::append(
            conn,
            NewEvent::release(&r, "system:callback", "webhook.callback")
                .with_subject(format!("activity:{phase}.{key}"))
                .with_details(json!({"status": body.status, "attempt": attempt})),
            now,
        )
        .await?;
        let ending = if success {
            Ending::Succeeded { outputs: body.outputs }
        } else {
            let message = body.outputs.get("message").map(to_text).unwrap_or_else(|| "the callback reported a failure".into());
            Ending::Failed { message, permanent: false }
        };
        let def = crate::ops::releases::pinned_definition(conn, &r).await?;
        end(conn, (&r, &def), &row, ending, "system:callback", Then::Engine, now).await
    })
    .await
}

/// A subprocess's child release finished: its parent's activity ends the same way.
pub async fn child_finished(
    conn: &mut AsyncPgConnection,
    child: &Release,
    status: crate::domain::release::Status,
    now: DateTime<Utc>,
) -> Result<(), OpError> {
    let parent_link = rows::links_from(conn, child.id).await?.into_iter().find(|l| l.is(LinkKind::SubprocessOf));
    let Some(link) = parent_link else { return Ok(()) };
    let parent: Release = releases::table.find(link.target_id).select(Release::as_select()).for_update().first(conn).await?;
    if !crate::domain::release::in_flight(parent.state(), parent.status()) {
        return Ok(());
    }
    let waiting: Vec<ReleaseActivity> = release_activities::table
        .filter(release_activities::release_id.eq(parent.id))
        .filter(release_activities::kind.eq(ActivityKind::Subprocess))
        .filter(release_activities::status.eq(Node::Running))
        .select(ReleaseActivity::as_select())
        .load(conn)
        .await?;
    let Some(row) = waiting.into_iter().find(|a| a.outputs.get("release_id").and_then(Value::as_i64) == Some(child.id)) else {
        return Ok(());
    };
    let ending = match status {
        crate::domain::release::Status::Success | crate::domain::release::Status::PartialSuccess => {
            Ending::Succeeded { outputs: Map::from_iter([("status".to_string(), json!(status.as_str()))]) }
        }
        other => Ending::Failed { message: format!("child release #{} ended {}", child.id, other.as_str()), permanent: true },
    };
    let def = crate::ops::releases::pinned_definition(conn, &parent).await?;
    end(conn, (&parent, &def), &row, ending, &format!("system:release:{}", child.id), Then::Engine, now).await
}
