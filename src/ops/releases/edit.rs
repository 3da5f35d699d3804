//! Storing releases: create, PATCH of a draft (optimistic locking), rebase; the per-release tree.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use serde_json::{json, Map, Value};

use super::*;
use crate::db::audit::{self, NewEvent};
use crate::db::models::processes::Process;
use crate::db::models::releases::{self as rows, Release, ReleaseActivity, ReleaseFields, ReleasePhase};
use crate::db::schema::audit_events;
use crate::domain::engine::Node;
use crate::domain::policy::{self, Action};
use crate::domain::process::definition::OnFailure;
use crate::domain::process::Definition;
use crate::domain::release::{self as rules, LinkKind, State};
use crate::domain::rule::RuleCode;
use crate::ops::calendar::warn_conflicts;
use crate::ops::processes::{self as processes_ops};
use crate::ops::{Actor, OpError, Requester};
use crate::security::SecretBox;

/// The per-release copies of phases and activities, owners resolved (activity → phase → manager).
pub(super) fn build_tree(release: &Release, def: &Definition, manager: Option<&str>) -> (Vec<ReleasePhase>, Vec<ReleaseActivity>) {
    let mut phases = Vec::new();
    let mut activities = Vec::new();
    for (i, p) in def.phases.iter().enumerate() {
        phases.push(ReleasePhase {
            release_id: release.id,
            key: p.key.clone(),
            account_id: release.account_id,
            position: i as i32,
            name: p.name.clone(),
            owner: rules::resolve_owner(None, p.owner.as_deref(), manager),
            depends_on: p.depends_on.clone(),
            rollback: p.rollback,
            status: Node::NotStarted,
            started_at: None,
            finished_at: None,
            wake_at: None,
        });
        for (j, a) in p.activities.iter().enumerate() {
            activities.push(ReleaseActivity {
                release_id: release.id,
                phase_key: p.key.clone(),
                key: a.key.clone(),
                account_id: release.account_id,
                position: j as i32,
                name: a.name.clone(),
                kind: a.kind,
                owner: rules::resolve_owner(a.owner.as_deref(), p.owner.as_deref(), manager),
                depends_on: a.depends_on.clone(),
                critical: a.is_critical(),
                status: Node::NotStarted,
                attempts: 0,
                outputs: json!({}),
                started_at: None,
                finished_at: None,
                on_failure: a.on_failure.unwrap_or(if a.is_critical() { OnFailure::Manual } else { OnFailure::Ignore }),
                wake_at: None,
                status_reason: None,
                eligible: Vec::new(),
                needed: 0,
                last_actor: None,
                hold: None,
                note: None,
                run_first_attempt: 1,
                last_reminded_at: None,
                escalation_level: 0,
                deadline: None,
                fan_of: None,
                item: None,
                item_value: None,
                fanned: false,
                waiting_for: None,
            });
        }
    }
    (phases, activities)
}

/// The fields as written on the audit trail (secrets masked).
pub(super) fn audit_view(fields: &ReleaseFields, def: &Definition) -> Value {
    json!({
        "name": fields.name,
        "type": fields.release_type,
        "org_id": fields.org_id,
        "process_id": fields.process_id,
        "process_version": fields.process_version,
        "inputs": processes_ops::masked(def, &fields.inputs),
        "variables": fields.variables,
        "schedule_start": fields.schedule_start,
        "schedule_end": fields.schedule_end,
        "time_zone": fields.time_zone,
        "owner_id": fields.owner_id,
        "stakeholders": fields.stakeholders,
        "environments": fields.environments,
        "services": fields.services,
    })
}

#[derive(Debug)]
pub struct Saved {
    pub release: Release,
    pub warnings: Vec<String>,
}

/// Creates a release from a page or the API: checks it, authorizes it (creating, and activating
/// when asked), stores it and records conflict warnings, all in one transaction.
pub async fn create_release(
    conn: &mut AsyncPgConnection,
    who: Requester<'_>,
    secrets: &SecretBox,
    input: &ReleaseInput,
    now: DateTime<Utc>,
) -> Result<Saved, OpError> {
    let prepared = prepare(conn, who.actor, who.time_zone, secrets, input, None, false).await?;
    policy::require(who.bindings, Action::CreateRelease, prepared.scope())?;
    let activate = input.activate.unwrap_or(false);
    if activate {
        policy::require(who.bindings, Action::Activate, prepared.scope())?;
    }
    conn.transaction(async |conn| {
        let mut saved = create(conn, who.actor, prepared, activate, now).await?;
        saved.warnings.extend(warn_conflicts(conn, &saved.release, who.bindings, &who.actor.label, now).await?);
        Ok(saved)
    })
    .await
}

/// Edits a draft from a page or the API: only a draft, only by who may edit it where it is and
/// where it moves to; conflict warnings recorded in the same transaction.
pub async fn edit_draft(
    conn: &mut AsyncPgConnection,
    who: Requester<'_>,
    secrets: &SecretBox,
    release: &Release,
    input: &ReleaseInput,
    now: DateTime<Utc>,
) -> Result<Saved, OpError> {
    policy::require(who.bindings, Action::EditDraft, release.scope())?;
    if release.state() != State::Draft {
        return Err(OpError::Rule {
            code: RuleCode::NotDraft,
            field: None,
            message: format!("Only drafts can be edited; this release is {}.", release.state()),
        });
    }
    let prepared = prepare(conn, who.actor, who.time_zone, secrets, input, Some(release), false).await?;
    policy::require(who.bindings, Action::EditDraft, prepared.scope())?;
    conn.transaction(async |conn| {
        let mut saved = update(conn, who.actor, release.id, input.lock_version, prepared, now).await?;
        saved.warnings.extend(warn_conflicts(conn, &saved.release, who.bindings, &who.actor.label, now).await?);
        Ok(saved)
    })
    .await
}

/// Stores a prepared release as a draft (and activates it at once when asked), in one transaction.
pub async fn create(
    conn: &mut AsyncPgConnection,
    actor: &Actor,
    prepared: Prepared,
    activate: bool,
    now: DateTime<Utc>,
) -> Result<Saved, OpError> {
    let Prepared { fields, definition, links, warnings } = prepared;
    let release = conn
        .transaction(async |conn| {
            let release = Release::insert(conn, actor.account_id, &fields, actor.user_id, now).await?;
            for (kind, target) in &links {
                rows::add_link(conn, actor.account_id, release.id, *kind, *target).await?;
            }
            let manager = owner_email(conn, actor.account_id, release.owner_id).await?;
            let (phases, activities) = build_tree(&release, &definition, manager.as_deref());
            rows::replace_tree(conn, release.id, &phases, &activities).await?;
            audit::append(
                conn,
                NewEvent::release(&release, &actor.label, "release.create").with_details(json!({"after": audit_view(&fields, &definition), "links": links.iter().map(|(k, t)| json!({"kind": k.as_str(), "target": t})).collect::<Vec<_>>()})),
                now,
            )
            .await?;
            if activate {
                return activate_locked(conn, &actor.label, release, now, None).await;
            }
            if release.schedule_start.is_some() {
                // The workers sleep until the next start they know of; this may be sooner.
                crate::db::wake::wake(conn).await?;
            }
            Ok::<_, OpError>(release)
        })
        .await?;
    Ok(Saved { release, warnings })
}

/// What changed between two versions of a release's fields, by field name.
pub(super) fn changes(before: &Value, after: &Value) -> Map<String, Value> {
    let mut out = Map::new();
    if let (Some(b), Some(a)) = (before.as_object(), after.as_object()) {
        for (k, av) in a {
            let bv = b.get(k).unwrap_or(&Value::Null);
            if bv != av {
                out.insert(k.clone(), json!({"before": bv, "after": av}));
            }
        }
    }
    out
}

/// Saves a PATCH of a draft if `expected_version` is still current; else a conflict naming
/// what changed since, and who changed it.
pub async fn update(
    conn: &mut AsyncPgConnection,
    actor: &Actor,
    release_id: i64,
    expected_version: Option<i32>,
    prepared: Prepared,
    now: DateTime<Utc>,
) -> Result<Saved, OpError> {
    let Prepared { fields, definition, links, warnings } = prepared;
    let release = conn
        .transaction(async |conn| {
            let current = Release::lock(conn, actor.account_id, release_id).await?;
            if current.state() != State::Draft {
                return Err(OpError::Rule {
                    code: RuleCode::NotDraft,
                    message: format!("Only drafts can be edited; this release is {}.", current.state()),
                    field: None,
                });
            }
            let expected = expected_version.unwrap_or(current.lock_version);
            if expected != current.lock_version {
                return Err(conflict(conn, &current, expected).await?);
            }
            let old_def = pinned_definition(conn, &current).await?;
            let diff = changes(&audit_view(&current.fields(), &old_def), &audit_view(&fields, &definition));
            let updated = Release::update_if_version(conn, current.id, expected, &fields, now).await?.ok_or(OpError::NotFound)?;
            rows::remove_links(conn, updated.id, &["depends_on", "hotfix_for"]).await?;
            for (kind, target) in links.iter().filter(|(k, _)| matches!(k, LinkKind::DependsOn | LinkKind::HotfixFor)) {
                rows::add_link(conn, actor.account_id, updated.id, *kind, *target).await?;
            }
            let manager = owner_email(conn, actor.account_id, updated.owner_id).await?;
            let (phases, activities) = build_tree(&updated, &definition, manager.as_deref());
            rows::replace_tree(conn, updated.id, &phases, &activities).await?;
            audit::append(
                conn,
                NewEvent::release(&updated, &actor.label, "release.update")
                    .with_details(json!({"lock_version": updated.lock_version, "changes": diff})),
                now,
            )
            .await?;
            if updated.schedule_start.is_some() && updated.schedule_start != current.schedule_start {
                crate::db::wake::wake(conn).await?;
            }
            Ok::<_, OpError>(updated)
        })
        .await?;
    Ok(Saved { release, warnings })
}

/// "Changed since your version N by …: name, inputs" from the release's own audit chain.
pub(super) async fn conflict(conn: &mut AsyncPgConnection, current: &Release, expected: i32) -> Result<OpError, OpError> {
    let events: Vec<(String, Value)> = audit_events::table
        .filter(audit_events::release_id.eq(current.id))
        .filter(audit_events::action.eq("release.update"))
        .order(audit_events::seq)
        .select((audit_events::actor, audit_events::details))
        .load(conn)
        .await?;
    let mut fields_changed: Vec<String> = Vec::new();
    let mut actors: Vec<String> = Vec::new();
    for (actor, details) in events {
        if details["lock_version"].as_i64().is_some_and(|v| v > i64::from(expected)) {
            if !actors.contains(&actor) {
                actors.push(actor);
            }
            for k in details["changes"].as_object().map(|m| m.keys().cloned().collect::<Vec<_>>()).unwrap_or_default() {
                if !fields_changed.contains(&k) {
                    fields_changed.push(k);
                }
            }
        }
    }
    let what = if fields_changed.is_empty() { "it was saved again without changes".to_string() } else { fields_changed.join(", ") };
    let who = if actors.is_empty() { String::new() } else { format!(" by {}", actors.join(", ")) };
    Ok(OpError::Conflict {
        message: format!(
            "This draft changed since your version {expected}{who}: {what}. It is now at version {}; reload and apply your change again.",
            current.lock_version
        ),
    })
}

/// Moves a draft onto the newest process version; its inputs are checked again.
pub async fn rebase(
    conn: &mut AsyncPgConnection,
    actor: &Actor,
    time_zone: &str,
    secrets: &SecretBox,
    release_id: i64,
    now: DateTime<Utc>,
) -> Result<Saved, OpError> {
    let current = Release::find(conn, actor.account_id, release_id).await?;
    let process = Process::find(conn, actor.account_id, current.process_id).await?;
    if process.latest_version == current.process_version {
        return Err(OpError::Rule {
            code: RuleCode::UpToDate,
            message: format!("The draft already uses the newest version ({}).", process.latest_version),
            field: None,
        });
    }
    let prepared = prepare(conn, actor, time_zone, secrets, &ReleaseInput::default(), Some(&current), true).await?;
    update(conn, actor, release_id, Some(current.lock_version), prepared, now).await
}
