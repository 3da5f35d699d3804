//! What waits for a person ("my work") and their in-app notifications.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use crate::db::models::releases::{Release, ReleaseActivity};
use crate::db::schema::{approval_votes, notifications, release_activities, releases};
use crate::domain::engine::Node;
use crate::domain::policy::Binding;
use crate::domain::process::definition::ActivityKind;
use crate::domain::release::State;
use crate::ops::activities::{may_act, Person, Verb};
use crate::ops::{Actor, OpError};

/// An activity waiting for this person, with what they may do to it now.
pub struct Waiting {
    pub release: Release,
    pub activity: ReleaseActivity,
    pub allowed: Vec<&'static str>,
}

/// Approvals, manual tasks and failure decisions this person may act on, oldest first.
pub async fn waiting_for(
    conn: &mut AsyncPgConnection,
    actor: &Actor,
    email: &str,
    bindings: &[Binding],
    now: DateTime<Utc>,
) -> Result<Vec<Waiting>, OpError> {
    let user_id = actor.user_id.ok_or(OpError::NotFound)?;
    let person = Person::load(conn, actor.clone(), (email, bindings), now).await?;
    let waiting: Vec<(ReleaseActivity, Release)> = release_activities::table
        .inner_join(releases::table.on(releases::id.eq(release_activities::release_id)))
        .filter(releases::account_id.eq(actor.account_id))
        .filter(release_activities::account_id.eq(actor.account_id))
        .filter(releases::state.eq(State::Active))
        .filter(release_activities::status.eq_any([Node::Running, Node::OnHold]))
        .filter(release_activities::fanned.eq(false))
        .filter(
            release_activities::kind.eq_any([ActivityKind::Manual, ActivityKind::Approval]).or(release_activities::status.eq(Node::OnHold)),
        )
        .order(release_activities::started_at.asc())
        .select((ReleaseActivity::as_select(), Release::as_select()))
        .load(conn)
        .await?;
    // This person's votes on the approvals listed, in one statement whatever their number.
    let approval_releases: Vec<i64> = waiting.iter().filter(|(a, _)| a.is_kind(ActivityKind::Approval)).map(|(_, r)| r.id).collect();
    let votes: Vec<(i64, String, String, i32)> = if approval_releases.is_empty() {
        Vec::new()
    } else {
        approval_votes::table
            .filter(approval_votes::release_id.eq_any(&approval_releases))
            .filter(approval_votes::cast_by.eq(user_id))
            .select((approval_votes::release_id, approval_votes::phase_key, approval_votes::activity_key, approval_votes::round))
            .load(conn)
            .await?
    };
    let mut items = Vec::new();
    for (a, r) in waiting {
        let mut allowed: Vec<&'static str> =
            Verb::ALL.iter().filter(|v| may_act(&person, &r, &a, **v).is_ok()).map(|v| v.as_str()).collect();
        // Release managers may complete anyone's task; "my work" lists what is assigned to me.
        let mine = |owner: &str| match owner.split_once(':') {
            Some(("user", e)) => e.eq_ignore_ascii_case(email),
            Some(("group", g)) => person.groups.iter().any(|x| x == g),
            _ => false,
        };
        if a.is_kind(ActivityKind::Manual) && a.node() == Node::Running && !mine(&a.owner) {
            allowed.retain(|v| *v != "complete" && *v != "fail");
        }
        if allowed.contains(&"approve") {
            let voted = votes
                .iter()
                .any(|(release, phase, key, round)| *release == r.id && phase == &a.phase_key && key == &a.key && *round == a.attempts);
            if voted {
                allowed.retain(|v| *v != "approve" && *v != "reject");
            }
        }
        if !allowed.is_empty() {
            items.push(Waiting { release: r, activity: a, allowed });
        }
    }
    Ok(items)
}

/// (subject, body, link, created at, read at)
pub type StoredNotification = (String, String, Option<String>, DateTime<Utc>, Option<DateTime<Utc>>);

/// The person's newest 200 notifications.
pub async fn notifications(conn: &mut AsyncPgConnection, user_id: i64) -> QueryResult<Vec<StoredNotification>> {
    notifications::table
        .filter(notifications::user_id.eq(user_id))
        .order(notifications::created_at.desc())
        .limit(200)
        .select((notifications::subject, notifications::body, notifications::link, notifications::created_at, notifications::read_at))
        .load(conn)
        .await
}

pub async fn mark_read(conn: &mut AsyncPgConnection, user_id: i64, now: DateTime<Utc>) -> QueryResult<usize> {
    diesel::update(notifications::table.filter(notifications::user_id.eq(user_id)).filter(notifications::read_at.is_null()))
        .set(notifications::read_at.eq(now))
        .execute(conn)
        .await
}
