//! Starting an activity, by kind: who owns it, who may approve it, when a wait ends.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde_json::json;

use crate::db::audit::{self, NewEvent};
use crate::db::models::releases::{Release, ReleaseActivity};
use crate::db::schema::release_activities;
use crate::domain::engine::Node;
use crate::domain::process::definition::{ActivityDef, ActivityKind, Threshold};
use crate::domain::process::time::parse_duration;
use crate::ops::{notify, OpError};

pub struct Started {
    pub status: Node,
    pub wake_at: Option<DateTime<Utc>>,
}

/// Approvals needed from `eligible` approvers (DESIGN §3).
pub fn needed(def: &ActivityDef, eligible: usize) -> usize {
    match (def.required_approvals, def.threshold.unwrap_or(Threshold::Any)) {
        (Some(n), _) => n as usize,
        (None, Threshold::Any) => 1,
        (None, Threshold::All) => eligible.max(1),
        (None, Threshold::Majority) => eligible / 2 + 1,
    }
}

/// The distinct active users named directly or through groups, minus — with separation of
/// duties — the release's creator and release manager.
pub async fn eligible_approvers(conn: &mut AsyncPgConnection, r: &Release, def: &ActivityDef) -> QueryResult<Vec<(i64, String)>> {
    let all = notify::recipients(conn, r.account_id, &def.approvers).await?;
    let separated = def.separation_of_duties == Some(true);
    Ok(all.into_iter().filter(|(id, _)| !(separated && (Some(*id) == r.created_by || Some(*id) == r.owner_id))).collect())
}

/// Initialises an activity that starts now (a new attempt or approval round).
pub async fn start(
    conn: &mut AsyncPgConnection,
    r: &Release,
    row: &ReleaseActivity,
    def: &ActivityDef,
    now: DateTime<Utc>,
) -> Result<Started, OpError> {
    let mut status = Node::Running;
    let mut wake_at = None;
    let mut reason: Option<String> = None;
    let mut eligible: Vec<i64> = Vec::new();
    let mut needed_count = 0;
    let mut tell: Vec<(i64, String)> = Vec::new();
    match def.kind {
        ActivityKind::Manual => {
            tell = notify::recipients(conn, r.account_id, std::slice::from_ref(&row.owner)).await?;
        }
        ActivityKind::Approval => {
            let approvers = eligible_approvers(conn, r, def).await?;
            needed_count = needed(def, approvers.len());
            eligible = approvers.iter().map(|(id, _)| *id).collect();
            if approvers.len() < needed_count {
                status = Node::OnHold;
                reason = Some(format!(
                    "only {} eligible approver(s) for {} needed approval(s){}",
                    approvers.len(),
                    needed_count,
                    if def.separation_of_duties == Some(true) {
                        " (separation of duties excludes the creator and release manager)"
                    } else {
                        ""
                    }
                ));
            }
            tell = approvers;
        }
        ActivityKind::Wait => {
            status = Node::Waiting;
            wake_at = match (&def.wait_for, &def.until) {
                (Some(d), _) => parse_duration(d).ok().map(|d| now + d),
                (None, Some(u)) => super::resolve_point(u, r),
                _ => None,
            };
            if wake_at.is_none() {
                status = Node::OnHold;
                reason = Some("the wait's time could not be resolved; a release manager decides".into());
            }
        }
        ActivityKind::Webhook | ActivityKind::Subprocess => {
            reason = Some(format!("{} activities are run by the engine's automation support (not yet available)", def.kind.as_str()));
        }
    }
    diesel::update(
        release_activities::table
            .filter(release_activities::release_id.eq(r.id))
            .filter(release_activities::phase_key.eq(&row.phase_key))
            .filter(release_activities::key.eq(&row.key)),
    )
    .set((
        release_activities::status.eq(status.as_str()),
        release_activities::attempts.eq(release_activities::attempts + 1),
        release_activities::started_at.eq(now),
        release_activities::finished_at.eq(None::<DateTime<Utc>>),
        release_activities::wake_at.eq(wake_at),
        release_activities::status_reason.eq(&reason),
        release_activities::eligible.eq(&eligible),
        release_activities::needed.eq(needed_count as i32),
    ))
    .execute(conn)
    .await?;
    audit::append(
        conn,
        NewEvent {
            account_id: Some(r.account_id),
            release_id: Some(r.id),
            actor: "system:engine".into(),
            action: "activity.start".into(),
            subject: format!("activity:{}.{}", row.phase_key, row.key),
            reason: reason.clone(),
            details: json!({"attempt": row.attempts + 1, "status": status.as_str(), "eligible": eligible, "needed": needed_count, "wake_at": wake_at}),
        },
        now,
    )
    .await?;
    if !tell.is_empty() {
        let (kind, subject) = match def.kind {
            ActivityKind::Approval => ("approval.waiting", format!("Your approval is needed: \"{}\" in \"{}\"", def.name, r.name)),
            _ => ("activity.waiting", format!("Your task is waiting: \"{}\" in \"{}\"", def.name, r.name)),
        };
        notify::enqueue(conn, r.account_id, &tell, kind, &subject, reason.as_deref().unwrap_or(""), &format!("/releases/{}", r.id), now)
            .await?;
    }
    Ok(Started { status, wake_at })
}
