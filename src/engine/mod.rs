//! The engine: claims releases that need attention (`FOR UPDATE SKIP LOCKED`), applies the pure
//! rules of `domain::engine` to their stored tree, and writes every change with its audit event
//! and notifications in the same transaction. `crate::worker` runs it, woken by LISTEN/NOTIFY
//! with polling as a fallback. Each release advances in its own savepoint, so one that fails in
//! the database never holds back the others (DESIGN §9).

mod advance;
mod fan_out;
mod freeze_gate;
pub mod kinds;
pub mod locks;
mod timeouts;
pub mod tree;

use chrono::{DateTime, Utc};
use diesel_async::{AsyncConnection, AsyncPgConnection};
use serde_json::json;

use crate::db::audit::{self, NewEvent};
use crate::db::models::processes::DefinitionCache;
use crate::ops::OpError;

pub use advance::advance;
pub use kinds::webhook;
pub use tree::{act_in, resolve_point, tree_of};

/// An advance failed in the database: counted; at the limit the release is set aside (OnHold,
/// hold `engine_error`) with the reason, on its trail and in the log with its cause.
async fn poisoned(conn: &mut AsyncPgConnection, release_id: i64, error: &OpError, now: DateTime<Utc>) -> Result<(), OpError> {
    use crate::db::engine_holds;
    use crate::domain::release::MAX_ENGINE_FAILURES;
    let failures = conn.transaction(async |conn| engine_holds::count_failure(conn, release_id).await).await?;
    tracing::error!(release_id, failures, error = ?error, "advancing a release failed in the database");
    if failures < MAX_ENGINE_FAILURES {
        return Ok(());
    }
    let reason = format!("engine error: {error}");
    conn.transaction(async |conn| {
        engine_holds::set_aside(conn, release_id, &reason, now).await?;
        let r = crate::db::engine::release(conn, release_id).await?;
        let event = NewEvent { reason: Some(reason.clone()), ..NewEvent::release(&r, "system:engine", "release.set_aside") }
            .with_details(json!({"failures": failures}));
        audit::append(conn, event, now).await?;
        Ok::<_, OpError>(())
    })
    .await?;
    tracing::error!(release_id, failures, "release set aside after repeated engine errors; retry it once the cause is fixed");
    Ok(())
}

/// How many due releases one engine transaction claims and advances: a burst needs fewer
/// claims and commits, and a claimed release waits at most for seven others.
const STEP_BATCH: usize = 8;

/// One pass: claims due releases a few at a time (SKIP LOCKED) and advances each. The time is
/// read afresh for each release, so what is recorded as started or finished is when it
/// happened, not when the pass began.
pub async fn step(
    conn: &mut AsyncPgConnection,
    defs: &DefinitionCache,
    clock: impl Fn() -> DateTime<Utc> + Sync,
) -> Result<usize, OpError> {
    let mut total = 0;
    let mut seen: Vec<i64> = Vec::new();
    for _ in 0..200 / STEP_BATCH {
        let now = clock();
        let done = conn
            .transaction(async |conn| {
                let claimed = crate::db::engine::claim_due(conn, now, &seen, STEP_BATCH).await?;
                let ids: Vec<i64> = claimed.iter().map(|r| r.id).collect();
                let mut moved = 0;
                let mut advanced = Vec::new();
                for (i, r) in claimed.into_iter().enumerate() {
                    // Each is read again just before its advance: an earlier one in this batch
                    // may have changed it (a child that finishes moves its parent on; a parent's
                    // timeout aborts its child).
                    let r = if i == 0 { r } else { crate::db::engine::release(conn, r.id).await? };
                    let id = r.id;
                    // In its own savepoint: one release that fails in the database never undoes
                    // or holds back the others of its batch (DESIGN §9).
                    let advanced_now = conn.transaction(async |conn| advance(conn, defs, r, clock()).await).await;
                    match advanced_now {
                        Ok(n) => {
                            moved += n;
                            advanced.push(id);
                        }
                        Err(e) => poisoned(conn, id, &e, clock()).await?,
                    }
                }
                crate::db::engine_holds::clear_failures(conn, &advanced).await?;
                Ok::<_, OpError>((ids, moved))
            })
            .await?;
        match done {
            (ids, _) if ids.is_empty() => break,
            (ids, n) => {
                seen.extend(ids);
                total += n;
            }
        }
    }
    Ok(total)
}
