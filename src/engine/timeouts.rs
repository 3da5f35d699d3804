//! Time running out on an activity in progress: a callback that never came (the webhook's
//! `config.timeout`) and any kind's own `timeout` (DESIGN §9). Both fail the activity with a
//! reason naming the timeout, and `on_failure` decides what follows.

use chrono::{DateTime, Utc};
use diesel_async::AsyncPgConnection;
use serde_json::Value;

use crate::db::models::releases::{Release, ReleaseActivity};
use crate::db::models::webhook_attempts;
use crate::domain::engine::Node;
use crate::domain::process::definition::ActivityKind;
use crate::domain::process::Definition;
use crate::ops::outcomes::{self, Ending, Then};
use crate::ops::{Actor, OpError};

/// Fails every activity of the (locked) release whose time ran out by `now`. Returns whether
/// any did, so that the caller reads the tree again.
pub async fn expire(
    conn: &mut AsyncPgConnection,
    r: &Release,
    def: &Definition,
    activities: &[ReleaseActivity],
    now: DateTime<Utc>,
) -> Result<bool, OpError> {
    let mut any = false;
    for a in activities {
        // Only an activity whose deadline passed is looked at closer (no copy of the others).
        if a.deadline.is_some_and(|d| d <= now) && super::tree::act_in(def, a).timed_out(now) {
            let timeout = def.activity(&a.phase_key, &a.key).and_then(|d| d.timeout.clone()).unwrap_or_default();
            let reason = format!("timed out: no outcome within its timeout of {timeout}");
            end_what_runs(conn, r, a, &reason, now).await?;
            let ending = Ending::Failed { message: reason, permanent: true };
            outcomes::end(conn, (r, def), a, ending, "system:engine", Then::Engine, now).await?;
            any = true;
        } else if a.is_kind(ActivityKind::Webhook) && a.node() == Node::Running && a.wake_at.is_some_and(|t| t <= now) {
            webhook_attempts::fail_awaited(conn, r.id, &a.phase_key, &a.key, "no callback before the timeout").await?;
            let ending = Ending::Failed { message: "no callback arrived before the timeout".into(), permanent: false };
            outcomes::end(conn, (r, def), a, ending, "system:engine", Then::Engine, now).await?;
            any = true;
        }
    }
    Ok(any)
}

/// What the activity set going stops with it: its webhook attempts, or its child release.
async fn end_what_runs(
    conn: &mut AsyncPgConnection,
    r: &Release,
    a: &ReleaseActivity,
    reason: &str,
    now: DateTime<Utc>,
) -> Result<(), OpError> {
    if a.is_kind(ActivityKind::Webhook) {
        webhook_attempts::supersede_activity(conn, r.id, &a.phase_key, &a.key).await?;
    }
    let child = a.outputs.get("release_id").and_then(Value::as_i64);
    if let (true, Some(child)) = (a.is_kind(ActivityKind::Subprocess), child) {
        let actor = Actor::system(r.account_id, "engine");
        let why = format!("its parent release #{}'s activity \"{}\" {reason}", r.id, a.name);
        match crate::ops::releases::abort(conn, &actor, child, &why, now).await {
            // The child already ended: nothing runs any more.
            Ok(_) | Err(OpError::Rule { .. }) | Err(OpError::NotFound) => {}
            Err(other) => return Err(other),
        }
    }
    Ok(())
}
