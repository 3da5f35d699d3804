//! A release with everything its pages and API answers show.

use diesel::prelude::*;
use diesel_async::AsyncPgConnection;
use serde_json::{json, Value};

use crate::db::models::accounts::Organization;
use crate::db::models::processes::Process;
use crate::db::models::releases::{self as rows, Release, ReleaseActivity, ReleasePhase};
use crate::db::models::users::User;
use crate::domain::process::Definition;
use crate::ops::processes::{self as processes_ops};
use crate::ops::{outbox, OpError};

pub(super) async fn owner_email(conn: &mut AsyncPgConnection, account_id: i64, owner_id: Option<i64>) -> QueryResult<Option<String>> {
    match owner_id {
        Some(id) => Ok(Some(User::find(conn, account_id, id).await?.email)),
        None => Ok(None),
    }
}

/// A release with everything its pages and API answers show.
#[derive(Debug)]
pub struct ReleaseView {
    pub release: Release,
    pub org_slug: Option<String>,
    pub owner_email: Option<String>,
    pub process_name: String,
    pub definition: Definition,
    pub links: Vec<rows::ReleaseLink>,
    pub linked_by: Vec<(i64, String, String)>,
    pub phases: Vec<ReleasePhase>,
    pub activities: Vec<ReleaseActivity>,
}

pub async fn view(conn: &mut AsyncPgConnection, release: Release) -> Result<ReleaseView, OpError> {
    let org_slug = match release.org_id {
        Some(id) => Some(Organization::find(conn, release.account_id, id).await?.slug),
        None => None,
    };
    let owner_email = owner_email(conn, release.account_id, release.owner_id).await?;
    let process = Process::find(conn, release.account_id, release.process_id).await?;
    let definition = processes_ops::load(conn, &process, Some(release.process_version)).await?.1;
    let links = rows::links_from(conn, release.id).await?;
    let linked_by = rows::links_to(conn, release.id).await?;
    let (phases, activities) = rows::tree(conn, release.id).await?;
    Ok(ReleaseView { org_slug, owner_email, process_name: process.name, definition, links, linked_by, phases, activities, release })
}

impl ReleaseView {
    /// The JSON shape of DESIGN §10 (secrets masked).
    pub fn to_json(&self) -> Value {
        let r = &self.release;
        let link = |kind: &str| self.links.iter().filter(|l| l.kind == kind).map(|l| l.target_id).collect::<Vec<_>>();
        let phases: Vec<Value> = self
            .phases
            .iter()
            .map(|p| {
                json!({
                    "key": p.key,
                    "name": p.name,
                    "status": p.status,
                    "owner": p.owner,
                    "activities": self.activities.iter().filter(|a| a.phase_key == p.key).map(|a| json!({
                        "key": a.key,
                        "name": a.name,
                        "kind": a.kind,
                        "status": a.status,
                        "owner": a.owner,
                        "attempts": a.attempts,
                        "outputs": a.outputs,
                        "started_at": a.started_at,
                        "finished_at": a.finished_at,
                    })).collect::<Vec<_>>(),
                })
            })
            .collect();
        json!({
            "id": r.id,
            "name": r.name,
            "type": r.release_type,
            "level": if r.org_id.is_some() { "organization" } else { "account" },
            "org": self.org_slug,
            "process_id": r.process_id,
            "process_version": r.process_version,
            "state": r.state,
            "status": r.status,
            "status_reason": r.status_reason,
            "lock_version": r.lock_version,
            "inputs": processes_ops::masked(&self.definition, &r.inputs),
            "variables": r.variables,
            "schedule": r.schedule_start.map(|s| json!({"start": s, "end": r.schedule_end, "time_zone": r.time_zone})),
            "owner": self.owner_email.as_ref().map(|e| format!("user:{e}")),
            "stakeholders": r.stakeholders,
            "environments": r.environments,
            "services": r.services,
            "links": {
                "depends_on": link("depends_on"),
                "hotfix_for": link("hotfix_for").into_iter().next(),
                "subprocess_of": link("subprocess_of").into_iter().next(),
                "restarted_from": link("restarted_from").into_iter().next(),
            },
            "created_at": r.created_at,
            "activated_at": r.activated_at,
            "started_at": r.started_at,
            "finished_at": r.finished_at,
            "archived_at": r.archived_at,
            "phases": phases,
        })
    }
}

/// Whether the user is named on the release: an owner, an approver, a stakeholder or its manager.
pub async fn is_named(conn: &mut AsyncPgConnection, release: &Release, user_id: i64, email: &str) -> QueryResult<bool> {
    if release.owner_id == Some(user_id) {
        return Ok(true);
    }
    let (phases, activities) = rows::tree(conn, release.id).await?;
    let mut principals: Vec<String> = release.stakeholders.clone();
    principals.extend(phases.iter().map(|p| p.owner.clone()));
    principals.extend(activities.iter().map(|a| a.owner.clone()));
    if activities.iter().any(|a| a.eligible.contains(&user_id)) {
        return Ok(true);
    }
    let named = outbox::recipients(conn, release.account_id, &principals).await?;
    Ok(named.iter().any(|(id, e)| *id == user_id || e.eq_ignore_ascii_case(email)))
}
