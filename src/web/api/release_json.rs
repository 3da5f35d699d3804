//! The release as the API answers it (DESIGN §10 shape; secrets masked).

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;

use crate::db::models::releases::{Release, ReleaseActivity, ReleasePhase};
use crate::domain::release::LinkKind;
use crate::ops::processes::masked;
use crate::ops::releases::ReleaseView;

#[derive(Serialize, utoipa::ToSchema)]
pub struct ReleaseJson<'a> {
    pub id: i64,
    pub name: &'a str,
    #[serde(rename = "type")]
    pub release_type: &'a str,
    pub level: &'static str,
    pub org: Option<&'a str>,
    pub process_id: i64,
    pub process_version: i32,
    pub state: &'a str,
    pub status: &'a str,
    pub status_reason: Option<&'a str>,
    /// Why an OnHold release waits, as data: `engine_error` when the engine set it aside.
    pub hold: Option<&'static str>,
    pub lock_version: i32,
    pub inputs: serde_json::Map<String, Value>,
    pub variables: &'a Value,
    pub schedule: Option<ScheduleJson<'a>>,
    pub owner: Option<String>,
    pub stakeholders: &'a [String],
    pub environments: &'a [String],
    pub services: &'a [String],
    pub links: LinksJson,
    pub created_at: DateTime<Utc>,
    pub activated_at: Option<DateTime<Utc>>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub archived_at: Option<DateTime<Utc>>,
    pub phases: Vec<PhaseJson<'a>>,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    pub warnings: &'a [String],
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ScheduleJson<'a> {
    pub start: DateTime<Utc>,
    pub end: Option<DateTime<Utc>>,
    pub time_zone: &'a str,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct LinksJson {
    pub depends_on: Vec<i64>,
    pub hotfix_for: Option<i64>,
    pub subprocess_of: Option<i64>,
    pub restarted_from: Option<i64>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct PhaseJson<'a> {
    pub key: &'a str,
    pub name: &'a str,
    pub status: &'a str,
    /// Why the phase waits: its first held activity's reason and hold (DESIGN §10).
    pub status_reason: Option<&'a str>,
    pub hold: Option<&'static str>,
    pub owner: &'a str,
    pub activities: Vec<ActivityJson<'a>>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ActivityJson<'a> {
    pub key: &'a str,
    pub name: &'a str,
    pub kind: &'a str,
    pub status: &'a str,
    pub status_reason: Option<&'a str>,
    /// Why it waits, as data: `freeze`, `decision`, `approval`, `manual`, `deploy_lock` or
    /// `engine_error` while it is OnHold, null otherwise.
    pub hold: Option<&'static str>,
    pub owner: &'a str,
    pub attempts: i32,
    pub outputs: &'a Value,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    /// When its `timeout` runs out, while it is in progress.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deadline: Option<DateTime<Utc>>,
    /// The deploy lock it waits for: `{environment, service?, held_by: {release_id, name,
    /// phase}, since}`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub waiting_for: Option<&'a Value>,
    /// A fan-out activity's instances, one per item.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instances: Option<Vec<InstanceJson<'a>>>,
}

/// One instance of a fan-out activity (DESIGN §3, §10).
#[derive(Serialize, utoipa::ToSchema)]
pub struct InstanceJson<'a> {
    pub item: &'a str,
    /// `activity[item]`: the key that names it in URLs (percent-encoded as one segment).
    pub key: &'a str,
    pub status: &'a str,
    pub status_reason: Option<&'a str>,
    pub hold: Option<&'static str>,
    pub attempts: i32,
    pub outputs: &'a Value,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub waiting_for: Option<&'a Value>,
}

/// An activity's hold while it is OnHold, or Waiting for a deploy lock.
fn held(a: &ReleaseActivity) -> Option<crate::domain::release::Hold> {
    use crate::domain::engine::Node;
    use crate::domain::release::Hold;
    a.hold.filter(|h| a.node() == Node::OnHold || (*h == Hold::DeployLock && a.node() == Node::Waiting))
}

impl<'a> InstanceJson<'a> {
    fn of(a: &'a ReleaseActivity) -> Self {
        InstanceJson {
            item: a.item.as_deref().unwrap_or_default(),
            key: &a.key,
            status: a.status.as_str(),
            status_reason: a.status_reason.as_deref(),
            hold: held(a).map(|h| h.as_str()),
            attempts: a.attempts,
            outputs: &a.outputs,
            started_at: a.started_at,
            finished_at: a.finished_at,
            waiting_for: a.waiting_for.as_ref().filter(|_| held(a).is_some()),
        }
    }
}

impl<'a> ActivityJson<'a> {
    fn of(a: &'a ReleaseActivity, all: &'a [ReleaseActivity], fan_out: bool) -> Self {
        let instances: Vec<InstanceJson<'a>> = all
            .iter()
            .filter(|i| i.phase_key == a.phase_key && i.fan_of.as_deref() == Some(a.key.as_str()))
            .map(InstanceJson::of)
            .collect();
        ActivityJson {
            waiting_for: a.waiting_for.as_ref().filter(|_| held(a).is_some()),
            instances: fan_out.then_some(instances),
            key: &a.key,
            name: &a.name,
            kind: a.kind.as_str(),
            status: a.status.as_str(),
            status_reason: a.status_reason.as_deref(),
            hold: held(a).map(|h| h.as_str()),
            owner: &a.owner,
            attempts: a.attempts,
            outputs: &a.outputs,
            started_at: a.started_at,
            finished_at: a.finished_at,
            deadline: a.deadline.filter(|_| a.node().in_progress()),
        }
    }
}

impl<'a> PhaseJson<'a> {
    fn of(p: &'a ReleasePhase, activities: &'a [ReleaseActivity], def: &crate::domain::process::Definition) -> Self {
        let first_held = activities.iter().find(|a| a.phase_key == p.key && held(a).is_some());
        PhaseJson {
            key: &p.key,
            name: &p.name,
            status: p.status.as_str(),
            status_reason: first_held.and_then(|a| a.status_reason.as_deref()),
            hold: first_held.and_then(held).map(|h| h.as_str()),
            owner: &p.owner,
            activities: activities
                .iter()
                .filter(|a| a.phase_key == p.key && !a.is_instance())
                .map(|a| ActivityJson::of(a, activities, def.activity(&a.phase_key, &a.key).is_some_and(|d| d.for_each.is_some())))
                .collect(),
        }
    }
}

impl<'a> ReleaseJson<'a> {
    pub fn of(view: &'a ReleaseView, warnings: &'a [String]) -> Self {
        let r = &view.release;
        let link = |kind: LinkKind| view.links.iter().filter(|l| l.is(kind)).map(|l| l.target_id).collect::<Vec<_>>();
        ReleaseJson {
            id: r.id,
            name: &r.name,
            release_type: r.release_type.as_str(),
            level: if r.org_id.is_some() { "organization" } else { "account" },
            org: view.org_slug.as_deref(),
            process_id: r.process_id,
            process_version: r.process_version,
            state: r.state.as_str(),
            status: r.status.as_str(),
            status_reason: r.status_reason.as_deref(),
            hold: r.hold.filter(|_| r.status() == crate::domain::release::Status::OnHold).map(|h| h.as_str()),
            lock_version: r.lock_version,
            inputs: masked(&view.definition, &r.inputs),
            variables: &r.variables,
            schedule: r.schedule_start.map(|start| ScheduleJson { start, end: r.schedule_end, time_zone: &r.time_zone }),
            owner: view.owner_email.as_ref().map(|e| format!("user:{e}")),
            stakeholders: &r.stakeholders,
            environments: &r.environments,
            services: &r.services,
            links: LinksJson {
                depends_on: link(LinkKind::DependsOn),
                hotfix_for: link(LinkKind::HotfixFor).into_iter().next(),
                subprocess_of: link(LinkKind::SubprocessOf).into_iter().next(),
                restarted_from: link(LinkKind::RestartedFrom).into_iter().next(),
            },
            created_at: r.created_at,
            activated_at: r.activated_at,
            started_at: r.started_at,
            finished_at: r.finished_at,
            archived_at: r.archived_at,
            phases: view.phases.iter().map(|p| PhaseJson::of(p, &view.activities, &view.definition)).collect(),
            warnings,
        }
    }
}

/// One row of `GET /api/v1/releases`.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ReleaseRowJson<'a> {
    pub id: i64,
    pub name: &'a str,
    #[serde(rename = "type")]
    pub release_type: &'a str,
    pub level: &'static str,
    pub state: &'a str,
    pub status: &'a str,
    pub process_id: i64,
    pub process_version: i32,
    pub schedule: Option<ScheduleJson<'a>>,
    pub environments: &'a [String],
    pub services: &'a [String],
    pub lock_version: i32,
}

impl<'a> ReleaseRowJson<'a> {
    pub fn of(r: &'a Release) -> Self {
        ReleaseRowJson {
            id: r.id,
            name: &r.name,
            release_type: r.release_type.as_str(),
            level: if r.org_id.is_some() { "organization" } else { "account" },
            state: r.state.as_str(),
            status: r.status.as_str(),
            process_id: r.process_id,
            process_version: r.process_version,
            schedule: r.schedule_start.map(|start| ScheduleJson { start, end: r.schedule_end, time_zone: &r.time_zone }),
            environments: &r.environments,
            services: &r.services,
            lock_version: r.lock_version,
        }
    }
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ReleaseListJson<'a> {
    pub releases: Vec<ReleaseRowJson<'a>>,
    pub page: i64,
    pub page_size: i64,
    pub total: i64,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct DeletedJson<'a> {
    pub deleted: i64,
    pub purged: bool,
    pub removed_links: Vec<RemovedLinkJson<'a>>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct RemovedLinkJson<'a> {
    pub release_id: i64,
    pub name: &'a str,
    pub kind: &'a str,
}
