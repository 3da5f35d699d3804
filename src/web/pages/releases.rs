//! `/releases`: list and archive, the release form (new and draft edit), the detail page with
//! its status tree and audit trail, and the lifecycle buttons.

use actix_session::Session;
use actix_web::{web, HttpResponse};
use askama::Template;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{Map, Value};

use super::{redirect, render, render_form_errors, Chrome};
use crate::db::models::accounts::{AccountSettings, Organization};
use crate::db::models::catalog::{Environment, Service};
use crate::db::models::processes::{InputSet, Process};
use crate::db::models::releases::{self as rows, Release};
use crate::db::schema::audit_events;
use crate::domain::policy::{Action, Scope};
use crate::domain::process::definition::InputType;
use crate::domain::process::template::to_text;
use crate::domain::process::Definition;
use crate::domain::release::{ReleaseType, State};
use crate::domain::validate::FieldErrors;
use crate::ops::activities::{groups_of, may_act, Person, Verb};
use crate::ops::processes::{self as processes_ops, MASK};
use crate::ops::releases::{self as ops, LinksInput, ReleaseInput, ScheduleInput};
use crate::web::api::releases::{filter_from, ListQuery};
use crate::web::error::AppError;
use crate::web::extractors::{CurrentUser, Htmx};
use crate::web::flash;
use crate::web::AppState;

fn local(t: Option<DateTime<Utc>>, zone: &str) -> String {
    let tz: chrono_tz::Tz = zone.parse().unwrap_or(chrono_tz::UTC);
    t.map(|t| t.with_timezone(&tz).format("%Y-%m-%d %H:%M %Z").to_string()).unwrap_or_default()
}

fn local_input(t: Option<DateTime<Utc>>, zone: &str) -> String {
    let tz: chrono_tz::Tz = zone.parse().unwrap_or(chrono_tz::UTC);
    t.map(|t| t.with_timezone(&tz).format("%Y-%m-%dT%H:%M").to_string()).unwrap_or_default()
}

pub struct ListRow {
    pub id: i64,
    pub name: String,
    pub release_type: String,
    pub state: String,
    pub status: String,
    pub window: String,
    pub environments: String,
}

#[derive(Template)]
#[template(path = "pages/releases/list.html")]
pub struct ListPage {
    pub chrome: Chrome,
    pub rows: Vec<ListRow>,
    pub query: ListQuery,
    pub archive: bool,
    pub total: i64,
    pub page: i64,
    pub pages: i64,
    pub can_create: bool,
    pub statuses: Vec<&'static str>,
    pub types: Vec<&'static str>,
    pub orgs: Vec<Organization>,
    pub query_string: String,
}

pub async fn list(
    state: web::Data<AppState>,
    user: CurrentUser,
    session: Session,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, AppError> {
    user.require(Action::ViewRelease, Scope::Account)?;
    let query = query.into_inner();
    let mut conn = state.db().await?;
    let filter = filter_from(&mut conn, user.account_id, &query).await?;
    let page = query.page.unwrap_or(0).max(0);
    let (found, total) = rows::list(&mut conn, user.account_id, &filter, page).await?;
    let rows = found
        .into_iter()
        .filter(|r| user.may(Action::ViewRelease, r.scope()))
        .map(|r| ListRow {
            window: match r.schedule_start {
                Some(_) => format!("{} → {}", local(r.schedule_start, &user.time_zone), local(r.schedule_end, &user.time_zone)),
                None => "unscheduled".into(),
            },
            environments: r.environments.join(", "),
            id: r.id,
            name: r.name,
            release_type: r.release_type,
            state: r.state,
            status: r.status,
        })
        .collect();
    let orgs = Organization::list(&mut conn, user.account_id).await?;
    let archive = query.state.as_deref() == Some("archived");
    let query_string = serde_urlencoded::to_string([
        ("status", query.status.clone().unwrap_or_default()),
        ("state", query.state.clone().unwrap_or_default()),
        ("type", query.release_type.clone().unwrap_or_default()),
        ("org", query.org.clone().unwrap_or_default()),
        ("q", query.q.clone().unwrap_or_default()),
        ("owner", query.owner.clone().unwrap_or_default()),
        ("process_id", query.process_id.map(|p| p.to_string()).unwrap_or_default()),
    ])
    .unwrap_or_default();
    let page = ListPage {
        chrome: Chrome::new(&user, &session, if archive { "Release archive" } else { "Releases" }, "/releases"),
        rows,
        archive,
        total,
        page,
        pages: (total + rows::PAGE_SIZE - 1) / rows::PAGE_SIZE,
        can_create: user.may(Action::CreateRelease, Scope::Account)
            || user.bindings.iter().filter_map(|b| b.org).any(|org| user.may(Action::CreateRelease, Scope::Org(org))),
        statuses: crate::domain::release::Status::ALL.iter().map(|s| s.as_str()).collect(),
        types: ReleaseType::ALL.iter().map(|t| t.as_str()).collect(),
        orgs,
        query,
        query_string,
    };
    render(&page)
}

/// One input of the release form, with the widget its type calls for.
pub struct InputField {
    pub name: String,
    pub kind: &'static str,
    pub description: String,
    pub required: bool,
    pub secret: bool,
    /// For selects and checkbox lists: (value, selected).
    pub choices: Vec<(String, bool)>,
    pub value: String,
    pub error: Option<String>,
}

impl InputField {
    pub fn widget(&self) -> &'static str {
        match self.kind {
            "environment_list" | "service_list" => "checkboxes",
            "environment" | "service" | "enum" | "boolean" => "select",
            "datetime" => "datetime",
            "text" => "textarea",
            _ if self.secret => "password",
            _ => "text",
        }
    }
}

/// The release form as typed (every field a string, so nothing is lost on an error).
#[derive(Debug, Default, Clone)]
pub struct ReleaseForm {
    pub process_id: String,
    pub input_set: String,
    pub name: String,
    pub release_type: String,
    pub org: String,
    pub owner: String,
    pub stakeholders: String,
    pub schedule_start: String,
    pub schedule_end: String,
    pub time_zone: String,
    pub depends_on: String,
    pub hotfix_for: String,
    pub inputs: Vec<(String, String)>,
    pub variables: Vec<(String, String)>,
    pub lock_version: String,
    pub activate: bool,
}

impl ReleaseForm {
    fn from_pairs(pairs: Vec<(String, String)>) -> Self {
        let mut f = ReleaseForm::default();
        for (k, v) in pairs {
            match k.as_str() {
                "process_id" => f.process_id = v,
                "input_set" => f.input_set = v,
                "name" => f.name = v,
                "type" => f.release_type = v,
                "org" => f.org = v,
                "owner" => f.owner = v,
                "stakeholders" => f.stakeholders = v,
                "schedule_start" => f.schedule_start = v,
                "schedule_end" => f.schedule_end = v,
                "time_zone" => f.time_zone = v,
                "depends_on" => f.depends_on = v,
                "hotfix_for" => f.hotfix_for = v,
                "lock_version" => f.lock_version = v,
                "activate" => f.activate = true,
                _ => {
                    if let Some(n) = k.strip_prefix("in.") {
                        f.inputs.push((n.to_string(), v));
                    } else if let Some(n) = k.strip_prefix("var.") {
                        f.variables.push((n.to_string(), v));
                    }
                }
            }
        }
        f
    }

    /// To the API's input shape; list inputs gather their checkboxes, datetimes are read in `zone`.
    fn to_input(&self, def: Option<&Definition>, zone: &str, errors: &mut FieldErrors) -> ReleaseInput {
        let tz: chrono_tz::Tz = zone.parse().unwrap_or(chrono_tz::UTC);
        let mut inputs = Map::new();
        if let Some(def) = def {
            for i in &def.inputs {
                let values: Vec<String> = self.inputs.iter().filter(|(k, _)| k == &i.name).map(|(_, v)| v.clone()).collect();
                let value = match i.kind {
                    InputType::EnvironmentList | InputType::ServiceList => {
                        if values.iter().all(|v| v.is_empty()) {
                            Value::Null
                        } else {
                            Value::Array(values.into_iter().filter(|v| !v.is_empty()).map(Value::String).collect())
                        }
                    }
                    InputType::Datetime => match values.first().map(|v| v.trim()).filter(|v| !v.is_empty()) {
                        Some(v) => match ops::parse_time(v, tz) {
                            Ok(t) => Value::String(t.to_rfc3339()),
                            Err(m) => {
                                errors.add(&format!("inputs.{}", i.name), m);
                                Value::Null
                            }
                        },
                        None => Value::Null,
                    },
                    _ => values.first().filter(|v| !v.trim().is_empty()).map(|v| Value::String(v.clone())).unwrap_or(Value::Null),
                };
                inputs.insert(i.name.clone(), value);
            }
        }
        let mut variables = Map::new();
        for (k, v) in &self.variables {
            if !v.trim().is_empty() {
                variables.insert(k.clone(), Value::String(v.clone()));
            }
        }
        let opt = |s: &str| Some(s.trim().to_string()).filter(|s| !s.is_empty());
        let schedule = match (opt(&self.schedule_start), opt(&self.schedule_end)) {
            (None, None) => Some(None),
            (start, end) => Some(Some(ScheduleInput {
                start: start.unwrap_or_default(),
                end: end.unwrap_or_default(),
                time_zone: opt(&self.time_zone),
            })),
        };
        let mut depends_on = Vec::new();
        for d in self.depends_on.split([',', ' ']).map(|s| s.trim().trim_start_matches('#')).filter(|s| !s.is_empty()) {
            match d.parse() {
                Ok(id) => depends_on.push(id),
                Err(_) => errors.add("links.depends_on", format!("{d:?} is not a release number")),
            }
        }
        let hotfix_for = match opt(self.hotfix_for.trim_start_matches('#')) {
            None => None,
            Some(h) => match h.parse() {
                Ok(id) => Some(id),
                Err(_) => {
                    errors.add("links.hotfix_for", format!("{h:?} is not a release number"));
                    None
                }
            },
        };
        ReleaseInput {
            process_id: self.process_id.trim().parse().ok(),
            name: Some(self.name.clone()),
            release_type: Some(if self.release_type.is_empty() { "standard".into() } else { self.release_type.clone() }),
            org: Some(opt(&self.org)),
            inputs: Some(inputs),
            variables: Some(variables),
            schedule,
            owner: opt(&self.owner),
            stakeholders: Some(self.stakeholders.split([',', '\n']).map(str::trim).filter(|s| !s.is_empty()).map(str::to_string).collect()),
            links: Some(LinksInput { depends_on: Some(depends_on), hotfix_for: Some(hotfix_for) }),
            input_set: opt(&self.input_set),
            activate: Some(self.activate),
            lock_version: self.lock_version.trim().parse().ok(),
        }
    }
}

#[derive(Template)]
#[template(path = "pages/releases/form.html")]
pub struct FormPage {
    pub chrome: Chrome,
    /// `Some(id)` when editing a draft.
    pub editing: Option<i64>,
    pub form: ReleaseForm,
    pub processes: Vec<(i64, String)>,
    pub input_sets: Vec<String>,
    pub orgs: Vec<Organization>,
    pub org_level: bool,
    pub types: Vec<&'static str>,
    pub fields: Vec<InputField>,
    pub variables: Vec<(String, String, String)>,
    pub errors: FieldErrors,
    pub general_errors: Vec<String>,
    pub warnings: Vec<String>,
    pub zones: Vec<&'static str>,
    pub process_version: String,
}

async fn form_page(
    state: &AppState,
    user: &CurrentUser,
    session: &Session,
    editing: Option<i64>,
    mut form: ReleaseForm,
    errors: FieldErrors,
    general_errors: Vec<String>,
) -> Result<FormPage, AppError> {
    let mut conn = state.db().await?;
    let processes: Vec<(i64, String)> = Process::list(&mut conn, user.account_id)
        .await?
        .into_iter()
        .filter(|s| s.process.latest_version > 0 && user.may(Action::ViewProcess, s.process.scope()))
        .map(|s| (s.process.id, s.process.name))
        .collect();
    if form.process_id.is_empty() {
        form.process_id = processes.first().map(|(id, _)| id.to_string()).unwrap_or_default();
    }
    let process = match form.process_id.parse::<i64>() {
        Ok(id) => Process::find(&mut conn, user.account_id, id).await.ok(),
        Err(_) => None,
    };
    let (def, version) = match (&process, editing) {
        (Some(p), Some(id)) => {
            let r = Release::find(&mut conn, user.account_id, id).await?;
            let v = if r.process_id == p.id { r.process_version } else { p.latest_version };
            (Some(processes_ops::load(&mut conn, p, Some(v)).await?.1), v)
        }
        (Some(p), None) if p.latest_version > 0 => (Some(processes_ops::load(&mut conn, p, None).await?.1), p.latest_version),
        _ => (None, 0),
    };
    let input_sets = match &process {
        Some(p) => InputSet::list(&mut conn, user.account_id, p.id).await?.into_iter().map(|s| s.name).collect(),
        None => Vec::new(),
    };
    let envs: Vec<String> = Environment::list(&mut conn, user.account_id).await?.into_iter().map(|e| e.name).collect();
    let services: Vec<String> = Service::list(&mut conn, user.account_id).await?.into_iter().map(|s| s.name).collect();
    let fields = match &def {
        None => Vec::new(),
        Some(def) => def
            .inputs
            .iter()
            .map(|i| {
                let chosen: Vec<String> = form.inputs.iter().filter(|(k, _)| k == &i.name).map(|(_, v)| v.clone()).collect();
                let value = if chosen.is_empty() { i.default.as_ref().map(to_text).unwrap_or_default() } else { chosen.join(", ") };
                let options: Vec<String> = match i.kind {
                    InputType::Environment | InputType::EnvironmentList => envs.clone(),
                    InputType::Service | InputType::ServiceList => services.clone(),
                    InputType::Enum => i.values.clone(),
                    InputType::Boolean => vec!["true".into(), "false".into()],
                    _ => vec![],
                };
                let selected: Vec<String> =
                    if chosen.is_empty() { value.split(", ").map(str::to_string).collect() } else { chosen.clone() };
                InputField {
                    name: i.name.clone(),
                    kind: i.kind.as_str(),
                    description: i.description.clone().unwrap_or_default(),
                    required: i.required,
                    secret: i.secret,
                    choices: options.into_iter().map(|o| (o.clone(), selected.contains(&o))).collect(),
                    value: if i.secret && !value.is_empty() { MASK.to_string() } else { value },
                    error: errors.get(&format!("inputs.{}", i.name)).map(str::to_string),
                }
            })
            .collect(),
    };
    let variables = match &def {
        None => Vec::new(),
        Some(def) => def
            .variables
            .iter()
            .map(|v| {
                let current = form.variables.iter().find(|(k, _)| k == &v.name).map(|(_, x)| x.clone()).unwrap_or_default();
                (v.name.clone(), to_text(&v.value), current)
            })
            .collect(),
    };
    let settings = AccountSettings::get(&mut conn, user.account_id).await?;
    let orgs = Organization::list(&mut conn, user.account_id).await?;
    if form.time_zone.is_empty() {
        form.time_zone = user.time_zone.clone();
    }
    let warnings = crate::domain::release::generic_name_warning(&form.name).filter(|_| !form.name.is_empty()).into_iter().collect();
    Ok(FormPage {
        chrome: Chrome::new(user, session, if editing.is_some() { "Edit draft" } else { "New release" }, "/releases"),
        editing,
        form,
        processes,
        input_sets,
        orgs: orgs.into_iter().filter(|o| user.may(Action::CreateRelease, Scope::Org(o.id))).collect(),
        org_level: settings.release_level == "organization",
        types: ReleaseType::ALL.iter().map(|t| t.as_str()).collect(),
        fields,
        variables,
        errors,
        general_errors,
        warnings,
        zones: super::profile::zone_names(),
        process_version: if version > 0 { format!("version {version}") } else { String::new() },
    })
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct NewQuery {
    pub process_id: String,
    pub input_set: String,
}

/// The form; choosing a process or an input set reloads it (htmx swaps only the form).
pub async fn new(
    state: web::Data<AppState>,
    user: CurrentUser,
    session: Session,
    query: web::Query<NewQuery>,
) -> Result<HttpResponse, AppError> {
    user.require(Action::ViewRelease, Scope::Account)?;
    let mut form = ReleaseForm { process_id: query.process_id.clone(), input_set: query.input_set.clone(), ..Default::default() };
    if let (Ok(pid), false) = (query.process_id.parse::<i64>(), query.input_set.is_empty()) {
        let mut conn = state.db().await?;
        if let Ok(set) = InputSet::by_name(&mut conn, user.account_id, pid, &query.input_set).await {
            for (k, v) in processes_ops::revealed(&state.secrets, &set.input_values) {
                match v {
                    Value::Array(items) => form.inputs.extend(items.iter().map(|i| (k.clone(), to_text(i)))),
                    other => form.inputs.push((k.clone(), to_text(&other))),
                }
            }
        }
    }
    render(&form_page(&state, &user, &session, None, form, FieldErrors::new(), vec![]).await?)
}

fn split_errors(e: crate::ops::OpError) -> Result<(FieldErrors, Vec<String>), AppError> {
    match e {
        crate::ops::OpError::Rule { message, code, field } => {
            let mut errors = FieldErrors::new();
            if let Some(f) = field.filter(|_| code != "missing_inputs") {
                errors.add(f, message.clone());
            }
            Ok((errors, vec![message]))
        }
        crate::ops::OpError::Conflict { message } => Ok((FieldErrors::new(), vec![message])),
        other => match other.field_errors() {
            Some(errors) => Ok((errors, Vec::new())),
            None => Err(other.into()),
        },
    }
}

pub async fn create(
    state: web::Data<AppState>,
    user: CurrentUser,
    session: Session,
    htmx: Htmx,
    form: web::Form<Vec<(String, String)>>,
) -> Result<HttpResponse, AppError> {
    let form = ReleaseForm::from_pairs(form.into_inner());
    let mut conn = state.db().await?;
    let def = match form.process_id.parse::<i64>() {
        Ok(id) => match Process::find(&mut conn, user.account_id, id).await {
            Ok(p) if p.latest_version > 0 => Some(processes_ops::load(&mut conn, &p, None).await?.1),
            _ => None,
        },
        Err(_) => None,
    };
    let mut errors = FieldErrors::new();
    let input = form.to_input(def.as_ref(), &user.time_zone, &mut errors);
    let result = match errors.is_empty() {
        false => Err(crate::ops::OpError::Invalid(errors)),
        true => match ops::prepare(&mut conn, &user.actor(), &user.time_zone, &state.secrets, &input, None, false).await {
            Err(e) => Err(e),
            Ok(prepared) => {
                user.require(Action::CreateRelease, prepared.scope())?;
                if form.activate {
                    user.require(Action::Activate, prepared.scope())?;
                }
                ops::create(&mut conn, &user.actor(), prepared, form.activate, state.now()).await
            }
        },
    };
    match result {
        Ok(saved) => {
            let verb = if form.activate { "created and activated" } else { "created as a draft" };
            flash::success(&session, format!("Release \"{}\" {verb}.", saved.release.name));
            let conflicts =
                crate::ops::calendar::warn_conflicts(&mut conn, &saved.release, &user.bindings, &user.actor().label, state.now()).await?;
            for w in saved.warnings.into_iter().chain(conflicts) {
                flash::push(&session, "warning", w);
            }
            Ok(redirect(htmx, &format!("/releases/{}", saved.release.id)))
        }
        Err(e) => {
            let (errors, general) = split_errors(e)?;
            render_form_errors(&form_page(&state, &user, &session, None, form, errors, general).await?, htmx)
        }
    }
}

fn form_from_release(
    r: &Release,
    secrets: &crate::security::SecretBox,
    owner: Option<String>,
    org: Option<String>,
    links: &[rows::ReleaseLink],
) -> ReleaseForm {
    let mut inputs = Vec::new();
    for (k, v) in processes_ops::revealed(secrets, &r.inputs) {
        match v {
            Value::Array(items) => inputs.extend(items.iter().map(|i| (k.clone(), to_text(i)))),
            other => inputs.push((k.clone(), to_text(&other))),
        }
    }
    ReleaseForm {
        process_id: r.process_id.to_string(),
        input_set: String::new(),
        name: r.name.clone(),
        release_type: r.release_type.clone(),
        org: org.unwrap_or_default(),
        owner: owner.map(|e| format!("user:{e}")).unwrap_or_default(),
        stakeholders: r.stakeholders.join(", "),
        schedule_start: local_input(r.schedule_start, &r.time_zone),
        schedule_end: local_input(r.schedule_end, &r.time_zone),
        time_zone: r.time_zone.clone(),
        depends_on: links.iter().filter(|l| l.kind == "depends_on").map(|l| l.target_id.to_string()).collect::<Vec<_>>().join(", "),
        hotfix_for: links.iter().find(|l| l.kind == "hotfix_for").map(|l| l.target_id.to_string()).unwrap_or_default(),
        inputs,
        variables: r.variables.as_object().map(|m| m.iter().map(|(k, v)| (k.clone(), to_text(v))).collect()).unwrap_or_default(),
        lock_version: r.lock_version.to_string(),
        activate: false,
    }
}

pub async fn edit(state: web::Data<AppState>, user: CurrentUser, session: Session, id: web::Path<i64>) -> Result<HttpResponse, AppError> {
    let mut conn = state.db().await?;
    let release = Release::find(&mut conn, user.account_id, *id).await?;
    user.require(Action::EditDraft, release.scope())?;
    if release.state() != State::Draft {
        return Err(AppError::Rule {
            code: "not_draft".into(),
            field: None,
            message: format!("Only drafts can be edited; this release is {}.", release.state()),
        });
    }
    let view = ops::view(&mut conn, release).await?;
    let form = form_from_release(&view.release, &state.secrets, view.owner_email.clone(), view.org_slug.clone(), &view.links);
    render(&form_page(&state, &user, &session, Some(*id), form, FieldErrors::new(), vec![]).await?)
}

pub async fn update(
    state: web::Data<AppState>,
    user: CurrentUser,
    session: Session,
    htmx: Htmx,
    id: web::Path<i64>,
    form: web::Form<Vec<(String, String)>>,
) -> Result<HttpResponse, AppError> {
    let form = ReleaseForm::from_pairs(form.into_inner());
    let mut conn = state.db().await?;
    let release = Release::find(&mut conn, user.account_id, *id).await?;
    user.require(Action::EditDraft, release.scope())?;
    let def = match form.process_id.parse::<i64>().ok().and_then(|p| (p == release.process_id).then_some(p)) {
        Some(_) => Some(ops::pinned_definition(&mut conn, &release).await?),
        None => match form.process_id.parse::<i64>() {
            Ok(pid) => match Process::find(&mut conn, user.account_id, pid).await {
                Ok(p) if p.latest_version > 0 => Some(processes_ops::load(&mut conn, &p, None).await?.1),
                _ => None,
            },
            Err(_) => None,
        },
    };
    let mut errors = FieldErrors::new();
    let mut input = form.to_input(def.as_ref(), &release.time_zone, &mut errors);
    input.activate = None;
    let result = match errors.is_empty() {
        false => Err(crate::ops::OpError::Invalid(errors)),
        true => match ops::prepare(&mut conn, &user.actor(), &user.time_zone, &state.secrets, &input, Some(&release), false).await {
            Err(e) => Err(e),
            Ok(prepared) => {
                user.require(Action::EditDraft, prepared.scope())?;
                ops::update(&mut conn, &user.actor(), release.id, input.lock_version, prepared, state.now()).await
            }
        },
    };
    match result {
        Ok(saved) => {
            flash::success(&session, "Draft saved.");
            let conflicts =
                crate::ops::calendar::warn_conflicts(&mut conn, &saved.release, &user.bindings, &user.actor().label, state.now()).await?;
            for w in saved.warnings.into_iter().chain(conflicts) {
                flash::push(&session, "warning", w);
            }
            Ok(redirect(htmx, &format!("/releases/{}", saved.release.id)))
        }
        Err(e) => {
            let (errors, general) = split_errors(e)?;
            render_form_errors(&form_page(&state, &user, &session, Some(*id), form, errors, general).await?, htmx)
        }
    }
}

pub struct ActivityRow {
    pub key: String,
    pub name: String,
    pub kind: String,
    pub status: String,
    pub owner: String,
    pub attempts: i32,
    pub reason: String,
    pub acted: String,
    pub timing: String,
    pub outputs: String,
    /// The actions this viewer may take now (complete, fail, approve, reject, retry, ignore, fix).
    pub allowed: Vec<&'static str>,
    pub needs_reason: Vec<&'static str>,
}

pub struct PhaseRow {
    pub key: String,
    pub name: String,
    pub status: String,
    pub owner: String,
    pub after: String,
    pub activities: Vec<ActivityRow>,
}

pub struct AuditRow {
    pub at: String,
    pub actor: String,
    pub action: String,
    pub reason: String,
}

#[derive(Template)]
#[template(path = "pages/releases/detail.html")]
pub struct DetailPage {
    pub chrome: Chrome,
    pub r: Release,
    pub process_name: String,
    pub level: String,
    pub owner: String,
    pub window: String,
    pub inputs: Vec<(String, String)>,
    pub variables: Vec<(String, String)>,
    pub phases: Vec<PhaseRow>,
    pub links: Vec<(String, i64)>,
    pub linked_by: Vec<(i64, String, String)>,
    pub audit: Vec<AuditRow>,
    pub can_edit: bool,
    pub can_activate: bool,
    pub can_abort: bool,
    pub can_restart: bool,
    pub can_delete: bool,
    pub is_draft: bool,
    pub scheduled: bool,
    pub in_flight: bool,
    pub finished: bool,
    pub newer_version: Option<i32>,
    pub can_roll_back: bool,
    pub conflicts: Vec<(i64, String)>,
}

pub async fn show(state: web::Data<AppState>, user: CurrentUser, session: Session, id: web::Path<i64>) -> Result<HttpResponse, AppError> {
    use diesel::prelude::*;
    use diesel_async::RunQueryDsl;
    let mut conn = state.db().await?;
    let release = Release::find(&mut conn, user.account_id, *id).await?;
    if !user.may(Action::ViewRelease, release.scope()) && !ops::is_named(&mut conn, &release, user.user_id, &user.email).await? {
        user.require(Action::ViewRelease, release.scope())?;
    }
    let person = Person {
        actor: user.actor(),
        user_id: user.user_id,
        email: &user.email,
        bindings: &user.bindings,
        groups: groups_of(&mut conn, user.user_id).await?,
        delegating_for: crate::ops::activities::delegating_for(&mut conn, user.user_id, state.now()).await?,
    };
    let view = ops::view(&mut conn, release).await?;
    let latest = Process::find(&mut conn, user.account_id, view.release.process_id).await?.latest_version;
    let events: Vec<(DateTime<Utc>, String, String, Option<String>)> = audit_events::table
        .filter(audit_events::release_id.eq(view.release.id))
        .order(audit_events::seq.desc())
        .limit(200)
        .select((audit_events::at, audit_events::actor, audit_events::action, audit_events::reason))
        .load(&mut conn)
        .await?;
    let tz = user.time_zone.clone();
    let masked = processes_ops::masked(&view.definition, &view.release.inputs);
    let lookup: std::collections::BTreeMap<String, Value> =
        crate::domain::release::with_defaults(&view.definition, &processes_ops::revealed(&state.secrets, &view.release.inputs))
            .into_iter()
            .filter(|(k, _)| !view.definition.inputs.iter().any(|i| &i.name == k && i.secret))
            .map(|(k, v)| (format!("inputs.{k}"), v))
            .collect();
    let variables = view
        .definition
        .variables
        .iter()
        .map(|v| {
            let value = view.release.variables.get(&v.name).cloned().unwrap_or(v.value.clone());
            let shown = crate::domain::process::template::render(&value, &lookup).map(|x| to_text(&x)).unwrap_or_else(|_| to_text(&value));
            (v.name.clone(), shown)
        })
        .collect();
    let r = &view.release;
    let scope = r.scope();
    let state_ = r.state();
    let status = r.status();
    let page = DetailPage {
        chrome: Chrome::new(&user, &session, r.name.clone(), "/releases"),
        process_name: format!("{} (version {})", view.process_name, r.process_version),
        level: view.org_slug.clone().map(|o| format!("organization {o}")).unwrap_or_else(|| "account level".into()),
        owner: view.owner_email.clone().map(|e| format!("user:{e}")).unwrap_or_else(|| "— none —".into()),
        window: match r.schedule_start {
            Some(_) => format!("{} → {} (release time zone {})", local(r.schedule_start, &tz), local(r.schedule_end, &tz), r.time_zone),
            None => "unscheduled".into(),
        },
        inputs: view
            .definition
            .inputs
            .iter()
            .map(|i| {
                (
                    i.name.clone(),
                    masked
                        .get(&i.name)
                        .map(to_text)
                        .unwrap_or_else(|| i.default.as_ref().map(|d| format!("{} (default)", to_text(d))).unwrap_or_default()),
                )
            })
            .collect(),
        variables,
        phases: view
            .phases
            .iter()
            .map(|p| PhaseRow {
                key: p.key.clone(),
                name: p.name.clone(),
                status: p.status.clone(),
                owner: p.owner.clone(),
                after: p.depends_on.join(", "),
                activities: view
                    .activities
                    .iter()
                    .filter(|a| a.phase_key == p.key)
                    .map(|a| {
                        let allowed: Vec<&'static str> =
                            Verb::ALL.iter().filter(|v| may_act(&person, &view.release, a, **v).is_ok()).map(|v| v.as_str()).collect();
                        ActivityRow {
                            key: a.key.clone(),
                            name: a.name.clone(),
                            kind: a.kind.clone(),
                            status: a.status.clone(),
                            owner: a.owner.clone(),
                            attempts: a.attempts,
                            reason: a.status_reason.clone().unwrap_or_default(),
                            acted: [a.last_actor.clone(), a.note.clone()].into_iter().flatten().collect::<Vec<_>>().join(": "),
                            timing: match (a.started_at, a.finished_at) {
                                (Some(s), Some(f)) => {
                                    format!("{} → {} ({} min)", local(Some(s), &tz), local(Some(f), &tz), (f - s).num_minutes())
                                }
                                (Some(s), None) => format!("since {}", local(Some(s), &tz)),
                                _ => String::new(),
                            },
                            outputs: a
                                .outputs
                                .as_object()
                                .filter(|o| !o.is_empty())
                                .map(|o| o.iter().map(|(k, v)| format!("{k}={}", to_text(v))).collect::<Vec<_>>().join(", "))
                                .unwrap_or_default(),
                            needs_reason: allowed
                                .iter()
                                .copied()
                                .filter(|v| matches!(*v, "fail" | "reject" | "retry" | "ignore" | "fix"))
                                .collect(),
                            allowed,
                        }
                    })
                    .collect(),
            })
            .collect(),
        links: view.links.iter().map(|l| (l.kind.clone(), l.target_id)).collect(),
        linked_by: view.linked_by.clone(),
        audit: events
            .into_iter()
            .map(|(at, actor, action, reason)| AuditRow { at: local(Some(at), &tz), actor, action, reason: reason.unwrap_or_default() })
            .collect(),
        can_edit: state_ == State::Draft && user.may(Action::EditDraft, scope),
        can_activate: state_ == State::Draft && user.may(Action::Activate, scope),
        can_abort: crate::domain::release::in_flight(state_, status) && user.may(Action::Abort, scope),
        can_restart: state_ != State::Draft && !crate::domain::release::in_flight(state_, status) && user.may(Action::Restart, scope),
        can_delete: user.may(Action::DeleteRelease, scope),
        is_draft: state_ == State::Draft,
        scheduled: r.schedule_start.is_some(),
        in_flight: crate::domain::release::in_flight(state_, status),
        finished: status.is_finished(),
        newer_version: (state_ == State::Draft && latest > r.process_version).then_some(latest),
        conflicts: crate::ops::calendar::conflicting_with(&mut conn, &view.release, &user.bindings).await?,
        can_roll_back: crate::domain::release::in_flight(state_, status)
            && user.may(Action::DecideFailure, scope)
            && view.activities.iter().any(|a| {
                a.status == "OnHold" && a.status_reason.as_deref().is_some_and(|x| x.starts_with(crate::ops::activities::FAILED_PREFIX))
            }),
        r: view.release.clone(),
    };
    render(&page)
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ReasonForm {
    pub reason: String,
}

/// Runs a lifecycle action; a refusal comes back as a flash on the release page.
async fn lifecycle(
    state: &AppState,
    user: &CurrentUser,
    session: &Session,
    htmx: Htmx,
    id: i64,
    action: Action,
    reason: &str,
    what: &str,
) -> Result<HttpResponse, AppError> {
    let mut conn = state.db().await?;
    let release = Release::find(&mut conn, user.account_id, id).await?;
    user.require(action, release.scope())?;
    let actor = user.actor();
    let now = state.now();
    let result = match what {
        "activate" => ops::activate(&mut conn, &actor, id, now).await.map(|r| (r.id, "Release activated.".to_string())),
        "run-now" => ops::run_now(&mut conn, &actor, id, reason, now).await.map(|r| (r.id, "Release started now.".to_string())),
        "abort" => ops::abort(&mut conn, &actor, id, reason, now).await.map(|r| (r.id, "Release aborted.".to_string())),
        "restart" => {
            ops::restart(&mut conn, &actor, id, now).await.map(|r| (r.id, format!("A new draft #{} was made from release #{id}.", r.id)))
        }
        "rebase" => ops::rebase(&mut conn, &actor, &user.time_zone, &state.secrets, id, now)
            .await
            .map(|s| (s.release.id, format!("The draft now uses process version {}.", s.release.process_version))),
        _ => return Err(AppError::NotFound),
    };
    match result {
        Ok((target, message)) => {
            flash::success(session, message);
            Ok(redirect(htmx, &format!("/releases/{target}")))
        }
        Err(e) => {
            let message = match &e {
                crate::ops::OpError::Rule { message, .. } | crate::ops::OpError::Conflict { message } => message.clone(),
                crate::ops::OpError::Invalid(errors) => errors.0.iter().map(|(f, m)| format!("{f} {m}")).collect::<Vec<_>>().join("; "),
                _ => return Err(e.into()),
            };
            flash::push(session, "error", message);
            Ok(redirect(htmx, &format!("/releases/{id}")))
        }
    }
}

pub async fn activate(
    state: web::Data<AppState>,
    user: CurrentUser,
    session: Session,
    htmx: Htmx,
    id: web::Path<i64>,
) -> Result<HttpResponse, AppError> {
    lifecycle(&state, &user, &session, htmx, *id, Action::Activate, "", "activate").await
}

pub async fn run_now(
    state: web::Data<AppState>,
    user: CurrentUser,
    session: Session,
    htmx: Htmx,
    id: web::Path<i64>,
    form: web::Form<ReasonForm>,
) -> Result<HttpResponse, AppError> {
    lifecycle(&state, &user, &session, htmx, *id, Action::RunNow, &form.reason, "run-now").await
}

pub async fn abort(
    state: web::Data<AppState>,
    user: CurrentUser,
    session: Session,
    htmx: Htmx,
    id: web::Path<i64>,
    form: web::Form<ReasonForm>,
) -> Result<HttpResponse, AppError> {
    lifecycle(&state, &user, &session, htmx, *id, Action::Abort, &form.reason, "abort").await
}

pub async fn restart(
    state: web::Data<AppState>,
    user: CurrentUser,
    session: Session,
    htmx: Htmx,
    id: web::Path<i64>,
) -> Result<HttpResponse, AppError> {
    lifecycle(&state, &user, &session, htmx, *id, Action::Restart, "", "restart").await
}

pub async fn rebase(
    state: web::Data<AppState>,
    user: CurrentUser,
    session: Session,
    htmx: Htmx,
    id: web::Path<i64>,
) -> Result<HttpResponse, AppError> {
    lifecycle(&state, &user, &session, htmx, *id, Action::EditDraft, "", "rebase").await
}

pub async fn delete(
    state: web::Data<AppState>,
    user: CurrentUser,
    session: Session,
    htmx: Htmx,
    id: web::Path<i64>,
) -> Result<HttpResponse, AppError> {
    let mut conn = state.db().await?;
    let release = Release::find(&mut conn, user.account_id, *id).await?;
    user.require(Action::DeleteRelease, release.scope())?;
    match ops::delete(&mut conn, &user.actor(), release.id, state.settings.retention_days, state.now()).await {
        Ok(d) => {
            let links = if d.removed_links.is_empty() {
                String::new()
            } else {
                format!(
                    " Removed links from: {}.",
                    d.removed_links.iter().map(|(id, n, k)| format!("#{id} {n} ({k})")).collect::<Vec<_>>().join(", ")
                )
            };
            flash::success(&session, format!("Release \"{}\" deleted.{links}", d.name));
            Ok(redirect(htmx, "/releases"))
        }
        Err(crate::ops::OpError::Rule { message, .. }) => {
            flash::push(&session, "error", message);
            Ok(redirect(htmx, &format!("/releases/{}", release.id)))
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ActForm {
    pub reason: String,
    pub comment: String,
}

/// An action on an activity from the release page; a refusal is shown as a message.
pub async fn act(
    state: web::Data<AppState>,
    user: CurrentUser,
    session: Session,
    htmx: Htmx,
    path: web::Path<(i64, String, String, String)>,
    form: web::Form<ActForm>,
) -> Result<HttpResponse, AppError> {
    let (id, phase, activity, verb) = path.into_inner();
    let verb = Verb::parse(&verb).ok_or(AppError::NotFound)?;
    let mut conn = state.db().await?;
    let release = Release::find(&mut conn, user.account_id, id).await?;
    let person = Person {
        actor: user.actor(),
        user_id: user.user_id,
        email: &user.email,
        bindings: &user.bindings,
        groups: groups_of(&mut conn, user.user_id).await?,
        delegating_for: crate::ops::activities::delegating_for(&mut conn, user.user_id, state.now()).await?,
    };
    let input = crate::ops::activities::ActInput {
        reason: Some(form.reason.clone()).filter(|r| !r.trim().is_empty()),
        comment: Some(form.comment.clone()).filter(|c| !c.trim().is_empty()),
        outputs: None,
    };
    match crate::ops::activities::act(&mut conn, &person, release.id, &phase, &activity, verb, &input, state.now()).await {
        Ok(_) => flash::success(&session, format!("{} {phase}.{activity}: done.", verb.as_str())),
        Err(crate::ops::OpError::Forbidden(m)) => return Err(AppError::Forbidden(m)),
        Err(e) => {
            let message = match &e {
                crate::ops::OpError::Rule { message, .. } | crate::ops::OpError::Conflict { message } => message.clone(),
                crate::ops::OpError::Invalid(errors) => errors.0.iter().map(|(f, m)| format!("{f} {m}")).collect::<Vec<_>>().join("; "),
                _ => return Err(e.into()),
            };
            flash::push(&session, "error", message);
        }
    }
    Ok(redirect(htmx, &format!("/releases/{id}")))
}

pub async fn roll_back(
    state: web::Data<AppState>,
    user: CurrentUser,
    session: Session,
    htmx: Htmx,
    id: web::Path<i64>,
    form: web::Form<ReasonForm>,
) -> Result<HttpResponse, AppError> {
    let mut conn = state.db().await?;
    let release = Release::find(&mut conn, user.account_id, *id).await?;
    user.require(Action::DecideFailure, release.scope())?;
    match crate::ops::activities::roll_back(&mut conn, &user.actor(), &user.bindings, release.id, &form.reason, state.now()).await {
        Ok(_) => flash::success(&session, "Rolling back: the rollback phases run now."),
        Err(crate::ops::OpError::Invalid(errors)) => {
            flash::push(&session, "error", errors.0.iter().map(|(f, m)| format!("{f} {m}")).collect::<Vec<_>>().join("; "))
        }
        Err(crate::ops::OpError::Rule { message, .. }) => flash::push(&session, "error", message),
        Err(e) => return Err(e.into()),
    }
    Ok(redirect(htmx, &format!("/releases/{}", *id)))
}
