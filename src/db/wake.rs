//! Waking the workers: a NOTIFY on one channel, delivered when the caller's transaction commits,
//! and the dedicated connection a worker LISTENs on.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};

use crate::db::prepared::prepared;
use crate::db::schema::releases;
use crate::domain::engine::Node;
use crate::domain::release::{Hold, Status};

pub const CHANNEL: &str = "railyard_work";

/// Asks every worker to look now (delivered when the caller's transaction commits).
pub async fn wake(conn: &mut AsyncPgConnection) -> QueryResult<usize> {
    prepared(diesel::sql_query(format!("SELECT pg_notify('{CHANNEL}', '')"))).execute(conn).await
}

/// Marks a release as needing the worker now.
pub async fn schedule_now(conn: &mut AsyncPgConnection, release_id: i64, now: DateTime<Utc>) -> QueryResult<()> {
    diesel::update(releases::table.find(release_id)).set(releases::next_eval_at.eq(now)).execute(conn).await?;
    wake(conn).await?;
    Ok(())
}

/// Looks again now at what a freeze held in the account (or in one release): releases held as a
/// whole, and activities held until the window's end.
pub async fn schedule_held_now(
    conn: &mut AsyncPgConnection,
    account_id: i64,
    release_id: Option<i64>,
    now: DateTime<Utc>,
) -> QueryResult<usize> {
    use crate::db::schema::release_activities;
    let mut activities = diesel::update(release_activities::table)
        .filter(release_activities::account_id.eq(account_id))
        .filter(release_activities::status.eq(Node::OnHold))
        .filter(release_activities::hold.eq(Hold::Freeze))
        .into_boxed();
    if let Some(id) = release_id {
        activities = activities.filter(release_activities::release_id.eq(id));
    }
    let held: Vec<i64> =
        activities.set(release_activities::wake_at.eq(now)).returning(release_activities::release_id).get_results(conn).await?;
    let mut releases_q = diesel::update(releases::table)
        .filter(releases::account_id.eq(account_id))
        .filter(releases::status.eq(Status::OnHold))
        .filter(releases::hold.eq(Hold::Freeze).or(releases::id.eq_any(&held)))
        .into_boxed();
    if let Some(id) = release_id {
        releases_q = releases_q.filter(releases::id.eq(id));
    }
    let n = releases_q.set(releases::next_eval_at.eq(now)).execute(conn).await?;
    wake(conn).await?;
    Ok(n)
}

#[derive(QueryableByName)]
struct NextDue {
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Timestamptz>)]
    at: Option<DateTime<Utc>>,
}

/// The next instant after `now` at which work falls due by the clock alone: a scheduled draft's
/// start or an active release's next look. What is already due is not counted (a draft that
/// cannot start stays due, and the poll retries it).
pub async fn next_due(conn: &mut AsyncPgConnection, now: DateTime<Utc>) -> QueryResult<Option<DateTime<Utc>>> {
    let next: NextDue = prepared(
        diesel::sql_query(
            "SELECT LEAST(\
               (SELECT min(schedule_start) FROM releases WHERE state = 'draft' AND schedule_start IS NOT NULL AND schedule_start > $1), \
               (SELECT min(next_eval_at) FROM releases WHERE state = 'active' AND next_eval_at IS NOT NULL AND next_eval_at > $1)) AS at",
        )
        .bind::<diesel::sql_types::Timestamptz, _>(now),
    )
    .get_result(conn)
    .await?;
    Ok(next.at)
}

/// A connection of its own (not pooled) that listens on the workers' channel.
pub async fn listen(database_url: &str) -> anyhow::Result<AsyncPgConnection> {
    let mut listener = AsyncPgConnection::establish(database_url).await?;
    diesel::sql_query(format!("LISTEN {CHANNEL}")).execute(&mut listener).await?;
    Ok(listener)
}
