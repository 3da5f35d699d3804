//! Releases: create, edit drafts (optimistic locking), activate (and the auto-activation sweep),
//! run now, abort, restart, delete/purge, retention.

use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::processes::{self as processes_ops, MASK};
use super::{notify, Actor, OpError};
use crate::db::audit::{self, NewEvent};
use crate::db::models::accounts::{AccountSettings, Organization};
use crate::db::models::catalog::{Environment, Group};
use crate::db::models::processes::{InputSet, Process};
use crate::db::models::releases::{self as rows, Release, ReleaseActivity, ReleaseFields, ReleasePhase};
use crate::db::models::users::User;
use crate::db::schema::{audit_events, releases, role_bindings, sweep_runs};
use crate::domain::policy::{self, Action, Binding, Role, Scope};
use crate::domain::process::inputs::check_values;
use crate::domain::process::template::to_text;
use crate::domain::process::validate::{check_principal, mentions};
use crate::domain::process::Definition;
use crate::domain::release::{self as rules, Deletion, DeletionFacts, LinkKind, ReleaseType, State, Status};
use crate::domain::validate::{self as fields, FieldErrors};
use crate::security::SecretBox;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduleInput {
    pub start: String,
    pub end: String,
    #[serde(default)]
    pub time_zone: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinksInput {
    #[serde(default)]
    pub depends_on: Option<Vec<i64>>,
    #[serde(default)]
    pub hotfix_for: Option<Option<i64>>,
}

/// A create (all of it) or a PATCH of a draft (only what is given).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReleaseInput {
    pub process_id: Option<i64>,
    pub name: Option<String>,
    #[serde(rename = "type")]
    pub release_type: Option<String>,
    /// An org slug; `null` or absent = account level.
    #[serde(default, deserialize_with = "present")]
    pub org: Option<Option<String>>,
    pub inputs: Option<Map<String, Value>>,
    pub variables: Option<Map<String, Value>>,
    #[serde(default, deserialize_with = "present")]
    pub schedule: Option<Option<ScheduleInput>>,
    pub owner: Option<String>,
    pub stakeholders: Option<Vec<String>>,
    pub links: Option<LinksInput>,
    pub input_set: Option<String>,
    pub activate: Option<bool>,
    pub lock_version: Option<i32>,
}

/// Tells "absent" (None) from "null" (Some(None)).
fn present<'de, D: serde::Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

/// A checked release, ready to store.
#[derive(Debug)]
pub struct Prepared {
    pub fields: ReleaseFields,
    pub definition: Definition,
    pub links: Vec<(LinkKind, i64)>,
    pub warnings: Vec<String>,
}

impl Prepared {
    pub fn scope(&self) -> Scope {
        self.fields.org_id.map_or(Scope::Account, Scope::Org)
    }
}

async fn bindings_of(conn: &mut AsyncPgConnection, user_id: i64) -> QueryResult<Vec<Binding>> {
    let rows: Vec<(String, Option<i64>)> = role_bindings::table
        .filter(role_bindings::user_id.eq(user_id))
        .select((role_bindings::role, role_bindings::org_id))
        .load(conn)
        .await?;
    Ok(rows.into_iter().filter_map(|(r, org)| Role::parse(&r).map(|role| Binding { role, org })).collect())
}

/// A local date-time (`2026-12-01T09:00`) in `zone`, or an RFC 3339 time.
pub fn parse_time(text: &str, zone: chrono_tz::Tz) -> Result<DateTime<Utc>, String> {
    let t = text.trim();
    if let Ok(dt) = DateTime::parse_from_rfc3339(t) {
        return Ok(crate::clock::to_micros(dt.with_timezone(&Utc)));
    }
    for format in ["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M"] {
        if let Ok(naive) = NaiveDateTime::parse_from_str(t, format) {
            return zone
                .from_local_datetime(&naive)
                .earliest()
                .map(|d| d.with_timezone(&Utc))
                .ok_or_else(|| format!("{t:?} does not exist in {} (a daylight-saving gap)", zone.name()));
        }
    }
    Err(format!("{t:?} is not a date and time (e.g. 2026-12-01T09:00)"))
}

fn stored_inputs(values: &Value) -> Map<String, Value> {
    values.as_object().cloned().unwrap_or_default()
}

/// Checks a create or PATCH against everything it refers to. `base` is the draft being edited.
pub async fn prepare(
    conn: &mut AsyncPgConnection,
    actor: &Actor,
    actor_time_zone: &str,
    secrets: &SecretBox,
    input: &ReleaseInput,
    base: Option<&Release>,
    pin_latest: bool,
) -> Result<Prepared, OpError> {
    let account_id = actor.account_id;
    let mut errors = FieldErrors::new();
    let mut warnings = Vec::new();

    // Process and pinned version.
    let process_id = input.process_id.or(base.map(|b| b.process_id));
    let process = match process_id {
        None => {
            errors.add("process_id", "is required");
            None
        }
        Some(id) => match Process::find(conn, account_id, id).await {
            Ok(p) if p.latest_version >= 1 => Some(p),
            Ok(p) => {
                errors.add("process_id", format!("process {:?} has no saved version yet", p.name));
                None
            }
            Err(diesel::result::Error::NotFound) => {
                errors.add("process_id", format!("there is no process {id}"));
                None
            }
            Err(e) => return Err(e.into()),
        },
    };
    let version = match (base, &process) {
        (Some(b), Some(p)) if b.process_id == p.id && !pin_latest => b.process_version,
        (_, Some(p)) => p.latest_version,
        _ => 0,
    };

    // Level.
    let org_id = match (&input.org, base) {
        (Some(Some(slug)), _) if !slug.trim().is_empty() => match Organization::by_slug(conn, account_id, slug.trim()).await {
            Ok(o) => Some(o.id),
            Err(_) => {
                errors.add("org", format!("there is no organization {:?}", slug.trim()));
                None
            }
        },
        (Some(_), _) => None,
        (None, Some(b)) => b.org_id,
        (None, None) => None,
    };
    let settings = AccountSettings::get(conn, account_id).await?;
    match (settings.release_level.as_str(), org_id) {
        ("account", Some(_)) => {
            return Err(OpError::Rule {
                code: "release_level",
                message: "This account runs account-level releases (setting release_level = account): leave out the organization.".into(),
                field: Some("org"),
            })
        }
        ("organization", None) if errors.get("org").is_none() => {
            return Err(OpError::Rule {
                code: "release_level",
                message: "This account runs organization-level releases (setting release_level = organization): name the organization."
                    .into(),
                field: Some("org"),
            })
        }
        _ => {}
    }
    if let Some(p) = &process {
        match (org_id, p.org_id) {
            (_, None) => {}
            (Some(o), Some(po)) if o == po => {}
            (None, Some(_)) => errors.add("process_id", "an account-level release uses an account-level process"),
            (Some(_), Some(_)) => {
                errors.add("process_id", "an organization's release uses that organization's or an account-level process")
            }
        }
    }

    let name = match (&input.name, base) {
        (Some(n), _) => errors.check("name", fields::name(n)),
        (None, Some(b)) => Some(b.name.clone()),
        (None, None) => errors.check("name", Err("is required".into())),
    };
    if let Some(n) = &name {
        warnings.extend(rules::generic_name_warning(n));
    }
    let release_type = match (&input.release_type, base) {
        (Some(t), _) => match ReleaseType::parse(t.trim()) {
            Some(t) => Some(t.as_str().to_string()),
            None => {
                errors.add("type", format!("{t:?} is not standard, hotfix, feature or system"));
                None
            }
        },
        (None, Some(b)) => Some(b.release_type.clone()),
        (None, None) => Some("standard".to_string()),
    };

    let definition = match &process {
        Some(p) => Some(processes_ops::load(conn, p, Some(version)).await?.1),
        None => None,
    };

    // Inputs: the input set, then what was sent, over what the draft had.
    let mut values: Map<String, Value> = match base {
        Some(b) if b.process_id == process_id.unwrap_or(b.process_id) => processes_ops::revealed(secrets, &b.inputs),
        _ => Map::new(),
    };
    if let (Some(set_name), Some(p)) = (&input.input_set, &process) {
        match InputSet::by_name(conn, account_id, p.id, set_name.trim()).await {
            Ok(set) => values.extend(processes_ops::revealed(secrets, &set.input_values)),
            Err(_) => errors.add("input_set", format!("process {:?} has no input set {:?}", p.name, set_name.trim())),
        }
    }
    if let Some(sent) = &input.inputs {
        for (k, v) in sent {
            if v.is_null() {
                values.remove(k);
            } else if v.as_str() == Some(MASK) {
                // A masked secret sent back unchanged keeps the stored value.
            } else {
                values.insert(k.clone(), v.clone());
            }
        }
    }
    let mut sealed_inputs = Map::new();
    if let Some(def) = &definition {
        let catalog = processes_ops::catalog(conn, account_id).await?;
        match check_values(&def.inputs, &values, &catalog, false) {
            Ok(checked) => {
                for (k, v) in checked {
                    let secret = def.inputs.iter().any(|i| i.name == k && i.secret);
                    sealed_inputs.insert(k, if secret { json!({"$secret": secrets.encrypt(&to_text(&v))}) } else { v });
                }
            }
            Err(e) => {
                for (f, m) in e.0 {
                    errors.add(&f, m);
                }
            }
        }
    }

    // Variable overrides: only of variables the process defines.
    let variables = match (&input.variables, base) {
        (Some(v), _) => v.clone(),
        (None, Some(b)) => stored_inputs(&b.variables),
        (None, None) => Map::new(),
    };
    if let Some(def) = &definition {
        let known: Vec<&str> = def
            .variables
            .iter()
            .chain(def.phases.iter().flat_map(|p| p.variables.iter().chain(p.activities.iter().flat_map(|a| a.variables.iter()))))
            .map(|v| v.name.as_str())
            .collect();
        for (k, v) in &variables {
            if !known.contains(&k.as_str()) {
                errors.add(&format!("variables.{k}"), format!("{k:?} is not a variable of this process"));
            } else if let Err(m) = crate::domain::process::template::references_in(v) {
                errors.add(&format!("variables.{k}"), m);
            }
        }
    }

    // Schedule.
    let base_zone = base.map(|b| b.time_zone.clone()).unwrap_or_else(|| actor_time_zone.to_string());
    let (schedule_start, schedule_end, time_zone) = match (&input.schedule, base) {
        (Some(None), _) => (None, None, base_zone.clone()),
        (Some(Some(s)), _) => {
            let zone_name = s.time_zone.clone().unwrap_or(base_zone.clone());
            match fields::time_zone(&zone_name) {
                Err(m) => {
                    errors.add("schedule.time_zone", m);
                    (None, None, base_zone.clone())
                }
                Ok(zone_name) => {
                    let zone: chrono_tz::Tz = zone_name.parse().unwrap_or(chrono_tz::UTC);
                    let start = errors.check("schedule.start", parse_time(&s.start, zone));
                    let end = errors.check("schedule.end", parse_time(&s.end, zone));
                    if let (Some(a), Some(b)) = (start, end) {
                        if b <= a {
                            errors.add("schedule.end", "must be after the start");
                        }
                    }
                    (start, end, zone_name)
                }
            }
        }
        (None, Some(b)) => (b.schedule_start, b.schedule_end, b.time_zone.clone()),
        (None, None) => (None, None, base_zone.clone()),
    };

    // Release manager: a user holding a release-manager role for the level.
    let scope = org_id.map_or(Scope::Account, Scope::Org);
    let owner_id = match (&input.owner, base) {
        (Some(o), _) => {
            let email = o.trim().strip_prefix("user:").unwrap_or(o.trim());
            match User::by_email(conn, email).await? {
                Some(u) if u.account_id == account_id && u.disabled_at.is_none() => {
                    if policy::allows(&bindings_of(conn, u.id).await?, Action::Activate, scope) {
                        Some(u.id)
                    } else {
                        errors.add("owner", format!("{email} holds no release-manager role for this level"));
                        None
                    }
                }
                _ => {
                    errors.add("owner", format!("there is no active user {email:?}"));
                    None
                }
            }
        }
        (None, Some(b)) => b.owner_id,
        (None, None) => match actor.user_id {
            Some(id) if policy::allows(&bindings_of(conn, id).await?, Action::Activate, scope) => Some(id),
            _ => None,
        },
    };

    let stakeholders = match (&input.stakeholders, base) {
        (Some(list), _) => {
            let mut out = Vec::new();
            for s in list {
                match check_principal(s.trim()) {
                    Err(m) => errors.add("stakeholders", m),
                    Ok(()) => out.push(s.trim().to_string()),
                }
            }
            let named_users: Vec<String> = out.iter().filter_map(|s| s.strip_prefix("user:")).map(str::to_string).collect();
            let (_, missing_users) = User::ids_by_emails(conn, account_id, &named_users).await?;
            for s in &out {
                match s.split_once(':') {
                    Some(("user", e)) if missing_users.contains(&e.trim().to_lowercase()) => {
                        errors.add("stakeholders", format!("there is no user {e:?}"))
                    }
                    Some(("group", g)) if Group::by_name(conn, account_id, g).await.is_err() => {
                        errors.add("stakeholders", format!("there is no group {g:?}"))
                    }
                    _ => {}
                }
            }
            out
        }
        (None, Some(b)) => b.stakeholders.clone(),
        (None, None) => Vec::new(),
    };

    // Links.
    let mut links = Vec::new();
    let base_links = match base {
        Some(b) => rows::links_from(conn, b.id).await?,
        None => Vec::new(),
    };
    let depends_on: Vec<i64> = match input.links.as_ref().and_then(|l| l.depends_on.clone()) {
        Some(d) => d,
        None => base_links.iter().filter(|l| l.kind == "depends_on").map(|l| l.target_id).collect(),
    };
    let hotfix_for: Option<i64> = match input.links.as_ref().and_then(|l| l.hotfix_for) {
        Some(h) => h,
        None => base_links.iter().find(|l| l.kind == "hotfix_for").map(|l| l.target_id),
    };
    for (kind, field, target) in depends_on
        .iter()
        .map(|t| (LinkKind::DependsOn, "links.depends_on", *t))
        .chain(hotfix_for.map(|t| (LinkKind::HotfixFor, "links.hotfix_for", t)))
    {
        if base.is_some_and(|b| b.id == target) {
            errors.add(field, "a release cannot link to itself");
        } else if Release::find(conn, account_id, target).await.is_err() {
            errors.add(field, format!("there is no release {target}"));
        } else {
            links.push((kind, target));
        }
    }
    for (kind, target) in
        base_links.iter().filter(|l| l.kind == "restarted_from" || l.kind == "subprocess_of").map(|l| (l.kind.clone(), l.target_id))
    {
        if let Some(k) = LinkKind::parse(&kind) {
            links.push((k, target));
        }
    }

    errors.into_result()?;
    let (Some(definition), Some(process), Some(name), Some(release_type)) = (definition, process, name, release_type) else {
        return Err(OpError::Unexpected("checked release is incomplete".into()));
    };
    let (environments, services) = rules::targets(&definition, &values);
    Ok(Prepared {
        fields: ReleaseFields {
            org_id,
            name,
            release_type,
            process_id: process.id,
            process_version: version,
            inputs: Value::Object(sealed_inputs),
            variables: Value::Object(variables),
            schedule_start,
            schedule_end,
            time_zone,
            owner_id,
            stakeholders,
            environments,
            services,
            release_group_id: base.and_then(|b| b.release_group_id),
            occurrence: base.and_then(|b| b.occurrence),
        },
        definition,
        links,
        warnings,
    })
}

/// The definition of the process version a release is pinned to.
pub async fn pinned_definition(conn: &mut AsyncPgConnection, release: &Release) -> Result<Definition, OpError> {
    let process = Process::find(conn, release.account_id, release.process_id).await?;
    Ok(processes_ops::load(conn, &process, Some(release.process_version)).await?.1)
}

async fn owner_email(conn: &mut AsyncPgConnection, account_id: i64, owner_id: Option<i64>) -> QueryResult<Option<String>> {
    match owner_id {
        Some(id) => Ok(Some(User::find(conn, account_id, id).await?.email)),
        None => Ok(None),
    }
}

/// The per-release copies of phases and activities, owners resolved (activity → phase → manager).
fn build_tree(release: &Release, def: &Definition, manager: Option<&str>) -> (Vec<ReleasePhase>, Vec<ReleaseActivity>) {
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
            status: "NotStarted".into(),
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
                kind: a.kind.as_str().into(),
                owner: rules::resolve_owner(a.owner.as_deref(), p.owner.as_deref(), manager),
                depends_on: a.depends_on.clone(),
                critical: a.is_critical(),
                status: "NotStarted".into(),
                attempts: 0,
                outputs: json!({}),
                started_at: None,
                finished_at: None,
                on_failure: match a.on_failure {
                    Some(crate::domain::process::definition::OnFailure::Fail) => "fail",
                    Some(crate::domain::process::definition::OnFailure::Ignore) => "ignore",
                    Some(crate::domain::process::definition::OnFailure::Manual) => "manual",
                    None if a.is_critical() => "manual",
                    None => "ignore",
                }
                .into(),
                wake_at: None,
                status_reason: None,
                eligible: Vec::new(),
                needed: 0,
                last_actor: None,
                note: None,
                run_first_attempt: 1,
                last_reminded_at: None,
                escalation_level: 0,
            });
        }
    }
    (phases, activities)
}

/// The fields as written on the audit trail (secrets masked).
fn audit_view(fields: &ReleaseFields, def: &Definition) -> Value {
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
                rows::add_link(conn, actor.account_id, release.id, kind.as_str(), *target).await?;
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
            Ok::<_, OpError>(release)
        })
        .await?;
    Ok(Saved { release, warnings })
}

/// What changed between two versions of a release's fields, by field name.
fn changes(before: &Value, after: &Value) -> Map<String, Value> {
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
                    code: "not_draft",
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
                rows::add_link(conn, actor.account_id, updated.id, kind.as_str(), *target).await?;
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
            Ok::<_, OpError>(updated)
        })
        .await?;
    Ok(Saved { release, warnings })
}

/// "Changed since your version N by …: name, inputs" from the release's own audit chain.
async fn conflict(conn: &mut AsyncPgConnection, current: &Release, expected: i32) -> Result<OpError, OpError> {
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

/// Everything that keeps a draft from starting, in words.
async fn activation_problems(
    conn: &mut AsyncPgConnection,
    release: &Release,
    def: &Definition,
) -> Result<(Vec<String>, Vec<String>), OpError> {
    let values = stored_inputs(&release.inputs);
    let missing = rules::missing_inputs(def, &values);
    let mut problems: Vec<String> = missing.iter().map(|n| format!("input {n} is required")).collect();
    if release.owner_id.is_none() {
        problems.push("the release has no release manager".into());
    }
    for link in rows::links_from(conn, release.id).await?.iter().filter(|l| l.kind == "depends_on") {
        let target = Release::find(conn, release.account_id, link.target_id).await?;
        if !(target.state() != State::Draft && target.status().is_finished()) {
            problems.push(format!(
                "it depends on release #{} \"{}\", which has not finished ({})",
                target.id,
                target.name,
                target.status()
            ));
        }
    }
    let m = mentions(def);
    let groups = Group::list_with_members(conn, release.account_id).await?;
    for g in m.groups.iter().filter(|g| !groups.iter().any(|x| &x.name == *g)) {
        problems.push(format!("group {g:?} does not exist"));
    }
    let (_, missing_users) = User::ids_by_emails(conn, release.account_id, &m.users).await?;
    for u in missing_users {
        problems.push(format!("user {u} does not exist"));
    }
    let envs = Environment::list(conn, release.account_id).await?;
    for e in m.environments.iter().chain(release.environments.iter()) {
        if !envs.iter().any(|x| &x.name == e) && !problems.iter().any(|p| p.contains(&format!("environment {e:?}"))) {
            problems.push(format!("environment {e:?} does not exist"));
        }
    }
    Ok((problems, missing))
}

/// Activates a draft already locked by the caller's transaction.
async fn activate_locked(
    conn: &mut AsyncPgConnection,
    actor: &str,
    release: Release,
    now: DateTime<Utc>,
    run_now: Option<(&str, DateTime<Utc>)>,
) -> Result<Release, OpError> {
    if release.state() != State::Draft {
        return Err(OpError::Rule {
            code: "not_draft",
            message: format!("Only drafts can be activated; this release is {}.", release.state()),
            field: None,
        });
    }
    let def = pinned_definition(conn, &release).await?;
    let (problems, missing) = activation_problems(conn, &release, &def).await?;
    if !problems.is_empty() {
        let code = if missing.is_empty() { "activation_refused" } else { "missing_inputs" };
        let field = if missing.is_empty() { None } else { Some("inputs") };
        return Err(OpError::Rule { code, message: format!("The release cannot start: {}.", problems.join("; ")), field });
    }
    let (start, end) = match run_now {
        Some(_) => (Some(now), release.schedule_end.map(|e| now + (e - release.schedule_start.unwrap_or(now)))),
        None => (release.schedule_start, release.schedule_end),
    };
    let activated: Release = diesel::update(releases::table.find(release.id))
        .set((
            releases::state.eq(State::Active.as_str()),
            releases::status.eq(Status::Running.as_str()),
            releases::status_reason.eq(None::<String>),
            releases::activated_at.eq(now),
            releases::started_at.eq(now),
            releases::next_eval_at.eq(now),
            releases::schedule_start.eq(start),
            releases::schedule_end.eq(end),
            releases::lock_version.eq(releases::lock_version + 1),
            releases::updated_at.eq(now),
        ))
        .returning(Release::as_returning())
        .get_result(conn)
        .await?;
    let mut event =
        NewEvent::release(&activated, actor, "release.activate").with_details(json!({"scheduled_start": release.schedule_start}));
    if let Some((reason, original)) = run_now {
        event = NewEvent::release(&activated, actor, "release.run_now")
            .with_reason(reason)
            .with_details(json!({"original_start": original, "new_start": now}));
    }
    audit::append(conn, event, now).await?;
    crate::engine::wake(conn).await?;
    // Activation notices: the release manager, stakeholders, and every phase and activity owner.
    let (phases, activities) = rows::tree(conn, activated.id).await?;
    let mut principals: Vec<String> = activated.stakeholders.clone();
    if let Some(email) = owner_email(conn, activated.account_id, activated.owner_id).await? {
        principals.push(format!("user:{email}"));
    }
    principals.extend(phases.iter().map(|p| p.owner.clone()));
    principals.extend(activities.iter().map(|a| a.owner.clone()));
    let to = notify::recipients(conn, activated.account_id, &principals).await?;
    notify::enqueue_chat(
        conn,
        activated.account_id,
        "release.activated",
        &format!("Release \"{}\" has started", activated.name),
        &format!("/releases/{}", activated.id),
        now,
    )
    .await?;
    notify::enqueue(
        conn,
        activated.account_id,
        &to,
        "release.activated",
        &format!("Release \"{}\" has started", activated.name),
        &format!("Release #{} \"{}\" was activated by {actor}.", activated.id, activated.name),
        &format!("/releases/{}", activated.id),
        now,
    )
    .await?;
    Ok(activated)
}

pub async fn activate(conn: &mut AsyncPgConnection, actor: &Actor, release_id: i64, now: DateTime<Utc>) -> Result<Release, OpError> {
    conn.transaction(async |conn| {
        let release = Release::lock(conn, actor.account_id, release_id).await?;
        activate_locked(conn, &actor.label, release, now, None).await
    })
    .await
}

/// "Run now": a scheduled draft starts early; now becomes its start. Reason required.
pub async fn run_now(
    conn: &mut AsyncPgConnection,
    actor: &Actor,
    release_id: i64,
    reason: &str,
    now: DateTime<Utc>,
) -> Result<Release, OpError> {
    let reason = fields::required_text(reason, 2000).map_err(|m| OpError::invalid("reason", m))?;
    conn.transaction(async |conn| {
        let release = Release::lock(conn, actor.account_id, release_id).await?;
        let Some(original) = release.schedule_start else {
            return Err(OpError::Rule {
                code: "not_scheduled",
                message: "Run now is for scheduled drafts; activate this one instead.".into(),
                field: None,
            });
        };
        activate_locked(conn, &actor.label, release, now, Some((&reason, original))).await
    })
    .await
}

/// The auto-activation sweep: claims due scheduled drafts (SKIP LOCKED, so several servers never
/// activate one twice) and activates them; a draft that cannot start stays a draft, and its
/// release manager is told exactly what is missing (once per distinct problem).
pub async fn activation_sweep(conn: &mut AsyncPgConnection, now: DateTime<Utc>) -> Result<usize, OpError> {
    conn.transaction(async |conn| {
        let due: Vec<Release> = releases::table
            .filter(releases::state.eq("draft"))
            .filter(releases::schedule_start.le(now))
            .order(releases::schedule_start)
            .limit(100)
            .for_update()
            .skip_locked()
            .select(Release::as_select())
            .load(conn)
            .await?;
        let mut activated = 0;
        for release in due {
            let id = release.id;
            let previous_reason = release.status_reason.clone();
            let account_id = release.account_id;
            let owner_id = release.owner_id;
            let name = release.name.clone();
            let savepoint = conn.transaction(async |conn| activate_locked(conn, "system:scheduler", release, now, None).await).await;
            match savepoint {
                Ok(_) => activated += 1,
                Err(OpError::Rule { message, .. }) => {
                    if previous_reason.as_deref() != Some(message.as_str()) {
                        diesel::update(releases::table.find(id)).set(releases::status_reason.eq(&message)).execute(conn).await?;
                        let stub = Release::find(conn, account_id, id).await?;
                        audit::append(
                            conn,
                            NewEvent::release(&stub, "system:scheduler", "release.auto_activation_refused").with_reason(message.clone()),
                            now,
                        )
                        .await?;
                        if let Some(email) = owner_email(conn, account_id, owner_id).await? {
                            let to = notify::recipients(conn, account_id, &[format!("user:{email}")]).await?;
                            notify::enqueue(
                                conn,
                                account_id,
                                &to,
                                "release.activation_refused",
                                &format!("Release \"{name}\" could not start"),
                                &message,
                                &format!("/releases/{id}"),
                                now,
                            )
                            .await?;
                        }
                    }
                }
                Err(e) => return Err(e),
            }
        }
        Ok(activated)
    })
    .await
}

/// Abort (reason required): stops the release; what has not finished is Aborted.
pub async fn abort(
    conn: &mut AsyncPgConnection,
    actor: &Actor,
    release_id: i64,
    reason: &str,
    now: DateTime<Utc>,
) -> Result<Release, OpError> {
    let reason = fields::required_text(reason, 2000).map_err(|m| OpError::invalid("reason", m))?;
    conn.transaction(async |conn| {
        let release = Release::lock(conn, actor.account_id, release_id).await?;
        if !rules::in_flight(release.state(), release.status()) {
            return Err(OpError::Rule {
                code: "not_in_flight",
                message: format!("Only a running or held release can be aborted; this one is {} ({}).", release.state(), release.status()),
                field: None,
            });
        }
        rows::abort_tree(conn, release.id, now).await?;
        crate::engine::webhook::supersede(conn, release.id).await?;
        let aborted: Release = diesel::update(releases::table.find(release.id))
            .set((
                releases::status.eq(Status::Aborted.as_str()),
                releases::status_reason.eq(&reason),
                releases::finished_at.eq(now),
                releases::next_eval_at.eq(None::<DateTime<Utc>>),
                releases::lock_version.eq(releases::lock_version + 1),
                releases::updated_at.eq(now),
            ))
            .returning(Release::as_returning())
            .get_result(conn)
            .await?;
        audit::append(conn, NewEvent::release(&aborted, &actor.label, "release.abort").with_reason(reason.clone()), now).await?;
        let mut principals = aborted.stakeholders.clone();
        if let Some(email) = owner_email(conn, aborted.account_id, aborted.owner_id).await? {
            principals.push(format!("user:{email}"));
        }
        let to = notify::recipients(conn, aborted.account_id, &principals).await?;
        notify::enqueue(
            conn,
            aborted.account_id,
            &to,
            "release.aborted",
            &format!("Release \"{}\" was aborted", aborted.name),
            &reason,
            &format!("/releases/{}", aborted.id),
            now,
        )
        .await?;
        Ok(aborted)
    })
    .await
}

/// Restart or reschedule: a new draft linked `restarted_from`; the original never runs again.
pub async fn restart(conn: &mut AsyncPgConnection, actor: &Actor, release_id: i64, now: DateTime<Utc>) -> Result<Release, OpError> {
    conn.transaction(async |conn| {
        let source = Release::lock(conn, actor.account_id, release_id).await?;
        if source.state() == State::Draft || rules::in_flight(source.state(), source.status()) {
            return Err(OpError::Rule {
                code: "not_finished",
                message: "Only a finished or aborted release can be restarted; edit or abort this one instead.".into(),
                field: None,
            });
        }
        let mut fields = source.fields();
        fields.schedule_start = None;
        fields.schedule_end = None;
        let def = pinned_definition(conn, &source).await?;
        let draft = Release::insert(conn, actor.account_id, &fields, actor.user_id, now).await?;
        rows::add_link(conn, actor.account_id, draft.id, LinkKind::RestartedFrom.as_str(), source.id).await?;
        let manager = owner_email(conn, actor.account_id, draft.owner_id).await?;
        let (phases, activities) = build_tree(&draft, &def, manager.as_deref());
        rows::replace_tree(conn, draft.id, &phases, &activities).await?;
        audit::append(
            conn,
            NewEvent::release(&draft, &actor.label, "release.create")
                .with_details(json!({"restarted_from": source.id, "after": audit_view(&fields, &def)})),
            now,
        )
        .await?;
        audit::append(
            conn,
            NewEvent::release(&source, &actor.label, "release.restarted").with_details(json!({"new_release": draft.id})),
            now,
        )
        .await?;
        Ok(draft)
    })
    .await
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
            code: "up_to_date",
            message: format!("The draft already uses the newest version ({}).", process.latest_version),
            field: None,
        });
    }
    let prepared = prepare(conn, actor, time_zone, secrets, &ReleaseInput::default(), Some(&current), true).await?;
    update(conn, actor, release_id, Some(current.lock_version), prepared, now).await
}

/// What a deletion did: for a draft, the links that pointed at it and were removed.
#[derive(Debug)]
pub struct Deleted {
    pub name: String,
    pub removed_links: Vec<(i64, String, String)>,
    pub purged: bool,
}

pub async fn delete(
    conn: &mut AsyncPgConnection,
    actor: &Actor,
    release_id: i64,
    retention_days: u32,
    now: DateTime<Utc>,
) -> Result<Deleted, OpError> {
    conn.transaction(async |conn| {
        let release = Release::lock(conn, actor.account_id, release_id).await?;
        let linked_by = rows::links_to(conn, release.id).await?;
        let facts = DeletionFacts {
            state: release.state(),
            status: release.status(),
            finished_at: release.finished_at,
            activated: release.activated_at.is_some(),
            linked_by: linked_by.clone(),
            now,
            retention_days,
        };
        let how = rules::deletion(&facts).map_err(|reason| OpError::Rule { code: "delete_refused", message: format!("Release #{} cannot be deleted: {reason}", release.id), field: None })?;
        match how {
            Deletion::Draft => {
                rows::remove_links_to(conn, release.id).await?;
                diesel::delete(releases::table.find(release.id)).execute(conn).await?;
                audit::append(
                    conn,
                    NewEvent::account(release.account_id, &actor.label, "release.delete", format!("release:{}", release.id)).with_details(json!({
                        "name": release.name,
                        "removed_links": linked_by.iter().map(|(id, name, kind)| json!({"release": id, "name": name, "kind": kind})).collect::<Vec<_>>(),
                    })),
                    now,
                )
                .await?;
                Ok(Deleted { name: release.name, removed_links: linked_by, purged: false })
            }
            Deletion::Purge => {
                let chain = crate::domain::audit::chain_for(Some(release.account_id), Some(release.id));
                let last_hash: Option<String> = crate::db::schema::audit_chain_heads::table
                    .find(&chain)
                    .select(crate::db::schema::audit_chain_heads::last_hash)
                    .first(conn)
                    .await
                    .optional()?;
                // The one permitted path past the append-only trigger (DESIGN §8).
                diesel::sql_query("SELECT set_config('railyard.purge_release', $1, true)")
                    .bind::<diesel::sql_types::Text, _>(release.id.to_string())
                    .execute(conn)
                    .await?;
                diesel::delete(audit_events::table.filter(audit_events::release_id.eq(release.id))).execute(conn).await?;
                diesel::delete(crate::db::schema::audit_chain_heads::table.find(&chain)).execute(conn).await?;
                diesel::delete(releases::table.find(release.id)).execute(conn).await?;
                audit::append(
                    conn,
                    NewEvent::account(release.account_id, &actor.label, "release.purge", format!("release:{}", release.id)).with_details(json!({
                        "name": release.name,
                        "final_status": release.status,
                        "state": release.state,
                        "removed_chain": chain,
                        "removed_chain_last_hash": last_hash,
                    })),
                    now,
                )
                .await?;
                Ok(Deleted { name: release.name, removed_links: Vec::new(), purged: true })
            }
        }
    })
    .await
}

const RETENTION_LOCK_KEY: i64 = 0x5245_5445_4e54; // "RETENT"

/// The daily retention job: archives releases finished (and drafts whose window ended) more than
/// `days` ago; never one in flight. Safe with several servers (advisory xact lock + last run).
pub async fn retention_sweep(conn: &mut AsyncPgConnection, days: u32, now: DateTime<Utc>) -> Result<usize, OpError> {
    conn.transaction(async |conn| {
        #[derive(QueryableByName)]
        struct Locked {
            #[diesel(sql_type = diesel::sql_types::Bool)]
            locked: bool,
        }
        let got: Locked =
            diesel::sql_query(format!("SELECT pg_try_advisory_xact_lock({RETENTION_LOCK_KEY}) AS locked")).get_result(conn).await?;
        if !got.locked {
            return Ok(0);
        }
        let last: Option<DateTime<Utc>> =
            sweep_runs::table.find("retention").select(sweep_runs::last_run_at).first(conn).await.optional()?;
        if last.is_some_and(|t| t > now - chrono::TimeDelta::hours(23)) {
            return Ok(0);
        }
        let limit = now - chrono::TimeDelta::days(i64::from(days));
        let finished = ["Success", "PartialSuccess", "Failed", "RolledBack", "Aborted"];
        let due: Vec<Release> = releases::table
            .filter(
                (releases::state.eq("active").and(releases::status.eq_any(finished)).and(releases::finished_at.lt(limit)))
                    .or(releases::state.eq("draft").and(releases::schedule_end.lt(limit))),
            )
            .for_update()
            .skip_locked()
            .select(Release::as_select())
            .load(conn)
            .await?;
        let mut archived = 0;
        for r in due {
            if !rules::retention_due(r.state(), r.status(), r.finished_at, r.schedule_end, now, days) {
                continue;
            }
            diesel::update(releases::table.find(r.id))
                .set((
                    releases::state.eq("archived"),
                    releases::archived_at.eq(now),
                    releases::lock_version.eq(releases::lock_version + 1),
                    releases::updated_at.eq(now),
                ))
                .execute(conn)
                .await?;
            audit::append(
                conn,
                NewEvent::release(&r, "system:retention", "release.archive").with_details(json!({"retention_days": days, "was": r.state})),
                now,
            )
            .await?;
            archived += 1;
        }
        diesel::insert_into(sweep_runs::table)
            .values((sweep_runs::name.eq("retention"), sweep_runs::last_run_at.eq(now)))
            .on_conflict(sweep_runs::name)
            .do_update()
            .set(sweep_runs::last_run_at.eq(now))
            .execute(conn)
            .await?;
        Ok(archived)
    })
    .await
}

/// Whether releases of the other level are drafts or in flight (switching is refused then).
pub async fn other_level_busy(conn: &mut AsyncPgConnection, account_id: i64, new_level: &str) -> QueryResult<i64> {
    let base = releases::table
        .filter(releases::account_id.eq(account_id))
        .filter(releases::state.eq("draft").or(releases::state.eq("active").and(releases::status.eq_any(["Running", "OnHold"]))))
        .into_boxed();
    let q = if new_level == "account" { base.filter(releases::org_id.is_not_null()) } else { base.filter(releases::org_id.is_null()) };
    q.count().get_result(conn).await
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
    let named = notify::recipients(conn, release.account_id, &principals).await?;
    Ok(named.iter().any(|(id, e)| *id == user_id || e.eq_ignore_ascii_case(email)))
}
