//! The release form: new, and editing a draft; errors keep what was typed.

use actix_session::Session;
use actix_web::{web, HttpResponse};
use askama::Template;
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::db::models::accounts::{AccountSettings, Organization};
use crate::db::models::catalog::{Environment, Service};
use crate::db::models::processes::{InputSet, Process};
use crate::db::models::releases::{self as rows, Release};
use crate::domain::policy::{Action, Scope};
use crate::domain::process::definition::InputType;
use crate::domain::process::template::to_text;
use crate::domain::process::Definition;
use crate::domain::release::{ReleaseType, State};
use crate::domain::validate::FieldErrors;
use crate::ops::processes::{self as processes_ops, MASK};
use crate::ops::releases::{self as ops, LinksInput, ReleaseInput, ScheduleInput};
use crate::ops::OpError;
use crate::web::error::AppError;
use crate::web::extractors::{CurrentUser, Htmx};
use crate::web::flash;
use crate::web::pages::{redirect, render, render_form_errors, Chrome};
use crate::web::AppState;

use super::local_input;
use crate::domain::release::LinkKind;
use crate::domain::rule::RuleCode;

/// A stored input value as the form's fields: a list as one field per item, a manifest as
/// `name.service` / `name.version` pairs (its rows), anything else as text.
fn push_value(fields: &mut Vec<(String, String)>, name: &str, value: &Value) {
    match value {
        Value::Array(items) => fields.extend(items.iter().map(|i| (name.to_string(), to_text(i)))),
        Value::Object(map) => {
            for (service, version) in map {
                fields.push((format!("{name}.service"), service.clone()));
                fields.push((format!("{name}.version"), to_text(version)));
            }
        }
        other => fields.push((name.to_string(), to_text(other))),
    }
}

/// A manifest as typed: its rows (service, version) and the pasted `service=version` lines, as
/// the lines the domain parses. A pasted line names a service again to replace its row.
fn manifest_text(fields: &[(String, String)], name: &str) -> String {
    let of = |suffix: &str| -> Vec<String> {
        let key = format!("{name}.{suffix}");
        fields.iter().filter(|(k, _)| *k == key).map(|(_, v)| v.trim().to_string()).collect()
    };
    let mut lines: Vec<String> = of("service")
        .into_iter()
        .zip(of("version"))
        .filter(|(s, v)| !s.is_empty() || !v.is_empty())
        .map(|(s, v)| format!("{s}={v}"))
        .collect();
    for pasted in of("paste").iter().flat_map(|p| p.lines()).map(str::trim).filter(|l| !l.is_empty()) {
        if let Some((service, _)) = pasted.split_once(['=', ':']) {
            lines.retain(|l| l.split_once('=').map(|(s, _)| s.trim()) != Some(service.trim()));
        }
        lines.push(pasted.to_string());
    }
    lines.join("\n")
}

/// The rows a manifest field shows: what was typed (or stored), then blank rows to add more.
fn manifest_rows(fields: &[(String, String)], name: &str, default: Option<&Value>) -> Vec<(String, String)> {
    let text = manifest_text(fields, name);
    let mut rows: Vec<(String, String)> = text
        .lines()
        .map(|l| match l.split_once(['=', ':']) {
            Some((s, v)) => (s.trim().to_string(), v.trim().to_string()),
            None => (l.to_string(), String::new()),
        })
        .collect();
    if rows.is_empty() {
        if let Some(Value::Object(map)) = default {
            rows = map.iter().map(|(s, v)| (s.clone(), to_text(v))).collect();
        }
    }
    rows.extend(std::iter::repeat_n((String::new(), String::new()), 3));
    rows
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
    /// A manifest: its rows (service, version), blank ones last.
    pub rows: Vec<(String, String)>,
}

impl InputField {
    pub fn widget(&self) -> &'static str {
        match self.kind {
            "service_versions" => "manifest",
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
    /// Empty: the draft's version, or the newest for another process.
    pub process_version: String,
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
                "process_version" => f.process_version = v,
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
                    InputType::ServiceVersions => match manifest_text(&self.inputs, &i.name) {
                        text if text.trim().is_empty() => Value::Null,
                        text => Value::String(text),
                    },
                    InputType::Datetime => match values.first().map(|v| v.trim()).filter(|v| !v.is_empty()) {
                        Some(v) => match crate::domain::schedule::parse_time(v, tz) {
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
            process_version: self.process_version.trim().parse().ok(),
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
    /// The chosen process's saved versions, newest first.
    pub versions: Vec<i32>,
    /// Editing a draft: what would refuse its activation now (as saved).
    pub not_ready: Vec<String>,
    pub errors: FieldErrors,
    pub general_errors: Vec<String>,
    pub warnings: Vec<String>,
    pub zones: Vec<&'static str>,
    pub process_version: String,
}

pub(super) async fn form_page(
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
        // Archived processes start no new release; a draft of one still shows its own.
        .filter(|s| s.process.archived_at.is_none() || form.process_id == s.process.id.to_string())
        .map(|s| (s.process.id, s.process.name))
        .collect();
    if form.process_id.is_empty() {
        form.process_id = processes.first().map(|(id, _)| id.to_string()).unwrap_or_default();
    }
    let process = match form.process_id.parse::<i64>() {
        Ok(id) => Process::find(&mut conn, user.account_id, id).await.ok(),
        Err(_) => None,
    };
    let chosen_version = form.process_version.trim().parse::<i32>().ok();
    let (def, version) = match (&process, editing) {
        (Some(p), _) if chosen_version.is_some_and(|v| v >= 1 && v <= p.latest_version) => {
            let v = chosen_version.unwrap_or(p.latest_version);
            (Some(processes_ops::load(&mut conn, p, Some(v)).await?.1), v)
        }
        (Some(p), Some(id)) => {
            let r = Release::find(&mut conn, user.account_id, id).await?;
            let v = if r.process_id == p.id { r.process_version } else { p.latest_version };
            (Some(processes_ops::load(&mut conn, p, Some(v)).await?.1), v)
        }
        (Some(p), None) if p.latest_version > 0 => (Some(processes_ops::load(&mut conn, p, None).await?.1), p.latest_version),
        _ => (None, 0),
    };
    form.process_version = if version > 0 { version.to_string() } else { String::new() };
    let versions: Vec<i32> = process.as_ref().map(|p| (1..=p.latest_version).rev().collect()).unwrap_or_default();
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
                    InputType::Service | InputType::ServiceList | InputType::ServiceVersions => services.clone(),
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
                    rows: if i.kind == InputType::ServiceVersions {
                        manifest_rows(&form.inputs, &i.name, i.default.as_ref())
                    } else {
                        Vec::new()
                    },
                }
            })
            .collect(),
    };
    // Every variable by its override key: `name`, `phase.name`, `phase.activity.name`.
    let variables = match &def {
        None => Vec::new(),
        Some(def) => crate::domain::process::overrides::overridable(def)
            .into_iter()
            .map(|(key, v)| {
                let current = form.variables.iter().find(|(k, _)| k == &key).map(|(_, x)| x.clone()).unwrap_or_default();
                (key, to_text(&v.value), current)
            })
            .collect(),
    };
    let not_ready = match editing {
        Some(id) => {
            let saved = Release::find(&mut conn, user.account_id, id).await?;
            let pinned = ops::pinned_definition(&mut conn, &saved).await?;
            ops::activation_problems(&mut conn, &saved, &pinned).await?.0.iter().map(ToString::to_string).collect()
        }
        None => Vec::new(),
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
        versions,
        not_ready,
        errors,
        general_errors,
        warnings,
        zones: crate::web::pages::profile::zone_names(),
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
    // The form is for who may create a release somewhere: at account level or in one org.
    if crate::domain::policy::Visibility::of(&user.bindings, Action::CreateRelease).nothing() {
        user.require(Action::CreateRelease, Scope::Account)?;
    }
    let mut form = ReleaseForm { process_id: query.process_id.clone(), input_set: query.input_set.clone(), ..Default::default() };
    if let (Ok(pid), false) = (query.process_id.parse::<i64>(), query.input_set.is_empty()) {
        let mut conn = state.db().await?;
        // An input set (secrets included) prefills only for who may create releases of its process.
        let process = crate::db::models::processes::Process::find(&mut conn, user.account_id, pid).await?;
        user.require(Action::CreateRelease, process.scope())?;
        if let Ok(set) = InputSet::by_name(&mut conn, user.account_id, pid, &query.input_set).await {
            for (k, v) in processes_ops::revealed(&state.secrets, &set.input_values) {
                push_value(&mut form.inputs, &k, &v);
            }
        }
    }
    render(&form_page(&state, &user, &session, None, form, FieldErrors::new(), vec![]).await?)
}

pub(super) fn split_errors(e: crate::ops::OpError) -> Result<(FieldErrors, Vec<String>), AppError> {
    match e {
        crate::ops::OpError::Rule { message, code, field } => {
            let mut errors = FieldErrors::new();
            if let Some(f) = field.filter(|_| code != RuleCode::MissingInputs) {
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
    let actor = user.actor();
    let result = match errors.is_empty() {
        false => Err(OpError::Invalid(errors)),
        true => ops::create_release(&mut conn, user.requester(&actor), &state.secrets, &input, state.now()).await,
    };
    match result {
        Ok(saved) => {
            let verb = if form.activate { "created and activated" } else { "created as a draft" };
            flash::success(&session, format!("Release \"{}\" {verb}.", saved.release.name));
            for w in saved.warnings {
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

pub(super) fn form_from_release(
    r: &Release,
    secrets: &crate::security::SecretBox,
    owner: Option<String>,
    org: Option<String>,
    links: &[rows::ReleaseLink],
) -> ReleaseForm {
    let mut inputs = Vec::new();
    for (k, v) in processes_ops::revealed(secrets, &r.inputs) {
        push_value(&mut inputs, &k, &v);
    }
    ReleaseForm {
        process_id: r.process_id.to_string(),
        process_version: r.process_version.to_string(),
        input_set: String::new(),
        name: r.name.clone(),
        release_type: r.release_type.as_str().to_owned(),
        org: org.unwrap_or_default(),
        owner: owner.map(|e| format!("user:{e}")).unwrap_or_default(),
        stakeholders: r.stakeholders.join(", "),
        schedule_start: local_input(r.schedule_start, &r.time_zone),
        schedule_end: local_input(r.schedule_end, &r.time_zone),
        time_zone: r.time_zone.clone(),
        depends_on: links.iter().filter(|l| l.is(LinkKind::DependsOn)).map(|l| l.target_id.to_string()).collect::<Vec<_>>().join(", "),
        hotfix_for: links.iter().find(|l| l.is(LinkKind::HotfixFor)).map(|l| l.target_id.to_string()).unwrap_or_default(),
        inputs,
        variables: r.variables.as_object().map(|m| m.iter().map(|(k, v)| (k.clone(), to_text(v))).collect()).unwrap_or_default(),
        lock_version: r.lock_version.to_string(),
        activate: false,
    }
}

/// `GET /releases/{id}/edit?process_id=&process_version=`: the form again for another process
/// or version (the select re-renders it through htmx), the draft's other fields kept.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct EditQuery {
    pub process_id: String,
    pub process_version: String,
}

pub async fn edit(
    state: web::Data<AppState>,
    user: CurrentUser,
    session: Session,
    id: web::Path<i64>,
    query: web::Query<EditQuery>,
) -> Result<HttpResponse, AppError> {
    let mut conn = state.db().await?;
    let release = Release::find(&mut conn, user.account_id, *id).await?;
    user.require(Action::EditDraft, release.scope())?;
    if release.state() != State::Draft {
        return Err(AppError::Rule {
            code: RuleCode::NotDraft,
            field: None,
            message: format!("Only drafts can be edited; this release is {}.", release.state()),
        });
    }
    let view = ops::view(&mut conn, release).await?;
    let mut form = form_from_release(&view.release, &state.secrets, view.owner_email.clone(), view.org_slug.clone(), &view.links);
    if !query.process_id.trim().is_empty() && query.process_id.trim() != form.process_id {
        // Another process: its own newest version unless one is named.
        form.process_id = query.process_id.trim().to_string();
        form.process_version = query.process_version.trim().to_string();
    } else if !query.process_version.trim().is_empty() {
        form.process_version = query.process_version.trim().to_string();
    }
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
    let chosen_version = form.process_version.trim().parse::<i32>().ok();
    let def = match form.process_id.parse::<i64>() {
        Ok(pid) if pid == release.process_id && chosen_version.is_none_or(|v| v == release.process_version) => {
            Some(ops::pinned_definition(&mut conn, &release).await?)
        }
        Ok(pid) => match Process::find(&mut conn, user.account_id, pid).await {
            Ok(p) if p.latest_version > 0 => {
                let v = chosen_version.filter(|v| *v >= 1 && *v <= p.latest_version);
                Some(processes_ops::load(&mut conn, &p, v).await?.1)
            }
            _ => None,
        },
        Err(_) => None,
    };
    let mut errors = FieldErrors::new();
    let mut input = form.to_input(def.as_ref(), &release.time_zone, &mut errors);
    input.activate = None;
    let actor = user.actor();
    let result = match errors.is_empty() {
        false => Err(OpError::Invalid(errors)),
        true => ops::edit_draft(&mut conn, user.requester(&actor), &state.secrets, &release, &input, state.now()).await,
    };
    match result {
        Ok(saved) => {
            flash::success(&session, "Draft saved.");
            for w in saved.warnings {
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
