//! Releases set aside by the engine (DESIGN §9): an advance that keeps failing in the database
//! is counted, and after `MAX_ENGINE_FAILURES` the release is put OnHold with hold
//! `engine_error` until someone retries it.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use crate::db::schema::releases;
use crate::domain::release::{Hold, Status};

/// Counts one more failed advance; returns the consecutive count.
pub async fn count_failure(conn: &mut AsyncPgConnection, release_id: i64) -> QueryResult<i32> {
    diesel::update(releases::table.find(release_id))
        .set(releases::engine_failures.eq(releases::engine_failures + 1))
        .returning(releases::engine_failures)
        .get_result(conn)
        .await
}

/// After a batch's advances: the count starts again for those that went through.
pub async fn clear_failures(conn: &mut AsyncPgConnection, release_ids: &[i64]) -> QueryResult<usize> {
    diesel::update(releases::table.filter(releases::id.eq_any(release_ids)).filter(releases::engine_failures.gt(0)))
        .set(releases::engine_failures.eq(0))
        .execute(conn)
        .await
}

/// Sets the release aside: OnHold, hold `engine_error`, the reason for people, and no more
/// engine passes until it is retried.
pub async fn set_aside(conn: &mut AsyncPgConnection, release_id: i64, reason: &str, now: DateTime<Utc>) -> QueryResult<usize> {
    diesel::update(releases::table.find(release_id))
        .set((
            releases::status.eq(Status::OnHold),
            releases::hold.eq(Hold::EngineError),
            releases::status_reason.eq(reason),
            releases::next_eval_at.eq(None::<DateTime<Utc>>),
            releases::updated_at.eq(now),
        ))
        .execute(conn)
        .await
}

/// Puts a set-aside release back in the engine's hands: Running, no hold, due now. Returns
/// whether it was set aside.
pub async fn resume(conn: &mut AsyncPgConnection, release_id: i64, now: DateTime<Utc>) -> QueryResult<bool> {
    let n = diesel::update(releases::table.find(release_id).filter(releases::hold.eq(Hold::EngineError)))
        .set((
            releases::status.eq(Status::Running),
            releases::hold.eq(None::<Hold>),
            releases::status_reason.eq(None::<String>),
            releases::engine_failures.eq(0),
            releases::next_eval_at.eq(now),
            releases::updated_at.eq(now),
        ))
        .execute(conn)
        .await?;
    Ok(n > 0)
}
