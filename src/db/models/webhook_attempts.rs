//! Webhook attempts and the workers that send them.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use crate::db::models::releases::Release;
use crate::db::schema::{webhook_attempts, workers};

pub fn idempotency_key(release_id: i64, phase: &str, activity: &str, attempt: i32) -> String {
    format!("{release_id}/{phase}/{activity}/{attempt}")
}

/// Queues attempt `attempt` of a webhook activity (called when it starts or retries).
pub async fn enqueue(
    conn: &mut AsyncPgConnection,
    r: &Release,
    phase: &str,
    activity: &str,
    attempt: i32,
    due: DateTime<Utc>,
    now: DateTime<Utc>,
) -> QueryResult<()> {
    diesel::insert_into(webhook_attempts::table)
        .values((
            webhook_attempts::account_id.eq(r.account_id),
            webhook_attempts::release_id.eq(r.id),
            webhook_attempts::phase_key.eq(phase),
            webhook_attempts::activity_key.eq(activity),
            webhook_attempts::attempt.eq(attempt),
            webhook_attempts::idempotency_key.eq(idempotency_key(r.id, phase, activity, attempt)),
            webhook_attempts::state.eq("queued"),
            webhook_attempts::due_at.eq(due),
            webhook_attempts::created_at.eq(now),
        ))
        .on_conflict_do_nothing()
        .execute(conn)
        .await?;
    crate::db::wake::wake(conn).await?;
    Ok(())
}

/// Voids attempts not yet sent (abort, roll back).
pub async fn supersede(conn: &mut AsyncPgConnection, release_id: i64) -> QueryResult<usize> {
    diesel::update(
        webhook_attempts::table
            .filter(webhook_attempts::release_id.eq(release_id))
            .filter(webhook_attempts::state.eq_any(["queued", "sent"])),
    )
    .set(webhook_attempts::state.eq("superseded"))
    .execute(conn)
    .await
}

/// `supersede` for one activity: its timeout ran out, so no queued or awaited attempt counts.
pub async fn supersede_activity(conn: &mut AsyncPgConnection, release_id: i64, phase: &str, key: &str) -> QueryResult<usize> {
    diesel::update(
        webhook_attempts::table
            .filter(webhook_attempts::release_id.eq(release_id))
            .filter(webhook_attempts::phase_key.eq(phase))
            .filter(webhook_attempts::activity_key.eq(key))
            .filter(webhook_attempts::state.eq_any(["queued", "sent"])),
    )
    .set(webhook_attempts::state.eq("superseded"))
    .execute(conn)
    .await
}

pub async fn heartbeat(conn: &mut AsyncPgConnection, worker: &str, now: DateTime<Utc>) -> QueryResult<usize> {
    diesel::insert_into(workers::table)
        .values((workers::id.eq(worker), workers::started_at.eq(now), workers::heartbeat_at.eq(now)))
        .on_conflict(workers::id)
        .do_update()
        .set(workers::heartbeat_at.eq(now))
        .execute(conn)
        .await
}
