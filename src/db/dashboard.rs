//! The dashboard's reads (DESIGN §8): releases in flight with their phase progress, and
//! releases that failed recently; each a fixed number of statements whatever the data size.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use super::models::releases::Release;
use super::schema::{release_phases, releases};
use crate::domain::engine::Node;
use crate::domain::policy::Visibility;
use crate::domain::release::State;

use super::models::releases::visible;

/// Running and on-hold releases, oldest start first.
pub async fn in_flight(conn: &mut AsyncPgConnection, account_id: i64, vis: &Visibility, limit: i64) -> QueryResult<Vec<Release>> {
    let q = releases::table
        .filter(releases::account_id.eq(account_id))
        .filter(releases::state.eq(State::Active))
        .filter(releases::status.eq_any(["Running", "OnHold"]))
        .into_boxed();
    visible(q, vis).order((releases::started_at.asc(), releases::id)).limit(limit).select(Release::as_select()).load(conn).await
}

/// Releases that ended Failed, RolledBack or Aborted since `since`, newest first.
pub async fn failed_since(
    conn: &mut AsyncPgConnection,
    account_id: i64,
    vis: &Visibility,
    since: DateTime<Utc>,
    limit: i64,
) -> QueryResult<Vec<Release>> {
    let q = releases::table
        .filter(releases::account_id.eq(account_id))
        .filter(releases::status.eq_any(["Failed", "RolledBack", "Aborted"]))
        .filter(releases::finished_at.ge(since))
        .into_boxed();
    visible(q, vis).order((releases::finished_at.desc(), releases::id.desc())).limit(limit).select(Release::as_select()).load(conn).await
}

/// (release id, phase name, phase status) of these releases, in phase order.
pub async fn phases_of(conn: &mut AsyncPgConnection, release_ids: &[i64]) -> QueryResult<Vec<(i64, String, Node)>> {
    release_phases::table
        .filter(release_phases::release_id.eq_any(release_ids))
        .order((release_phases::release_id, release_phases::position))
        .select((release_phases::release_id, release_phases::name, release_phases::status))
        .load(conn)
        .await
}
