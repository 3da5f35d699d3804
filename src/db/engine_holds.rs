//! Releases set aside by the engine (DESIGN §9): an advance that keeps failing in the database
//! is counted, and after `MAX_ENGINE_FAILURES` the release is put OnHold with hold
//! `engine_error` until someone retries it. The `hold` and `engine_failures` columns are read
//! and written here only, in raw SQL (the `releases` table is at diesel's 32-column limit).

use chrono::{DateTime, Utc};
use diesel::sql_types::{Array, BigInt, Nullable, Text, Timestamptz};
use diesel::QueryableByName;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use crate::db::prepared::prepared;
use crate::domain::release::Hold;

#[derive(QueryableByName)]
struct Failures {
    #[diesel(sql_type = diesel::sql_types::Integer)]
    engine_failures: i32,
}

#[derive(QueryableByName)]
struct HoldRow {
    #[diesel(sql_type = Nullable<Text>)]
    hold: Option<String>,
}

/// Counts one more failed advance; returns the consecutive count.
pub async fn count_failure(conn: &mut AsyncPgConnection, release_id: i64) -> diesel::QueryResult<i32> {
    let row: Failures = prepared(
        diesel::sql_query("UPDATE releases SET engine_failures = engine_failures + 1 WHERE id = $1 RETURNING engine_failures")
            .bind::<BigInt, _>(release_id),
    )
    .get_result(conn)
    .await?;
    Ok(row.engine_failures)
}

/// After a batch's advances: the count starts again for those that went through.
pub async fn clear_failures(conn: &mut AsyncPgConnection, release_ids: &[i64]) -> diesel::QueryResult<usize> {
    prepared(
        diesel::sql_query("UPDATE releases SET engine_failures = 0 WHERE id = ANY($1) AND engine_failures > 0")
            .bind::<Array<BigInt>, _>(release_ids),
    )
    .execute(conn)
    .await
}

/// Sets the release aside: OnHold, hold `engine_error`, the reason for people, and no more
/// engine passes until it is retried.
pub async fn set_aside(conn: &mut AsyncPgConnection, release_id: i64, reason: &str, now: DateTime<Utc>) -> diesel::QueryResult<usize> {
    prepared(
        diesel::sql_query(
            "UPDATE releases SET status = 'OnHold', hold = 'engine_error', status_reason = $2, next_eval_at = NULL, updated_at = $3 \
             WHERE id = $1",
        )
        .bind::<BigInt, _>(release_id)
        .bind::<Text, _>(reason)
        .bind::<Timestamptz, _>(now),
    )
    .execute(conn)
    .await
}

/// Puts a set-aside release back in the engine's hands: Running, no hold, due now. Returns
/// whether it was set aside.
pub async fn resume(conn: &mut AsyncPgConnection, release_id: i64, now: DateTime<Utc>) -> diesel::QueryResult<bool> {
    let n = prepared(
        diesel::sql_query(
            "UPDATE releases SET status = 'Running', hold = NULL, status_reason = NULL, engine_failures = 0, next_eval_at = $2, \
             updated_at = $2 WHERE id = $1 AND hold = 'engine_error'",
        )
        .bind::<BigInt, _>(release_id)
        .bind::<Timestamptz, _>(now),
    )
    .execute(conn)
    .await?;
    Ok(n > 0)
}

/// The release's hold. A stored value that is not a hold is an error, never a default.
pub async fn hold_of(conn: &mut AsyncPgConnection, release_id: i64) -> diesel::QueryResult<Option<Hold>> {
    let row: HoldRow =
        prepared(diesel::sql_query("SELECT hold FROM releases WHERE id = $1").bind::<BigInt, _>(release_id)).get_result(conn).await?;
    match row.hold {
        None => Ok(None),
        Some(text) => Hold::parse(&text)
            .map(Some)
            .ok_or_else(|| diesel::result::Error::DeserializationError(format!("releases.hold holds {text:?}").into())),
    }
}
