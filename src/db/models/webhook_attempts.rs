//! Webhook attempts and the workers that send them.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use crate::db::models::releases::Release;
use crate::db::schema::{webhook_attempts, workers};
use crate::domain::engine::AttemptState;

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
            webhook_attempts::state.eq(AttemptState::Queued),
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
            .filter(webhook_attempts::state.eq_any([AttemptState::Queued, AttemptState::Sent])),
    )
    .set(webhook_attempts::state.eq(AttemptState::Superseded))
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
            .filter(webhook_attempts::state.eq_any([AttemptState::Queued, AttemptState::Sent])),
    )
    .set(webhook_attempts::state.eq(AttemptState::Superseded))
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

/// An attempt claimed for sending: which activity's request it is and its idempotency key.
#[derive(Debug, diesel::QueryableByName)]
pub struct ClaimedRow {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub id: i64,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub release_id: i64,
    #[diesel(sql_type = diesel::sql_types::Text)]
    pub phase_key: String,
    #[diesel(sql_type = diesel::sql_types::Text)]
    pub activity_key: String,
    #[diesel(sql_type = diesel::sql_types::Text)]
    pub idempotency_key: String,
}

/// Locks one due attempt, or one left `sending` by a worker whose heartbeat is older than
/// `stale_before` or whose lease ran out, of an account not in `busy_accounts`; oldest due first.
pub async fn claim_due(
    conn: &mut AsyncPgConnection,
    now: DateTime<Utc>,
    stale_before: DateTime<Utc>,
    busy_accounts: &[i64],
) -> QueryResult<Option<ClaimedRow>> {
    use diesel::sql_types::{Array, BigInt, Text, Timestamptz};
    crate::db::prepared::prepared(
        diesel::sql_query(
            "SELECT a.id, a.release_id, a.phase_key, a.activity_key, a.idempotency_key FROM webhook_attempts a \
             WHERE ((a.state = $4 AND a.due_at <= $1) \
                OR (a.state = $5 AND (a.lease_until < $1 OR NOT EXISTS \
                    (SELECT 1 FROM workers w WHERE w.id = a.lease_owner AND w.heartbeat_at >= $2)))) \
               AND a.account_id <> ALL($3) \
             ORDER BY a.due_at LIMIT 1 FOR UPDATE OF a SKIP LOCKED",
        )
        .bind::<Timestamptz, _>(now)
        .bind::<Timestamptz, _>(stale_before)
        .bind::<Array<BigInt>, _>(busy_accounts)
        .bind::<Text, _>(AttemptState::Queued)
        .bind::<Text, _>(AttemptState::Sending),
    )
    .get_result(conn)
    .await
    .optional()
}

/// Locks the account's oldest due attempt (see `engine::webhook::dispatch`).
pub async fn claim_next_of_account(conn: &mut AsyncPgConnection, account_id: i64, now: DateTime<Utc>) -> QueryResult<Option<ClaimedRow>> {
    use diesel::sql_types::{BigInt, Text, Timestamptz};
    crate::db::prepared::prepared(
        diesel::sql_query(
            "SELECT a.id, a.release_id, a.phase_key, a.activity_key, a.idempotency_key FROM webhook_attempts a \
             WHERE a.account_id = $1 AND a.state = $3 AND a.due_at <= $2 \
             ORDER BY a.due_at LIMIT 1 FOR UPDATE OF a SKIP LOCKED",
        )
        .bind::<BigInt, _>(account_id)
        .bind::<Timestamptz, _>(now)
        .bind::<Text, _>(AttemptState::Queued),
    )
    .get_result(conn)
    .await
    .optional()
}

/// Commits a claimed attempt as `sending`, leased to `worker`, with what is shown of its request.
pub async fn lease(
    conn: &mut AsyncPgConnection,
    id: i64,
    worker: &str,
    lease_until: DateTime<Utc>,
    callback_token_hash: Option<String>,
    request: Option<serde_json::Value>,
) -> QueryResult<usize> {
    diesel::update(webhook_attempts::table.find(id))
        .set((
            webhook_attempts::state.eq(AttemptState::Sending),
            webhook_attempts::lease_owner.eq(worker),
            webhook_attempts::lease_until.eq(lease_until),
            webhook_attempts::callback_token_hash.eq(callback_token_hash),
            webhook_attempts::request.eq(request),
        ))
        .execute(conn)
        .await
}

pub async fn release_of(conn: &mut AsyncPgConnection, attempt_id: i64) -> QueryResult<i64> {
    webhook_attempts::table.find(attempt_id).select(webhook_attempts::release_id).first(conn).await
}

/// An attempt as its result is recorded, read under its lock.
#[derive(Debug, Queryable)]
pub struct Locked {
    pub phase_key: String,
    pub activity_key: String,
    pub state: AttemptState,
    pub lease_owner: Option<String>,
    /// It completes by callback (its claim gave it a token).
    pub has_callback: bool,
}

/// Locks the attempt (the caller locked its release first: one lock order with callbacks).
pub async fn lock(conn: &mut AsyncPgConnection, attempt_id: i64) -> QueryResult<Locked> {
    webhook_attempts::table
        .find(attempt_id)
        .select((
            webhook_attempts::phase_key,
            webhook_attempts::activity_key,
            webhook_attempts::state,
            webhook_attempts::lease_owner,
            webhook_attempts::callback_token_hash.is_not_null(),
        ))
        .for_update()
        .first(conn)
        .await
}

/// What a send came back with, as recorded.
pub struct Sent<'a> {
    pub state: AttemptState,
    pub status: Option<i32>,
    pub body: Option<&'a str>,
    pub error: Option<&'a str>,
    pub duration_ms: Option<i32>,
    /// Set unless it now waits for a callback.
    pub finished_at: Option<DateTime<Utc>>,
}

pub async fn record(conn: &mut AsyncPgConnection, attempt_id: i64, sent: Sent<'_>, now: DateTime<Utc>) -> QueryResult<usize> {
    diesel::update(webhook_attempts::table.find(attempt_id))
        .set((
            webhook_attempts::state.eq(sent.state),
            webhook_attempts::response_status.eq(sent.status),
            webhook_attempts::response_body.eq(sent.body),
            webhook_attempts::error.eq(sent.error),
            webhook_attempts::duration_ms.eq(sent.duration_ms),
            webhook_attempts::sent_at.eq(now),
            webhook_attempts::finished_at.eq(sent.finished_at),
            webhook_attempts::lease_until.eq(None::<DateTime<Utc>>),
        ))
        .execute(conn)
        .await
}

/// The activity's attempt that waited for a callback failed: none came before the timeout.
pub async fn fail_awaited(conn: &mut AsyncPgConnection, release_id: i64, phase: &str, key: &str, error: &str) -> QueryResult<usize> {
    diesel::update(
        webhook_attempts::table
            .filter(webhook_attempts::release_id.eq(release_id))
            .filter(webhook_attempts::phase_key.eq(phase))
            .filter(webhook_attempts::activity_key.eq(key))
            .filter(webhook_attempts::state.eq(AttemptState::Sent)),
    )
    .set((webhook_attempts::state.eq(AttemptState::Failed), webhook_attempts::error.eq(error)))
    .execute(conn)
    .await
}
