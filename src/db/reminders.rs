//! What approval reminders and escalation read and mark (`notify::reminders`).

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use crate::db::models::releases::{activity_by_key, Release, ReleaseActivity, ReleasePhase};
use crate::db::schema::{account_settings, approval_votes, release_activities, release_phases, releases, users};
use crate::domain::engine::Node;
use crate::domain::process::definition::ActivityKind;
use crate::domain::release::{State, Status};

/// Manual tasks and approvals in progress in releases in flight, with their release.
pub async fn waiting_on_people(conn: &mut AsyncPgConnection) -> QueryResult<Vec<(ReleaseActivity, Release)>> {
    release_activities::table
        .inner_join(releases::table.on(releases::id.eq(release_activities::release_id)))
        .filter(releases::state.eq(State::Active))
        .filter(releases::status.eq_any([Status::Running, Status::OnHold]))
        .filter(release_activities::status.eq_any([Node::Running, Node::OnHold]))
        .filter(release_activities::fanned.eq(false))
        .filter(release_activities::kind.eq_any([ActivityKind::Manual, ActivityKind::Approval]))
        .select((ReleaseActivity::as_select(), Release::as_select()))
        .load(conn)
        .await
}

pub async fn reminder_interval_minutes(conn: &mut AsyncPgConnection, account_id: i64) -> QueryResult<i32> {
    account_settings::table.find(account_id).select(account_settings::reminder_interval_minutes).first(conn).await
}

/// (id, e-mail) of the approvers of this round who have not voted yet.
pub async fn pending_approvers(conn: &mut AsyncPgConnection, a: &ReleaseActivity) -> QueryResult<Vec<(i64, String)>> {
    let voted: Vec<i64> = approval_votes::table
        .filter(approval_votes::release_id.eq(a.release_id))
        .filter(approval_votes::phase_key.eq(&a.phase_key))
        .filter(approval_votes::activity_key.eq(&a.key))
        .filter(approval_votes::round.eq(a.attempts))
        .select(approval_votes::user_id)
        .load(conn)
        .await?;
    let pending: Vec<i64> = a.eligible.iter().copied().filter(|u| !voted.contains(u)).collect();
    users::table.filter(users::id.eq_any(&pending)).select((users::id, users::email)).load(conn).await
}

pub async fn mark_reminded(conn: &mut AsyncPgConnection, a: &ReleaseActivity, now: DateTime<Utc>) -> QueryResult<usize> {
    diesel::update(activity_by_key(a.release_id, &a.phase_key, &a.key))
        .set(release_activities::last_reminded_at.eq(now))
        .execute(conn)
        .await
}

pub async fn mark_escalated(conn: &mut AsyncPgConnection, a: &ReleaseActivity, level: i32) -> QueryResult<usize> {
    diesel::update(activity_by_key(a.release_id, &a.phase_key, &a.key))
        .set(release_activities::escalation_level.eq(level))
        .execute(conn)
        .await
}

pub async fn phase(conn: &mut AsyncPgConnection, release_id: i64, key: &str) -> QueryResult<ReleasePhase> {
    release_phases::table.find((release_id, key.to_string())).select(ReleasePhase::as_select()).first(conn).await
}
