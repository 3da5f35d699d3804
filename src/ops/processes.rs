//! Processes: create, save a new version, input sets (manage_process).

use chrono::{DateTime, Utc};
use diesel_async::{AsyncConnection, AsyncPgConnection};
use serde_json::{json, Map, Value};

use super::{duplicate, Actor, OpError};
use crate::db::audit::{self, NewEvent};
use crate::db::models::catalog::{Environment, Group, Service};
use crate::db::models::processes::{InputSet, Process, ProcessVersion, WorkingCopy};
use crate::db::models::users::User;
use crate::domain::process::definition::{parse_value, parse_yaml, Definition};
use crate::domain::process::inputs::{check_values, Catalog};
use crate::domain::process::validate::{mentions, validate};
use crate::domain::rule::RuleCode;
use crate::domain::validate::{self as fields, FieldErrors};
use crate::security::SecretBox;

/// A definition as sent: YAML text (the API's `definition` string, an upload, a paste) or JSON.
pub enum Source {
    Yaml(String),
    Json(Value),
}

impl Source {
    pub fn from_api(value: Value) -> Source {
        match value {
            Value::String(text) => Source::Yaml(text),
            other => Source::Json(other),
        }
    }
}

pub fn parse(source: Source) -> Result<Definition, OpError> {
    let parsed = match source {
        Source::Yaml(text) => parse_yaml(&text),
        Source::Json(value) => parse_value(value),
    };
    parsed.map_err(|e| match e.refused {
        true => OpError::Rule { code: RuleCode::DefinitionRefused, message: e.message, field: Some("definition") },
        false => OpError::Parse { field: e.field, message: e.message },
    })
}

/// Validates and fills in the defaults; a definition stored is always valid and normalized.
pub fn check(def: Definition) -> Result<Definition, OpError> {
    let errors = validate(&def);
    if errors.is_empty() {
        Ok(def.normalized())
    } else {
        Err(OpError::Definition(errors))
    }
}

pub async fn catalog(conn: &mut AsyncPgConnection, account_id: i64) -> Result<Catalog, OpError> {
    Ok(Catalog {
        environments: Environment::list(conn, account_id).await?.into_iter().map(|e| e.name).collect(),
        services: Service::list(conn, account_id).await?.into_iter().map(|s| s.name).collect(),
    })
}

/// Groups, users and environments the definition names that do not exist (yet).
pub async fn warnings(conn: &mut AsyncPgConnection, account_id: i64, def: &Definition) -> Result<Vec<String>, OpError> {
    let m = mentions(def);
    let mut out = Vec::new();
    let groups = Group::list_with_members(conn, account_id).await?;
    for g in m.groups {
        if !groups.iter().any(|x| x.name == g) {
            out.push(format!("group {g:?} does not exist yet"));
        }
    }
    if !m.users.is_empty() {
        let (_, missing) = User::ids_by_emails(conn, account_id, &m.users).await?;
        for u in missing {
            out.push(format!("user {u} does not exist yet"));
        }
    }
    let envs = Environment::list(conn, account_id).await?;
    for e in m.environments {
        if !envs.iter().any(|x| x.name == e) {
            out.push(format!("environment {e:?} does not exist yet"));
        }
    }
    Ok(out)
}

#[derive(Debug)]
pub struct Saved {
    pub process: Process,
    pub version: i32,
    pub definition: Definition,
    pub warnings: Vec<String>,
}

fn name_taken(name: &str) -> impl FnOnce() -> String + '_ {
    move || format!("a process named {name:?} already exists in this account")
}

/// Creates a process with version 1 from a definition.
pub async fn create(
    conn: &mut AsyncPgConnection,
    actor: &Actor,
    org_id: Option<i64>,
    source: Source,
    now: DateTime<Utc>,
) -> Result<Saved, OpError> {
    let def = check(parse(source)?)?;
    let warnings = warnings(conn, actor.account_id, &def).await?;
    let json = def.to_json();
    let process = conn
        .transaction(async |conn| {
            let process = Process::create(conn, actor.account_id, org_id, &def.name, now)
                .await
                .map_err(|e| duplicate(e, "name", name_taken(&def.name)))?;
            ProcessVersion::insert(conn, &process, 1, &json, &actor.label, now).await?;
            Process::set_latest(conn, process.id, 1, &def.name, now).await?;
            audit::append(
                conn,
                NewEvent::account(actor.account_id, &actor.label, "process.create", format!("process:{}", process.id))
                    .with_details(json!({"name": def.name, "version": 1, "org_id": org_id})),
                now,
            )
            .await?;
            Ok::<_, OpError>(process)
        })
        .await?;
    let process = Process { latest_version: 1, ..process };
    Ok(Saved { process, version: 1, definition: def, warnings })
}

/// Creates a process without a version, to be built in the editor (its first save is version 1).
pub async fn create_empty(
    conn: &mut AsyncPgConnection,
    actor: &Actor,
    org_id: Option<i64>,
    name: &str,
    now: DateTime<Utc>,
) -> Result<Process, OpError> {
    let name = fields::name(name).map_err(|m| OpError::invalid("name", m))?;
    let user_id = actor.user_id.ok_or(OpError::NotFound)?;
    conn.transaction(async |conn| {
        let process =
            Process::create(conn, actor.account_id, org_id, &name, now).await.map_err(|e| duplicate(e, "name", name_taken(&name)))?;
        let start = Definition { name: name.clone(), description: None, inputs: Vec::new(), variables: Vec::new(), phases: Vec::new() };
        WorkingCopy::upsert(conn, &process, user_id, 0, &start.to_json(), now).await?;
        audit::append(
            conn,
            NewEvent::account(actor.account_id, &actor.label, "process.create", format!("process:{}", process.id))
                .with_details(json!({"name": name, "version": 0, "org_id": org_id})),
            now,
        )
        .await?;
        Ok(process)
    })
    .await
}

/// Saves `def` as the next version; earlier versions stay as they were.
pub async fn save_version(
    conn: &mut AsyncPgConnection,
    actor: &Actor,
    process_id: i64,
    def: Definition,
    now: DateTime<Utc>,
) -> Result<Saved, OpError> {
    let def = check(def)?;
    let warnings = warnings(conn, actor.account_id, &def).await?;
    let json = def.to_json();
    let (process, version) = conn
        .transaction(async |conn| {
            let process = Process::lock(conn, actor.account_id, process_id).await?;
            let version = process.latest_version + 1;
            ProcessVersion::insert(conn, &process, version, &json, &actor.label, now).await?;
            Process::set_latest(conn, process.id, version, &def.name, now)
                .await
                .map_err(|e| duplicate(e, "name", name_taken(&def.name)))?;
            if let Some(user_id) = actor.user_id {
                WorkingCopy::discard(conn, process.id, user_id).await?;
            }
            audit::append(
                conn,
                NewEvent::account(actor.account_id, &actor.label, "process.version", format!("process:{}", process.id))
                    .with_details(json!({"name": def.name, "version": version})),
                now,
            )
            .await?;
            Ok::<_, OpError>((Process { latest_version: version, name: def.name.clone(), ..process }, version))
        })
        .await?;
    Ok(Saved { process, version, definition: def, warnings })
}

/// A stored version's definition (`None` = the latest).
pub async fn load(conn: &mut AsyncPgConnection, process: &Process, version: Option<i32>) -> Result<(i32, Definition), OpError> {
    let version = version.unwrap_or(process.latest_version);
    if version < 1 {
        return Err(OpError::NotFound);
    }
    let row = ProcessVersion::find(conn, process.account_id, process.id, version).await?;
    Ok((version, stored_definition(row.definition)?))
}

/// A stored version's definition (validated when it was saved, so a failure here is ours).
pub fn stored_definition(stored: Value) -> Result<Definition, OpError> {
    parse_value(stored).map_err(|e| OpError::Unexpected(anyhow::Error::new(e).context("stored definition unreadable")))
}

pub use crate::domain::masking::MASK;

fn sealed(value: &Value) -> Option<&str> {
    value.as_object().and_then(|o| o.get("$secret")).and_then(Value::as_str)
}

/// Stored values as shown anywhere: secrets masked.
pub fn masked(def: &Definition, stored: &Value) -> Map<String, Value> {
    let mut out = Map::new();
    if let Some(map) = stored.as_object() {
        for (k, v) in map {
            let secret = def.inputs.iter().any(|i| &i.name == k && i.secret) || sealed(v).is_some();
            out.insert(k.clone(), if secret { Value::String(MASK.into()) } else { v.clone() });
        }
    }
    out
}

/// The clear values of the secret inputs among `stored`, for masking what a receiver echoes.
pub fn secret_values(def: &Definition, secrets: &SecretBox, stored: &Value) -> Vec<String> {
    let Some(map) = stored.as_object() else { return Vec::new() };
    map.iter()
        .filter(|(k, v)| def.inputs.iter().any(|i| &i.name == *k && i.secret) || sealed(v).is_some())
        .filter_map(|(_, v)| match sealed(v) {
            Some(s) => secrets.decrypt(s),
            None => v.as_str().map(str::to_string),
        })
        .filter(|s| !s.is_empty())
        .collect()
}

/// Stored values with secrets decrypted, for filling in a release.
pub fn revealed(secrets: &SecretBox, stored: &Value) -> Map<String, Value> {
    let mut out = Map::new();
    if let Some(map) = stored.as_object() {
        for (k, v) in map {
            let value = match sealed(v) {
                Some(s) => secrets.decrypt(s).map(Value::String).unwrap_or(Value::Null),
                None => v.clone(),
            };
            out.insert(k.clone(), value);
        }
    }
    out
}

/// An input set as sent: its name and values by input name.
#[derive(Debug, Clone, Default, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InputSetInput {
    pub name: String,
    #[serde(default)]
    pub values: Map<String, Value>,
}

/// Creates (`existing: None`) or replaces an input set, checked against the latest version's inputs.
/// A secret left empty or masked keeps its stored value.
pub async fn save_input_set(
    conn: &mut AsyncPgConnection,
    actor: &Actor,
    secrets: &SecretBox,
    process: &Process,
    existing: Option<&InputSet>,
    input: &InputSetInput,
    now: DateTime<Utc>,
) -> Result<InputSet, OpError> {
    let values = &input.values;
    let mut errors = FieldErrors::new();
    let name = errors.check("name", fields::name(&input.name));
    if process.latest_version < 1 {
        return Err(OpError::Rule { code: RuleCode::NoVersion, message: "Save the process before adding input sets.".into(), field: None });
    }
    let (_, def) = load(conn, process, None).await?;
    let kept: Map<String, Value> = values
        .iter()
        .filter(|(k, v)| {
            let secret = def.inputs.iter().any(|i| &i.name == *k && i.secret);
            !(secret && existing.is_some() && (v.as_str() == Some(MASK) || v.as_str() == Some("")))
        })
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let catalog = catalog(conn, actor.account_id).await?;
    let checked = match check_values(&def.inputs, &kept, &catalog, false) {
        Ok(v) => Some(v),
        Err(e) => {
            for (f, m) in e.0 {
                errors.add(&f, m);
            }
            None
        }
    };
    let (Some(name), Some(checked)) = (name, checked) else { return Err(OpError::Invalid(errors)) };
    let mut stored = Map::new();
    if let Some(old) = existing.and_then(|e| e.input_values.as_object()) {
        for (k, v) in old {
            if sealed(v).is_some() && !kept.contains_key(k) {
                stored.insert(k.clone(), v.clone());
            }
        }
    }
    for (k, v) in checked {
        let secret = def.inputs.iter().any(|i| i.name == k && i.secret);
        let v = if secret { json!({"$secret": secrets.encrypt(&crate::domain::process::template::to_text(&v))}) } else { v };
        stored.insert(k, v);
    }
    let stored = Value::Object(stored);
    conn.transaction(async |conn| {
        let set = match existing {
            Some(e) => InputSet::update(conn, e.id, &name, &stored, now).await,
            None => InputSet::create(conn, process, &name, &stored, now).await,
        }
        .map_err(|e| duplicate(e, "name", || format!("an input set named {name:?} already exists for this process")))?;
        let action = if existing.is_some() { "input_set.update" } else { "input_set.create" };
        audit::append(
            conn,
            NewEvent::account(actor.account_id, &actor.label, action, format!("process:{}", process.id))
                .with_details(json!({"input_set": name, "values": masked(&def, &stored)})),
            now,
        )
        .await?;
        Ok(set)
    })
    .await
}

pub async fn delete_input_set(
    conn: &mut AsyncPgConnection,
    actor: &Actor,
    process: &Process,
    set: &InputSet,
    now: DateTime<Utc>,
) -> Result<(), OpError> {
    conn.transaction(async |conn| {
        InputSet::delete(conn, set.id).await?;
        audit::append(
            conn,
            NewEvent::account(actor.account_id, &actor.label, "input_set.delete", format!("process:{}", process.id))
                .with_details(json!({"input_set": set.name})),
            now,
        )
        .await?;
        Ok(())
    })
    .await
}
