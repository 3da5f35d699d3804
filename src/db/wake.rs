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

/// A connection of its own (not pooled) that listens on the workers' channel.
pub async fn listen(database_url: &str) -> anyhow::Result<AsyncPgConnection> {
    let mut listener = AsyncPgConnection::establish(database_url).await?;
    diesel::sql_query(format!("LISTEN {CHANNEL}")).execute(&mut listener).await?;
    Ok(listener)
}
