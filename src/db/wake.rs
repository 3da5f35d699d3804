//! Waking the workers: a NOTIFY on one channel, delivered when the caller's transaction commits,
//! and the dedicated connection a worker LISTENs on.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};

use crate::db::schema::releases;

pub const CHANNEL: &str = "railyard_work";

/// Asks every worker to look now (delivered when the caller's transaction commits).
pub async fn wake(conn: &mut AsyncPgConnection) -> QueryResult<usize> {
    diesel::sql_query(format!("SELECT pg_notify('{CHANNEL}', '')")).execute(conn).await
}

/// Marks a release as needing the worker now.
pub async fn schedule_now(conn: &mut AsyncPgConnection, release_id: i64, now: DateTime<Utc>) -> QueryResult<()> {
    diesel::update(releases::table.find(release_id)).set(releases::next_eval_at.eq(now)).execute(conn).await?;
    wake(conn).await?;
    Ok(())
}

/// Marks every release of the account whose status reason starts with `prefix` as needing the
/// worker now (e.g. the ones a removed freeze held).
pub async fn schedule_held_now(conn: &mut AsyncPgConnection, account_id: i64, prefix: &str, now: DateTime<Utc>) -> QueryResult<usize> {
    let n = diesel::update(
        releases::table
            .filter(releases::account_id.eq(account_id))
            .filter(releases::status.eq("OnHold"))
            .filter(releases::status_reason.like(format!("{prefix}%"))),
    )
    .set(releases::next_eval_at.eq(now))
    .execute(conn)
    .await?;
    wake(conn).await?;
    Ok(n)
}

/// A connection of its own (not pooled) that listens on the workers' channel.
pub async fn listen(database_url: &str) -> anyhow::Result<AsyncPgConnection> {
    let mut listener = AsyncPgConnection::establish(database_url).await?;
    diesel::sql_query(format!("LISTEN {CHANNEL}")).execute(&mut listener).await?;
    Ok(listener)
}
