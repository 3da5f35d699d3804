//! What an operator watches on `/metrics`, read in one statement at scrape time (across every
//! account of the installation). Each part is answered from a partial index or a small table.

use chrono::{DateTime, Utc};
use diesel::sql_types::{BigInt, Double, Timestamptz};
use diesel::QueryableByName;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

#[derive(Debug, Clone, Default, QueryableByName)]
pub struct Gauges {
    /// Active releases whose next evaluation is due: the engine's queue.
    #[diesel(sql_type = BigInt)]
    pub engine_queue: i64,
    /// Scheduled releases whose start has passed but that have not started.
    #[diesel(sql_type = BigInt)]
    pub due_not_started: i64,
    /// How long the oldest of those has been waiting, in seconds (0 when none).
    #[diesel(sql_type = Double)]
    pub due_lag_seconds: f64,
    #[diesel(sql_type = BigInt)]
    pub webhooks_queued: i64,
    #[diesel(sql_type = BigInt)]
    pub webhooks_in_flight: i64,
    #[diesel(sql_type = BigInt)]
    pub webhooks_failed: i64,
    /// Notifications not yet delivered.
    #[diesel(sql_type = BigInt)]
    pub outbox_backlog: i64,
    /// Releases the engine set aside after repeated errors (OnHold, hold `engine_error`).
    #[diesel(sql_type = BigInt)]
    pub releases_set_aside: i64,
}

pub async fn read(conn: &mut AsyncPgConnection, now: DateTime<Utc>) -> diesel::QueryResult<Gauges> {
    diesel::sql_query(
        "WITH due AS (SELECT schedule_start FROM releases \
                      WHERE status = 'NotStarted' AND state IN ('draft', 'active') AND schedule_start <= $1) \
         SELECT (SELECT count(*) FROM releases WHERE state = 'active' AND next_eval_at IS NOT NULL AND next_eval_at <= $1) AS engine_queue, \
                (SELECT count(*) FROM due) AS due_not_started, \
                COALESCE((SELECT EXTRACT(EPOCH FROM ($1 - min(schedule_start)))::float8 FROM due), 0) AS due_lag_seconds, \
                (SELECT count(*) FROM webhook_attempts WHERE state = 'queued') AS webhooks_queued, \
                (SELECT count(*) FROM webhook_attempts WHERE state IN ('sending', 'sent')) AS webhooks_in_flight, \
                (SELECT count(*) FROM webhook_attempts WHERE state = 'failed') AS webhooks_failed, \
                (SELECT count(*) FROM notification_outbox WHERE delivered_at IS NULL) AS outbox_backlog, \
                (SELECT count(*) FROM releases WHERE hold = 'engine_error' AND status = 'OnHold') AS releases_set_aside",
    )
    .bind::<Timestamptz, _>(now)
    .get_result(conn)
    .await
}
