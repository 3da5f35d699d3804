//! Reminders for waiting approvals every account-set interval, and `escalate_after` escalation:
//! first the phase owner, then the release manager.

use chrono::{DateTime, TimeDelta, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use std::collections::HashMap;

use crate::db::models::releases::activity_by_key;
use crate::db::models::releases::{Release, ReleaseActivity, ReleasePhase};
use crate::db::schema::{account_settings, approval_votes, release_activities, release_phases, releases};
use crate::domain::engine::Node;
use crate::domain::process::definition::ActivityKind;
use crate::domain::process::time::parse_duration;
use crate::domain::process::Definition;
use crate::domain::release::State;
use crate::domain::release::Status;
use crate::ops::outbox::NewNotification;
use crate::ops::{outbox, OpError};

pub async fn sweep(conn: &mut AsyncPgConnection, now: DateTime<Utc>) -> Result<usize, OpError> {
    let waiting: Vec<(ReleaseActivity, Release)> = release_activities::table
        .inner_join(releases::table.on(releases::id.eq(release_activities::release_id)))
        .filter(releases::state.eq(State::Active.as_str()))
        .filter(releases::status.eq_any([Status::Running.as_str(), Status::OnHold.as_str()]))
        .filter(release_activities::status.eq_any([Status::Running.as_str(), Status::OnHold.as_str()]))
        .filter(release_activities::kind.eq_any(["manual", "approval"]))
        .select((ReleaseActivity::as_select(), Release::as_select()))
        .load(conn)
        .await?;
    let mut sent = 0;
    let mut definitions: HashMap<i64, Definition> = HashMap::new();
    let mut intervals: HashMap<i64, i64> = HashMap::new();
    for (a, r) in waiting {
        let Some(started) = a.started_at else { continue };
        if a.is_kind(ActivityKind::Approval) && a.node() == Node::Running {
            let minutes = match intervals.get(&r.account_id) {
                Some(m) => *m,
                None => {
                    let m: i32 =
                        account_settings::table.find(r.account_id).select(account_settings::reminder_interval_minutes).first(conn).await?;
                    intervals.insert(r.account_id, i64::from(m));
                    i64::from(m)
                }
            };
            let last = a.last_reminded_at.unwrap_or(started);
            // One reminder per interval, however far the clock jumped.
            if now - last >= TimeDelta::minutes(minutes) {
                let voted: Vec<i64> = approval_votes::table
                    .filter(approval_votes::release_id.eq(r.id))
                    .filter(approval_votes::phase_key.eq(&a.phase_key))
                    .filter(approval_votes::activity_key.eq(&a.key))
                    .filter(approval_votes::round.eq(a.attempts))
                    .select(approval_votes::user_id)
                    .load(conn)
                    .await?;
                let pending: Vec<i64> = a.eligible.iter().copied().filter(|u| !voted.contains(u)).collect();
                let to: Vec<(i64, String)> = crate::db::schema::users::table
                    .filter(crate::db::schema::users::id.eq_any(&pending))
                    .select((crate::db::schema::users::id, crate::db::schema::users::email))
                    .load(conn)
                    .await?;
                outbox::enqueue(
                    conn,
                    &NewNotification {
                        account_id: r.account_id,
                        recipients: &to,
                        kind: "approval.reminder",
                        subject: &format!("Reminder: your approval is needed for \"{}\" in \"{}\"", a.name, r.name),
                        body: "",
                        link: &format!("/releases/{}", r.id),
                    },
                    now,
                )
                .await?;
                diesel::update(activity_by_key(r.id, &a.phase_key, &a.key))
                    .set(release_activities::last_reminded_at.eq(now))
                    .execute(conn)
                    .await?;
                sent += 1;
            }
        }
        if a.escalation_level < 2 {
            if let std::collections::hash_map::Entry::Vacant(slot) = definitions.entry(r.id) {
                slot.insert(crate::ops::releases::pinned_definition(conn, &r).await?);
            }
            let escalate_after = definitions
                .get(&r.id)
                .and_then(|d| d.phase(&a.phase_key))
                .and_then(|p| p.activities.iter().find(|x| x.key == a.key))
                .and_then(|x| x.escalate_after.as_deref())
                .and_then(|e| parse_duration(e).ok());
            if let Some(after) = escalate_after {
                let level = a.escalation_level;
                if now - started >= after * (level + 1) {
                    let target = if level == 0 {
                        let phase: ReleasePhase =
                            release_phases::table.find((r.id, a.phase_key.clone())).select(ReleasePhase::as_select()).first(conn).await?;
                        phase.owner
                    } else {
                        match r.owner_id {
                            Some(id) => format!("user:{}", crate::db::models::users::User::find(conn, r.account_id, id).await?.email),
                            None => String::new(),
                        }
                    };
                    let to = outbox::recipients(conn, r.account_id, &[target]).await?;
                    let who = if level == 0 { "phase owner" } else { "release manager" };
                    outbox::enqueue(
                        conn,
                        &NewNotification {
                            account_id: r.account_id,
                            recipients: &to,
                            kind: "activity.escalated",
                            subject: &format!("Escalation: \"{}\" in \"{}\" has waited too long", a.name, r.name),
                            body: &format!("Escalated to the {who} after waiting since {}.", started.format("%Y-%m-%d %H:%M UTC")),
                            link: &format!("/releases/{}", r.id),
                        },
                        now,
                    )
                    .await?;
                    diesel::update(activity_by_key(r.id, &a.phase_key, &a.key))
                        .set(release_activities::escalation_level.eq(level + 1))
                        .execute(conn)
                        .await?;
                    sent += 1;
                }
            }
        }
    }
    Ok(sent)
}
