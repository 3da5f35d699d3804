//! Checking a create or PATCH against everything it refers to, before anything is stored.

use crate::domain::schedule::parse_time;
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde_json::{json, Map, Value};

use super::*;
use crate::db::models::accounts::{AccountSettings, Organization};
use crate::db::models::catalog::Group;
use crate::db::models::processes::{InputSet, Process};
use crate::db::models::releases::{self as rows, Release, ReleaseFields};
use crate::db::models::users::User;
use crate::db::schema::role_bindings;
use crate::domain::policy::{self, Action, Binding, Role, Scope};
use crate::domain::process::inputs::check_values;
use crate::domain::process::template::to_text;
use crate::domain::process::validate::check_principal;
use crate::domain::process::Definition;
use crate::domain::release::{self as rules, LinkKind, ReleaseType};
use crate::domain::rule::RuleCode;
use crate::domain::validate::{self as fields, FieldErrors};
use crate::ops::processes::{self as processes_ops, MASK};
use crate::ops::{Actor, OpError};
use crate::security::SecretBox;

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

pub async fn bindings_of(conn: &mut AsyncPgConnection, user_id: i64) -> QueryResult<Vec<Binding>> {
    let rows: Vec<(String, Option<i64>)> = role_bindings::table
        .filter(role_bindings::user_id.eq(user_id))
        .select((role_bindings::role, role_bindings::org_id))
        .load(conn)
        .await?;
    Ok(rows.into_iter().filter_map(|(r, org)| Role::parse(&r).map(|role| Binding { role, org })).collect())
}

pub(super) fn stored_inputs(values: &Value) -> Map<String, Value> {
    values.as_object().cloned().unwrap_or_default()
}

/// What every step reads (the account, the request, the draft being edited) and the field
/// errors found so far; each step adds its own and goes on, so one answer names them all.
struct Check<'a> {
    account_id: i64,
    input: &'a ReleaseInput,
    base: Option<&'a Release>,
    errors: FieldErrors,
}

/// The process and the version to pin: the draft's, unless the process changes or the newest
/// version is asked for.
async fn process_and_version(
    conn: &mut AsyncPgConnection,
    chk: &mut Check<'_>,
    pin_latest: bool,
) -> Result<(Option<Process>, i32), OpError> {
    let process_id = chk.input.process_id.or(chk.base.map(|b| b.process_id));
    let process = match process_id {
        None => {
            chk.errors.add("process_id", "is required");
            None
        }
        Some(id) => match Process::find(conn, chk.account_id, id).await {
            // An archived process keeps its releases but starts no new one (a draft keeps it).
            Ok(p) if p.archived_at.is_some() && chk.base.is_none_or(|b| b.process_id != p.id) => {
                chk.errors.add("process_id", format!("process {:?} is archived; restore it to start new releases from it", p.name));
                None
            }
            Ok(p) if p.latest_version >= 1 => Some(p),
            Ok(p) => {
                chk.errors.add("process_id", format!("process {:?} has no saved version yet", p.name));
                None
            }
            Err(diesel::result::Error::NotFound) => {
                chk.errors.add("process_id", format!("there is no process {id}"));
                None
            }
            Err(e) => return Err(e.into()),
        },
    };
    let version = match (chk.input.process_version, chk.base, &process) {
        (Some(v), _, Some(p)) if v >= 1 && v <= p.latest_version => v,
        (Some(v), _, Some(p)) => {
            chk.errors.add("process_version", format!("process {:?} has versions 1 to {}, not {v}", p.name, p.latest_version));
            p.latest_version
        }
        (None, Some(b), Some(p)) if b.process_id == p.id && !pin_latest => b.process_version,
        (_, _, Some(p)) => p.latest_version,
        _ => 0,
    };

    Ok((process, version))
}

/// The level: an organization (by slug) or the account, as the account's setting demands, and
/// a process that belongs to it.
async fn level(conn: &mut AsyncPgConnection, chk: &mut Check<'_>, process: Option<&Process>) -> Result<Option<i64>, OpError> {
    let org_id = match (&chk.input.org, chk.base) {
        (Some(Some(slug)), _) if !slug.trim().is_empty() => match Organization::by_slug(conn, chk.account_id, slug.trim()).await {
            Ok(o) => Some(o.id),
            Err(_) => {
                chk.errors.add("org", format!("there is no organization {:?}", slug.trim()));
                None
            }
        },
        (Some(_), _) => None,
        (None, Some(b)) => b.org_id,
        (None, None) => None,
    };
    let settings = AccountSettings::get(conn, chk.account_id).await?;
    match (settings.release_level.as_str(), org_id) {
        ("account", Some(_)) => {
            return Err(OpError::Rule {
                code: RuleCode::ReleaseLevel,
                message: "This account runs account-level releases (setting release_level = account): leave out the organization.".into(),
                field: Some("org"),
            })
        }
        ("organization", None) if chk.errors.get("org").is_none() => {
            return Err(OpError::Rule {
                code: RuleCode::ReleaseLevel,
                message: "This account runs organization-level releases (setting release_level = organization): name the organization."
                    .into(),
                field: Some("org"),
            })
        }
        _ => {}
    }
    if let Some(p) = process {
        match (org_id, p.org_id) {
            (_, None) => {}
            (Some(o), Some(po)) if o == po => {}
            (None, Some(_)) => chk.errors.add("process_id", "an account-level release uses an account-level process"),
            (Some(_), Some(_)) => {
                chk.errors.add("process_id", "an organization's release uses that organization's or an account-level process")
            }
        }
    }

    Ok(org_id)
}

/// Name (with a warning for generic names) and release type.
fn name_and_type(chk: &mut Check<'_>, warnings: &mut Vec<String>) -> (Option<String>, Option<ReleaseType>) {
    let name = match (&chk.input.name, chk.base) {
        (Some(n), _) => chk.errors.check("name", fields::name(n)),
        (None, Some(b)) => Some(b.name.clone()),
        (None, None) => chk.errors.check("name", Err("is required".into())),
    };
    if let Some(n) = &name {
        warnings.extend(rules::generic_name_warning(n));
    }
    let release_type = match (&chk.input.release_type, chk.base) {
        (Some(t), _) => match ReleaseType::parse(t.trim()) {
            Some(t) => Some(t),
            None => {
                chk.errors.add("type", format!("{t:?} is not standard, hotfix, feature or system"));
                None
            }
        },
        (None, Some(b)) => Some(b.release_type),
        (None, None) => Some(ReleaseType::Standard),
    };

    (name, release_type)
}

/// Inputs: the input set, then what was sent, over what the draft had; checked against the
/// definition's types, secrets sealed. Returns (values in clear, values as stored).
async fn inputs(
    conn: &mut AsyncPgConnection,
    chk: &mut Check<'_>,
    secrets: &SecretBox,
    process: Option<&Process>,
    definition: Option<&Definition>,
) -> Result<(Map<String, Value>, Map<String, Value>), OpError> {
    let process_id = chk.input.process_id.or(chk.base.map(|b| b.process_id));
    let mut values: Map<String, Value> = match chk.base {
        Some(b) if b.process_id == process_id.unwrap_or(b.process_id) => processes_ops::revealed(secrets, &b.inputs),
        _ => Map::new(),
    };
    if let (Some(set_name), Some(p)) = (&chk.input.input_set, process) {
        match InputSet::by_name(conn, chk.account_id, p.id, set_name.trim()).await {
            Ok(set) => values.extend(processes_ops::revealed(secrets, &set.input_values)),
            Err(_) => chk.errors.add("input_set", format!("process {:?} has no input set {:?}", p.name, set_name.trim())),
        }
    }
    if let Some(sent) = &chk.input.inputs {
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
    if let Some(def) = definition {
        let catalog = processes_ops::catalog(conn, chk.account_id).await?;
        match check_values(&def.inputs, &values, &catalog, false) {
            Ok(checked) => {
                for (k, v) in checked {
                    // Targets are read from the canonical values (a pasted manifest is a map).
                    values.insert(k.clone(), v.clone());
                    let secret = def.inputs.iter().any(|i| i.name == k && i.secret);
                    sealed_inputs.insert(k, if secret { json!({"$secret": secrets.encrypt(&to_text(&v))}) } else { v });
                }
            }
            Err(e) => {
                for (f, m) in e.0 {
                    chk.errors.add(&f, m);
                }
            }
        }
    }

    Ok((values, sealed_inputs))
}

/// Variable overrides: only of variables the process defines, keyed by their scope (`name`,
/// `phase.name`, `phase.activity.name`).
fn variables(chk: &mut Check<'_>, definition: Option<&Definition>) -> Map<String, Value> {
    let variables = match (&chk.input.variables, chk.base) {
        (Some(v), _) => v.clone(),
        (None, Some(b)) => stored_inputs(&b.variables),
        (None, None) => Map::new(),
    };
    if let Some(def) = definition {
        let known: Vec<String> = crate::domain::process::overrides::overridable(def).into_iter().map(|(k, _)| k).collect();
        for (k, v) in &variables {
            if !known.contains(k) {
                chk.errors.add(
                    &format!("variables.{k}"),
                    format!("{k:?} is not a variable of this process (keys: name, phase.name or phase.activity.name)"),
                );
            } else if let Err(m) = crate::domain::process::template::references_in(v) {
                chk.errors.add(&format!("variables.{k}"), m);
            }
        }
    }

    variables
}

/// The schedule window in its time zone (the draft's, else the person's).
fn schedule(chk: &mut Check<'_>, actor_time_zone: &str) -> (Option<DateTime<Utc>>, Option<DateTime<Utc>>, String) {
    let base_zone = chk.base.map(|b| b.time_zone.clone()).unwrap_or_else(|| actor_time_zone.to_string());
    match (&chk.input.schedule, chk.base) {
        (Some(None), _) => (None, None, base_zone.clone()),
        (Some(Some(s)), _) => {
            let zone_name = s.time_zone.clone().unwrap_or(base_zone.clone());
            match fields::time_zone(&zone_name) {
                Err(m) => {
                    chk.errors.add("schedule.time_zone", m);
                    (None, None, base_zone.clone())
                }
                Ok(zone_name) => {
                    let zone: chrono_tz::Tz = zone_name.parse().unwrap_or(chrono_tz::UTC);
                    let start = chk.errors.check("schedule.start", parse_time(&s.start, zone));
                    let end = chk.errors.check("schedule.end", parse_time(&s.end, zone));
                    if let (Some(a), Some(b)) = (start, end) {
                        if b <= a {
                            chk.errors.add("schedule.end", "must be after the start");
                        }
                    }
                    (start, end, zone_name)
                }
            }
        }
        (None, Some(b)) => (b.schedule_start, b.schedule_end, b.time_zone.clone()),
        (None, None) => (None, None, base_zone.clone()),
    }
}

/// The release manager: a user holding a release-manager role for the level (by default the
/// person creating it, if they hold one).
async fn release_manager(conn: &mut AsyncPgConnection, chk: &mut Check<'_>, actor: &Actor, scope: Scope) -> Result<Option<i64>, OpError> {
    let owner_id = match (&chk.input.owner, chk.base) {
        (Some(o), _) => {
            let email = o.trim().strip_prefix("user:").unwrap_or(o.trim());
            match User::by_email(conn, email).await? {
                Some(u) if u.account_id == chk.account_id && u.disabled_at.is_none() => {
                    if policy::allows(&bindings_of(conn, u.id).await?, Action::Activate, scope) {
                        Some(u.id)
                    } else {
                        chk.errors.add("owner", format!("{email} holds no release-manager role for this level"));
                        None
                    }
                }
                _ => {
                    chk.errors.add("owner", format!("there is no active user {email:?}"));
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

    Ok(owner_id)
}

/// Stakeholders: users and groups that exist.
async fn stakeholders(conn: &mut AsyncPgConnection, chk: &mut Check<'_>) -> Result<Vec<String>, OpError> {
    let stakeholders = match (&chk.input.stakeholders, chk.base) {
        (Some(list), _) => {
            let mut out = Vec::new();
            for s in list {
                match check_principal(s.trim()) {
                    Err(m) => chk.errors.add("stakeholders", m),
                    Ok(()) => out.push(s.trim().to_string()),
                }
            }
            let named_users: Vec<String> = out.iter().filter_map(|s| s.strip_prefix("user:")).map(str::to_string).collect();
            let (_, missing_users) = User::ids_by_emails(conn, chk.account_id, &named_users).await?;
            for s in &out {
                match s.split_once(':') {
                    Some(("user", e)) if missing_users.contains(&e.trim().to_ascii_lowercase()) => {
                        chk.errors.add("stakeholders", format!("there is no user {e:?}"))
                    }
                    Some(("group", g)) if Group::by_name(conn, chk.account_id, g).await.is_err() => {
                        chk.errors.add("stakeholders", format!("there is no group {g:?}"))
                    }
                    _ => {}
                }
            }
            out
        }
        (None, Some(b)) => b.stakeholders.clone(),
        (None, None) => Vec::new(),
    };

    Ok(stakeholders)
}

/// Links: dependencies and the release a hotfix is for (existing, not itself); restart and
/// subprocess links of the draft are kept.
async fn links(conn: &mut AsyncPgConnection, chk: &mut Check<'_>) -> Result<Vec<(LinkKind, i64)>, OpError> {
    let mut links = Vec::new();
    let base_links = match chk.base {
        Some(b) => rows::links_from(conn, b.id).await?,
        None => Vec::new(),
    };
    let depends_on: Vec<i64> = match chk.input.links.as_ref().and_then(|l| l.depends_on.clone()) {
        Some(d) => d,
        None => base_links.iter().filter(|l| l.is(LinkKind::DependsOn)).map(|l| l.target_id).collect(),
    };
    let hotfix_for: Option<i64> = match chk.input.links.as_ref().and_then(|l| l.hotfix_for) {
        Some(h) => h,
        None => base_links.iter().find(|l| l.is(LinkKind::HotfixFor)).map(|l| l.target_id),
    };
    for (kind, field, target) in depends_on
        .iter()
        .map(|t| (LinkKind::DependsOn, "links.depends_on", *t))
        .chain(hotfix_for.map(|t| (LinkKind::HotfixFor, "links.hotfix_for", t)))
    {
        if chk.base.is_some_and(|b| b.id == target) {
            chk.errors.add(field, "a release cannot link to itself");
        } else if Release::find(conn, chk.account_id, target).await.is_err() {
            chk.errors.add(field, format!("there is no release {target}"));
        } else {
            links.push((kind, target));
        }
    }
    for (kind, target) in
        base_links.iter().filter(|l| l.is(LinkKind::RestartedFrom) || l.is(LinkKind::SubprocessOf)).map(|l| (l.kind, l.target_id))
    {
        links.push((kind, target));
    }

    Ok(links)
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
    let mut chk = Check { account_id: actor.account_id, input, base, errors: FieldErrors::new() };
    let mut warnings = Vec::new();
    let (process, version) = process_and_version(conn, &mut chk, pin_latest).await?;
    let org_id = level(conn, &mut chk, process.as_ref()).await?;
    let (name, release_type) = name_and_type(&mut chk, &mut warnings);
    let definition = match &process {
        Some(p) => Some(processes_ops::load(conn, p, Some(version)).await?.1),
        None => None,
    };
    let (values, sealed_inputs) = inputs(conn, &mut chk, secrets, process.as_ref(), definition.as_ref()).await?;
    let variables = variables(&mut chk, definition.as_ref());
    let (schedule_start, schedule_end, time_zone) = schedule(&mut chk, actor_time_zone);
    let owner_id = release_manager(conn, &mut chk, actor, org_id.map_or(Scope::Account, Scope::Org)).await?;
    let stakeholders = stakeholders(conn, &mut chk).await?;
    let links = links(conn, &mut chk).await?;

    chk.errors.into_result()?;
    let (Some(definition), Some(process), Some(name), Some(release_type)) = (definition, process, name, release_type) else {
        return Err(OpError::Unexpected(anyhow::anyhow!("checked release is incomplete")));
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
