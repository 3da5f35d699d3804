//! `/processes/{id}`: the editor. Edits go to the user's working copy; "Save" makes the next
//! version. Also read-only versions, the diff between two versions, and YAML export/edit.

use actix_session::Session;
use actix_web::{web, HttpResponse};
use askama::Template;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use std::collections::BTreeMap;

use super::processes::definition_messages;
use super::{redirect, render, render_form_errors, Chrome};
use crate::db::models::accounts::Organization;
use crate::db::models::processes::{Process, ProcessVersion, WorkingCopy};
use crate::domain::policy::Action;
use crate::domain::process::definition::{
    parse_value, parse_yaml, ActivityDef, ActivityKind, Completion, DeploysDef, OnFailure, RetryDef, Threshold, WebhookConfig,
};
use crate::domain::process::diff::{diff, Change};
use crate::domain::process::graph::depths;
use crate::domain::process::{validate, Definition, PhaseDef};
use crate::ops::processes::{self as ops};
use crate::web::error::AppError;
use crate::web::extractors::{CurrentUser, Htmx};
use crate::web::flash;
use crate::web::AppState;

/// What the editor shows: the user's working copy if there is one, else the latest version.
pub struct Editing {
    pub process: Process,
    pub org_label: String,
    pub definition: Definition,
    pub working_copy: bool,
    pub base_version: i32,
}

async fn load(state: &AppState, user: &CurrentUser, id: i64, version: Option<i32>) -> Result<Editing, AppError> {
    let mut conn = state.db().await?;
    let process = Process::find(&mut conn, user.account_id, id).await?;
    user.require(Action::ViewProcess, process.scope())?;
    let org_label = match process.org_id {
        Some(org) => format!("organization {}", Organization::find(&mut conn, user.account_id, org).await?.slug),
        None => "account level".into(),
    };
    if version.is_none() && user.may(Action::ManageProcess, process.scope()) {
        if let Some(wc) = WorkingCopy::find(&mut conn, process.id, user.user_id).await? {
            let definition =
                parse_value(wc.definition).map_err(|e| AppError::Unexpected(anyhow::anyhow!("working copy unreadable: {e}")))?;
            return Ok(Editing { process, org_label, definition, working_copy: true, base_version: wc.base_version });
        }
    }
    if process.latest_version == 0 {
        let definition = Definition { name: process.name.clone(), description: None, inputs: vec![], variables: vec![], phases: vec![] };
        return Ok(Editing { base_version: 0, process, org_label, definition, working_copy: false });
    }
    let (v, definition) = ops::load(&mut conn, &process, version).await?;
    Ok(Editing { process, org_label, definition, working_copy: false, base_version: v })
}

/// Loads for editing: requires manage_process on the process's scope.
async fn load_for_edit(state: &AppState, user: &CurrentUser, id: i64) -> Result<Editing, AppError> {
    let editing = load(state, user, id, None).await?;
    user.require(Action::ManageProcess, editing.process.scope())?;
    Ok(editing)
}

async fn store(state: &AppState, user: &CurrentUser, editing: &Editing, def: &Definition) -> Result<(), AppError> {
    let mut conn = state.db().await?;
    WorkingCopy::upsert(&mut conn, &editing.process, user.user_id, editing.base_version, &def.to_json(), state.now()).await?;
    Ok(())
}

/// Errors the change introduced (those already there before it are not the form's fault).
/// A phase without activities is fine in a working copy; "Save" insists on them.
fn new_errors(before: &Definition, after: &Definition) -> Vec<String> {
    let old = validate(before);
    validate(after)
        .into_iter()
        .filter(|e| !old.contains(e))
        .filter(|e| !(e.code == "invalid" && e.path.ends_with(".activities") && e.message.contains("at least one activity")))
        .filter(|e| !(e.path == "phases" && e.code == "invalid"))
        .map(|e| e.to_string())
        .collect()
}

pub struct ActivityView {
    pub key: String,
    pub name: String,
    pub kind: &'static str,
    pub owner: String,
    pub after: String,
    pub summary: String,
}

pub struct PhaseView {
    pub key: String,
    pub name: String,
    pub owner: String,
    pub after: String,
    pub not_before: String,
    pub rollback: bool,
    pub activities: Vec<ActivityView>,
}

pub struct DepthGroup {
    pub depth: usize,
    pub phases: Vec<PhaseView>,
}

fn activity_summary(a: &ActivityDef) -> String {
    let mut parts = Vec::new();
    match a.kind {
        ActivityKind::Approval => {
            parts.push(format!("approvers {}", a.approvers.join(", ")));
            match (a.required_approvals, a.threshold) {
                (Some(n), _) => parts.push(format!("{n} approval(s) needed")),
                (None, Some(t)) => parts.push(format!(
                    "threshold {}",
                    serde_json::to_value(t).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default()
                )),
                _ => {}
            }
            if a.separation_of_duties == Some(true) {
                parts.push("separation of duties".into());
            }
        }
        ActivityKind::Webhook => {
            if let Some(c) = &a.config {
                parts.push(format!("{} {}", c.method.as_deref().unwrap_or("POST"), c.url));
                if c.completion == Some(Completion::Callback) {
                    parts.push("waits for a callback".into());
                }
            }
        }
        ActivityKind::Wait => {
            if let Some(f) = &a.wait_for {
                parts.push(format!("waits {f}"));
            }
            if let Some(u) = &a.until {
                parts.push(format!("until {u}"));
            }
        }
        ActivityKind::Subprocess => parts.push(format!("runs process {}", a.process.as_deref().unwrap_or("?"))),
        ActivityKind::Manual => {}
    }
    if let Some(d) = &a.deploys {
        parts.push(format!(
            "deploys {} {} to {}",
            d.service.as_deref().unwrap_or("?"),
            d.version.as_deref().unwrap_or(""),
            d.environment.as_deref().unwrap_or("the release's environments")
        ));
    }
    if !a.is_critical() {
        parts.push("not critical".into());
    }
    parts.join(" · ")
}

/// Phases grouped by dependency depth; each with its activities and "after: X" labels.
pub fn depth_groups(def: &Definition) -> Vec<DepthGroup> {
    let graph: Vec<(String, Vec<String>)> = def.phases.iter().map(|p| (p.key.clone(), p.depends_on.clone())).collect();
    let depth = depths(&graph);
    let mut groups: BTreeMap<usize, Vec<PhaseView>> = BTreeMap::new();
    for p in &def.phases {
        let view = PhaseView {
            key: p.key.clone(),
            name: p.name.clone(),
            owner: p.owner.clone().unwrap_or_default(),
            after: p.depends_on.join(", "),
            not_before: p.not_before.clone().unwrap_or_default(),
            rollback: p.rollback,
            activities: p
                .activities
                .iter()
                .map(|a| ActivityView {
                    key: a.key.clone(),
                    name: a.name.clone(),
                    kind: a.kind.as_str(),
                    owner: a.owner.clone().unwrap_or_default(),
                    after: a.depends_on.join(", "),
                    summary: activity_summary(a),
                })
                .collect(),
        };
        // Rollback phases run only on failure: show them last, apart.
        let d = if p.rollback { usize::MAX } else { depth.get(&p.key).copied().unwrap_or(0) };
        groups.entry(d).or_default().push(view);
    }
    groups.into_iter().map(|(depth, phases)| DepthGroup { depth, phases }).collect()
}

#[derive(Debug, Default, Deserialize, Clone)]
#[serde(default)]
pub struct PhaseForm {
    pub key: String,
    pub name: String,
    pub owner: String,
    pub depends_on: String,
    pub not_before: String,
    pub rollback: Option<String>,
}

impl PhaseForm {
    fn from_phase(p: &PhaseDef) -> Self {
        PhaseForm {
            key: p.key.clone(),
            name: p.name.clone(),
            owner: p.owner.clone().unwrap_or_default(),
            depends_on: p.depends_on.join(", "),
            not_before: p.not_before.clone().unwrap_or_default(),
            rollback: p.rollback.then(|| "on".into()),
        }
    }

    pub fn is_rollback(&self) -> bool {
        self.rollback.is_some()
    }

    fn apply(&self, phase: &mut PhaseDef) {
        phase.name = self.name.trim().to_string();
        phase.owner = opt(&self.owner);
        phase.depends_on = list(&self.depends_on);
        phase.not_before = opt(&self.not_before);
        phase.rollback = self.rollback.is_some();
    }
}

fn opt(s: &str) -> Option<String> {
    Some(s.trim().to_string()).filter(|s| !s.is_empty())
}

fn list(s: &str) -> Vec<String> {
    s.split([',', ' ', '\n']).map(str::trim).filter(|s| !s.is_empty()).map(str::to_string).collect()
}

pub struct VersionRow {
    pub version: i32,
    pub at: String,
    pub by: String,
}

#[derive(Template)]
#[template(path = "pages/processes/editor.html")]
pub struct EditorPage {
    pub chrome: Chrome,
    pub id: i64,
    pub name: String,
    pub org_label: String,
    pub latest_version: i32,
    /// What is on screen: "working copy (based on version 3)", "version 2", …
    pub showing: String,
    pub read_only: bool,
    pub can_edit: bool,
    pub working_copy: bool,
    pub groups: Vec<DepthGroup>,
    pub inputs: Vec<(String, String, String)>,
    pub warnings: Vec<String>,
    pub save_errors: Vec<String>,
    pub history: Vec<VersionRow>,
    pub phase_form: PhaseForm,
    pub phase_errors: Vec<String>,
    pub export_version: i32,
}

fn fmt_time(t: DateTime<Utc>, zone: &str) -> String {
    let tz: chrono_tz::Tz = zone.parse().unwrap_or(chrono_tz::UTC);
    t.with_timezone(&tz).format("%Y-%m-%d %H:%M %Z").to_string()
}

async fn editor_page(
    state: &AppState,
    user: &CurrentUser,
    session: &Session,
    editing: Editing,
    read_only: bool,
) -> Result<EditorPage, AppError> {
    let mut conn = state.db().await?;
    let history = ProcessVersion::history(&mut conn, user.account_id, editing.process.id)
        .await?
        .into_iter()
        .map(|(version, at, by)| VersionRow { version, at: fmt_time(at, &user.time_zone), by })
        .collect();
    let warnings = if read_only { Vec::new() } else { ops::warnings(&mut conn, user.account_id, &editing.definition).await? };
    let can_edit = !read_only && user.may(Action::ManageProcess, editing.process.scope());
    let showing = if editing.working_copy {
        if editing.base_version == 0 {
            "your working copy (not saved yet)".to_string()
        } else {
            format!("your working copy (based on version {})", editing.base_version)
        }
    } else if editing.base_version == 0 {
        "no saved version yet".to_string()
    } else {
        format!("version {}", editing.base_version)
    };
    let inputs = editing
        .definition
        .inputs
        .iter()
        .map(|i| {
            let mut flags = Vec::new();
            if i.required {
                flags.push("required");
            }
            if i.secret {
                flags.push("secret");
            }
            (
                i.name.clone(),
                i.kind.as_str().to_string(),
                format!("{} {}", flags.join(", "), i.description.clone().unwrap_or_default()).trim().to_string(),
            )
        })
        .collect();
    Ok(EditorPage {
        chrome: Chrome::new(user, session, format!("Process {}", editing.definition.name), "/processes"),
        id: editing.process.id,
        name: editing.definition.name.clone(),
        org_label: editing.org_label.clone(),
        latest_version: editing.process.latest_version,
        showing,
        read_only,
        can_edit,
        working_copy: editing.working_copy,
        groups: depth_groups(&editing.definition),
        inputs,
        warnings,
        save_errors: Vec::new(),
        history,
        phase_form: PhaseForm::default(),
        phase_errors: Vec::new(),
        export_version: editing.base_version,
    })
}

pub async fn show(state: web::Data<AppState>, user: CurrentUser, session: Session, id: web::Path<i64>) -> Result<HttpResponse, AppError> {
    let editing = load(&state, &user, *id, None).await?;
    render(&editor_page(&state, &user, &session, editing, false).await?)
}

pub async fn show_version(
    state: web::Data<AppState>,
    user: CurrentUser,
    session: Session,
    path: web::Path<(i64, i32)>,
) -> Result<HttpResponse, AppError> {
    let (id, version) = path.into_inner();
    let editing = load(&state, &user, id, Some(version)).await?;
    render(&editor_page(&state, &user, &session, editing, true).await?)
}

pub async fn add_phase(
    state: web::Data<AppState>,
    user: CurrentUser,
    session: Session,
    htmx: Htmx,
    id: web::Path<i64>,
    form: web::Form<PhaseForm>,
) -> Result<HttpResponse, AppError> {
    let editing = load_for_edit(&state, &user, *id).await?;
    let form = form.into_inner();
    let mut def = editing.definition.clone();
    let key = form.key.trim().to_string();
    let mut errors = Vec::new();
    if !crate::domain::process::validate::is_key(&key) {
        errors.push(format!("key {key:?} must be lower-case letters, digits and _ (it appears in URLs)"));
    } else if def.phase(&key).is_some() {
        errors.push(format!("key {key:?} is already a phase of this process"));
    }
    let mut phase = PhaseDef {
        key: key.clone(),
        name: String::new(),
        description: None,
        owner: None,
        depends_on: vec![],
        not_before: None,
        variables: vec![],
        rollback: false,
        activities: vec![],
    };
    form.apply(&mut phase);
    def.phases.push(phase);
    if errors.is_empty() {
        errors = new_errors(&editing.definition, &def);
    }
    if errors.is_empty() {
        store(&state, &user, &editing, &def).await?;
        flash::success(&session, format!("Phase {key} added to your working copy."));
        return Ok(redirect(htmx, &format!("/processes/{}", editing.process.id)));
    }
    let mut page = editor_page(&state, &user, &session, editing, false).await?;
    page.phase_form = form;
    page.phase_errors = errors;
    render_form_errors(&page, htmx)
}

#[derive(Template)]
#[template(path = "pages/processes/phase.html")]
pub struct PhasePage {
    pub chrome: Chrome,
    pub id: i64,
    pub process_name: String,
    pub form: PhaseForm,
    pub errors: Vec<String>,
}

pub async fn edit_phase(
    state: web::Data<AppState>,
    user: CurrentUser,
    session: Session,
    path: web::Path<(i64, String)>,
) -> Result<HttpResponse, AppError> {
    let (id, key) = path.into_inner();
    let editing = load_for_edit(&state, &user, id).await?;
    let phase = editing.definition.phase(&key).ok_or(AppError::NotFound)?;
    render(&PhasePage {
        chrome: Chrome::new(&user, &session, format!("Phase {key}"), "/processes"),
        id,
        process_name: editing.definition.name.clone(),
        form: PhaseForm::from_phase(phase),
        errors: vec![],
    })
}

pub async fn update_phase(
    state: web::Data<AppState>,
    user: CurrentUser,
    session: Session,
    htmx: Htmx,
    path: web::Path<(i64, String)>,
    form: web::Form<PhaseForm>,
) -> Result<HttpResponse, AppError> {
    let (id, key) = path.into_inner();
    let editing = load_for_edit(&state, &user, id).await?;
    let mut form = form.into_inner();
    form.key = key.clone();
    let mut def = editing.definition.clone();
    let phase = def.phases.iter_mut().find(|p| p.key == key).ok_or(AppError::NotFound)?;
    form.apply(phase);
    let errors = new_errors(&editing.definition, &def);
    if errors.is_empty() {
        store(&state, &user, &editing, &def).await?;
        flash::success(&session, format!("Phase {key} changed in your working copy."));
        return Ok(redirect(htmx, &format!("/processes/{id}")));
    }
    let page = PhasePage {
        chrome: Chrome::new(&user, &session, format!("Phase {key}"), "/processes"),
        id,
        process_name: editing.definition.name.clone(),
        form,
        errors,
    };
    render_form_errors(&page, htmx)
}

pub async fn delete_phase(
    state: web::Data<AppState>,
    user: CurrentUser,
    session: Session,
    htmx: Htmx,
    path: web::Path<(i64, String)>,
) -> Result<HttpResponse, AppError> {
    let (id, key) = path.into_inner();
    let editing = load_for_edit(&state, &user, id).await?;
    let mut def = editing.definition.clone();
    let dependents: Vec<String> = def.phases.iter().filter(|p| p.depends_on.contains(&key)).map(|p| p.key.clone()).collect();
    if !dependents.is_empty() {
        return Err(AppError::Rule {
            code: "in_use".into(),
            field: None,
            message: format!("Phase {key} cannot be removed: {} depend(s) on it. Remove that dependency first.", dependents.join(", ")),
        });
    }
    let before = def.phases.len();
    def.phases.retain(|p| p.key != key);
    if def.phases.len() == before {
        return Err(AppError::NotFound);
    }
    store(&state, &user, &editing, &def).await?;
    flash::success(&session, format!("Phase {key} removed from your working copy."));
    Ok(redirect(htmx, &format!("/processes/{id}")))
}

/// The activity form as typed; kind-specific fields are used for their kind only.
#[derive(Debug, Default, Deserialize, Clone)]
#[serde(default)]
pub struct ActivityForm {
    pub key: String,
    pub name: String,
    pub kind: String,
    pub description: String,
    pub owner: String,
    pub depends_on: String,
    pub not_critical: Option<String>,
    pub on_failure: String,
    pub timeout: String,
    pub escalate_after: String,
    pub retry_max_attempts: String,
    pub retry_backoff: String,
    pub approvers: String,
    pub threshold: String,
    pub required_approvals: String,
    pub separation_of_duties: Option<String>,
    pub url: String,
    pub method: String,
    pub completion: String,
    pub body: String,
    pub wait_for: String,
    pub until: String,
    pub process: String,
    pub deploys_service: String,
    pub deploys_version: String,
    pub deploys_environment: String,
}

fn enum_text<T: serde::Serialize>(v: &Option<T>) -> String {
    v.as_ref().and_then(|x| serde_json::to_value(x).ok()).and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default()
}

fn parse_enum<T: serde::de::DeserializeOwned>(s: &str, field: &str, errors: &mut Vec<String>) -> Option<T> {
    let s = s.trim();
    if s.is_empty() {
        return None;
    }
    match serde_json::from_value(serde_json::Value::String(s.to_string())) {
        Ok(v) => Some(v),
        Err(_) => {
            errors.push(format!("{field}: {s:?} is not an allowed value"));
            None
        }
    }
}

impl ActivityForm {
    fn from_activity(a: &ActivityDef) -> Self {
        let config = a.config.as_ref();
        let deploys = a.deploys.clone().unwrap_or_default();
        ActivityForm {
            key: a.key.clone(),
            name: a.name.clone(),
            kind: a.kind.as_str().into(),
            description: a.description.clone().unwrap_or_default(),
            owner: a.owner.clone().unwrap_or_default(),
            depends_on: a.depends_on.join(", "),
            not_critical: (!a.is_critical()).then(|| "on".into()),
            on_failure: enum_text(&a.on_failure),
            timeout: a.timeout.clone().unwrap_or_default(),
            escalate_after: a.escalate_after.clone().unwrap_or_default(),
            retry_max_attempts: a.retry.as_ref().map(|r| r.max_attempts.to_string()).unwrap_or_default(),
            retry_backoff: a.retry.as_ref().map(|r| r.backoff.clone()).unwrap_or_default(),
            approvers: a.approvers.join(", "),
            threshold: enum_text(&a.threshold),
            required_approvals: a.required_approvals.map(|n| n.to_string()).unwrap_or_default(),
            separation_of_duties: (a.separation_of_duties == Some(true)).then(|| "on".into()),
            url: config.map(|c| c.url.clone()).unwrap_or_default(),
            method: config.and_then(|c| c.method.clone()).unwrap_or_default(),
            completion: config.map(|c| enum_text(&c.completion)).unwrap_or_default(),
            body: config.and_then(|c| c.body.as_ref()).map(|b| serde_json::to_string_pretty(b).unwrap_or_default()).unwrap_or_default(),
            wait_for: a.wait_for.clone().unwrap_or_default(),
            until: a.until.clone().unwrap_or_default(),
            process: a.process.clone().unwrap_or_default(),
            deploys_service: deploys.service.unwrap_or_default(),
            deploys_version: deploys.version.unwrap_or_default(),
            deploys_environment: deploys.environment.unwrap_or_default(),
        }
    }

    pub fn is_not_critical(&self) -> bool {
        self.not_critical.is_some()
    }

    pub fn is_separated(&self) -> bool {
        self.separation_of_duties.is_some()
    }

    /// Builds the activity over `base` (keeping keys the form does not show, e.g. headers).
    fn build(&self, base: Option<&ActivityDef>, errors: &mut Vec<String>) -> ActivityDef {
        let kind = ActivityKind::parse(self.kind.trim()).unwrap_or_else(|| {
            errors.push(format!("kind {:?} is not manual, approval, webhook, subprocess or wait", self.kind));
            ActivityKind::Manual
        });
        let mut a = base.cloned().unwrap_or_else(|| ActivityDef::new(self.key.trim(), "", kind));
        a.kind = kind;
        a.name = self.name.trim().to_string();
        a.description = opt(&self.description);
        a.owner = opt(&self.owner);
        a.depends_on = list(&self.depends_on);
        a.critical = self.not_critical.is_some().then_some(false).or(base.and(Some(true)));
        a.on_failure = parse_enum::<OnFailure>(&self.on_failure, "on_failure", errors);
        a.timeout = opt(&self.timeout);
        a.escalate_after = opt(&self.escalate_after);
        a.retry = match (self.retry_max_attempts.trim(), self.retry_backoff.trim()) {
            ("", "") => None,
            (n, b) => Some(RetryDef {
                max_attempts: if n.is_empty() {
                    1
                } else {
                    n.parse().unwrap_or_else(|_| {
                        errors.push(format!("retry attempts {n:?} is not a whole number"));
                        1
                    })
                },
                backoff: if b.is_empty() { crate::domain::process::definition::DEFAULT_BACKOFF.into() } else { b.to_string() },
            }),
        };
        let deploys = DeploysDef {
            service: opt(&self.deploys_service),
            version: opt(&self.deploys_version),
            environment: opt(&self.deploys_environment),
        };
        a.deploys = (deploys != DeploysDef::default()).then_some(deploys);
        // Kind-specific keys: set for the chosen kind, cleared for the others.
        a.approvers = Vec::new();
        a.threshold = None;
        a.required_approvals = None;
        a.separation_of_duties = None;
        a.wait_for = None;
        a.until = None;
        let previous_config = a.config.take();
        let previous_process = a.process.take();
        let previous_inputs = std::mem::take(&mut a.inputs);
        match kind {
            ActivityKind::Approval => {
                a.approvers = list(&self.approvers);
                a.threshold = parse_enum::<Threshold>(&self.threshold, "threshold", errors);
                a.required_approvals = match self.required_approvals.trim() {
                    "" => None,
                    n => n.parse().map(Some).unwrap_or_else(|_| {
                        errors.push(format!("required approvals {n:?} is not a whole number"));
                        None
                    }),
                };
                a.separation_of_duties = Some(self.separation_of_duties.is_some());
            }
            ActivityKind::Webhook => {
                let mut config = previous_config.unwrap_or(WebhookConfig {
                    method: None,
                    url: String::new(),
                    headers: Default::default(),
                    body: None,
                    completion: None,
                    timeout: None,
                });
                config.url = self.url.trim().to_string();
                config.method = opt(&self.method.to_uppercase());
                config.completion = parse_enum::<Completion>(&self.completion, "completion", errors);
                config.body = match self.body.trim() {
                    "" => None,
                    text => match serde_json::from_str(text) {
                        Ok(v) => Some(v),
                        Err(e) => {
                            errors.push(format!("body is not valid JSON: {e}"));
                            None
                        }
                    },
                };
                a.config = Some(config);
            }
            ActivityKind::Wait => {
                a.wait_for = opt(&self.wait_for);
                a.until = opt(&self.until);
            }
            ActivityKind::Subprocess => {
                a.process = opt(&self.process).or(previous_process);
                a.inputs = previous_inputs;
            }
            ActivityKind::Manual => {}
        }
        a
    }
}

#[derive(Template)]
#[template(path = "pages/processes/activity.html")]
pub struct ActivityPage {
    pub chrome: Chrome,
    pub id: i64,
    pub process_name: String,
    pub phase_key: String,
    /// `None` when adding a new activity.
    pub editing_key: Option<String>,
    pub form: ActivityForm,
    pub errors: Vec<String>,
    pub kinds: Vec<&'static str>,
}

fn activity_page(
    user: &CurrentUser,
    session: &Session,
    id: i64,
    editing: &Editing,
    phase_key: &str,
    editing_key: Option<String>,
    form: ActivityForm,
    errors: Vec<String>,
) -> ActivityPage {
    ActivityPage {
        chrome: Chrome::new(user, session, format!("Activity in {phase_key}"), "/processes"),
        id,
        process_name: editing.definition.name.clone(),
        phase_key: phase_key.to_string(),
        editing_key,
        form,
        errors,
        kinds: ActivityKind::ALL.iter().map(|k| k.as_str()).collect(),
    }
}

pub async fn new_activity(
    state: web::Data<AppState>,
    user: CurrentUser,
    session: Session,
    path: web::Path<(i64, String)>,
) -> Result<HttpResponse, AppError> {
    let (id, phase_key) = path.into_inner();
    let editing = load_for_edit(&state, &user, id).await?;
    editing.definition.phase(&phase_key).ok_or(AppError::NotFound)?;
    let form = ActivityForm { kind: "manual".into(), ..Default::default() };
    render(&activity_page(&user, &session, id, &editing, &phase_key, None, form, vec![]))
}

pub async fn edit_activity(
    state: web::Data<AppState>,
    user: CurrentUser,
    session: Session,
    path: web::Path<(i64, String, String)>,
) -> Result<HttpResponse, AppError> {
    let (id, phase_key, key) = path.into_inner();
    let editing = load_for_edit(&state, &user, id).await?;
    let phase = editing.definition.phase(&phase_key).ok_or(AppError::NotFound)?;
    let activity = phase.activities.iter().find(|a| a.key == key).ok_or(AppError::NotFound)?;
    let form = ActivityForm::from_activity(activity);
    render(&activity_page(&user, &session, id, &editing, &phase_key, Some(key), form, vec![]))
}

async fn save_activity(
    state: &AppState,
    user: &CurrentUser,
    session: &Session,
    htmx: Htmx,
    id: i64,
    phase_key: String,
    existing: Option<String>,
    form: ActivityForm,
) -> Result<HttpResponse, AppError> {
    let editing = load_for_edit(state, user, id).await?;
    let mut def = editing.definition.clone();
    let phase = def.phases.iter_mut().find(|p| p.key == phase_key).ok_or(AppError::NotFound)?;
    let mut errors = Vec::new();
    let key = existing.clone().unwrap_or_else(|| form.key.trim().to_string());
    let base = match &existing {
        Some(k) => Some(phase.activities.iter().find(|a| &a.key == k).cloned().ok_or(AppError::NotFound)?),
        None => {
            if !crate::domain::process::validate::is_key(&key) {
                errors.push(format!("key {key:?} must be lower-case letters, digits and _"));
            } else if phase.activities.iter().any(|a| a.key == key) {
                errors.push(format!("key {key:?} is already an activity of phase {phase_key}"));
            }
            None
        }
    };
    let mut activity = form.build(base.as_ref(), &mut errors);
    activity.key = key.clone();
    match &existing {
        Some(k) => {
            if let Some(slot) = phase.activities.iter_mut().find(|a| &a.key == k) {
                *slot = activity;
            }
        }
        None => phase.activities.push(activity),
    }
    if errors.is_empty() {
        errors = new_errors(&editing.definition, &def);
    }
    if errors.is_empty() {
        store(state, user, &editing, &def).await?;
        flash::success(session, format!("Activity {phase_key}.{key} saved in your working copy."));
        return Ok(redirect(htmx, &format!("/processes/{id}")));
    }
    let page = activity_page(user, session, id, &editing, &phase_key, existing, form, errors);
    render_form_errors(&page, htmx)
}

pub async fn add_activity(
    state: web::Data<AppState>,
    user: CurrentUser,
    session: Session,
    htmx: Htmx,
    path: web::Path<(i64, String)>,
    form: web::Form<ActivityForm>,
) -> Result<HttpResponse, AppError> {
    let (id, phase_key) = path.into_inner();
    save_activity(&state, &user, &session, htmx, id, phase_key, None, form.into_inner()).await
}

pub async fn update_activity(
    state: web::Data<AppState>,
    user: CurrentUser,
    session: Session,
    htmx: Htmx,
    path: web::Path<(i64, String, String)>,
    form: web::Form<ActivityForm>,
) -> Result<HttpResponse, AppError> {
    let (id, phase_key, key) = path.into_inner();
    save_activity(&state, &user, &session, htmx, id, phase_key, Some(key), form.into_inner()).await
}

pub async fn delete_activity(
    state: web::Data<AppState>,
    user: CurrentUser,
    session: Session,
    htmx: Htmx,
    path: web::Path<(i64, String, String)>,
) -> Result<HttpResponse, AppError> {
    let (id, phase_key, key) = path.into_inner();
    let editing = load_for_edit(&state, &user, id).await?;
    let mut def = editing.definition.clone();
    let phase = def.phases.iter_mut().find(|p| p.key == phase_key).ok_or(AppError::NotFound)?;
    let dependents: Vec<String> = phase.activities.iter().filter(|a| a.depends_on.contains(&key)).map(|a| a.key.clone()).collect();
    if !dependents.is_empty() {
        return Err(AppError::Rule {
            code: "in_use".into(),
            field: None,
            message: format!("Activity {key} cannot be removed: {} depend(s) on it.", dependents.join(", ")),
        });
    }
    let before = phase.activities.len();
    phase.activities.retain(|a| a.key != key);
    if phase.activities.len() == before {
        return Err(AppError::NotFound);
    }
    store(&state, &user, &editing, &def).await?;
    flash::success(&session, format!("Activity {phase_key}.{key} removed from your working copy."));
    Ok(redirect(htmx, &format!("/processes/{id}")))
}

/// "Save": the working copy becomes the next version, if it is valid.
pub async fn save(
    state: web::Data<AppState>,
    user: CurrentUser,
    session: Session,
    htmx: Htmx,
    id: web::Path<i64>,
) -> Result<HttpResponse, AppError> {
    let editing = load_for_edit(&state, &user, *id).await?;
    let mut conn = state.db().await?;
    match ops::save_version(&mut conn, &user.actor(), editing.process.id, editing.definition.clone(), state.now()).await {
        Ok(saved) => {
            flash::success(&session, format!("Saved as version {}.", saved.version));
            for w in &saved.warnings {
                flash::push(&session, "warning", format!("Warning: {w}"));
            }
            Ok(redirect(htmx, &format!("/processes/{}", saved.process.id)))
        }
        Err(e) => {
            let messages = definition_messages(&e).ok_or(e)?;
            let mut page = editor_page(&state, &user, &session, editing, false).await?;
            page.save_errors = messages;
            render_form_errors(&page, htmx)
        }
    }
}

pub async fn discard(
    state: web::Data<AppState>,
    user: CurrentUser,
    session: Session,
    htmx: Htmx,
    id: web::Path<i64>,
) -> Result<HttpResponse, AppError> {
    let editing = load_for_edit(&state, &user, *id).await?;
    let mut conn = state.db().await?;
    WorkingCopy::discard(&mut conn, editing.process.id, user.user_id).await?;
    flash::success(&session, "Working copy discarded.");
    Ok(redirect(htmx, &format!("/processes/{}", editing.process.id)))
}

#[derive(Template)]
#[template(path = "pages/processes/yaml.html")]
pub struct YamlPage {
    pub chrome: Chrome,
    pub id: i64,
    pub process_name: String,
    pub yaml: String,
    pub errors: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct YamlForm {
    pub yaml: String,
}

pub async fn yaml(state: web::Data<AppState>, user: CurrentUser, session: Session, id: web::Path<i64>) -> Result<HttpResponse, AppError> {
    let editing = load_for_edit(&state, &user, *id).await?;
    render(&YamlPage {
        chrome: Chrome::new(&user, &session, "Edit as YAML", "/processes"),
        id: *id,
        process_name: editing.definition.name.clone(),
        yaml: editing.definition.to_yaml(),
        errors: vec![],
    })
}

/// Replaces the working copy with pasted YAML (it must parse; rules are checked on Save).
pub async fn update_yaml(
    state: web::Data<AppState>,
    user: CurrentUser,
    session: Session,
    htmx: Htmx,
    id: web::Path<i64>,
    form: web::Form<YamlForm>,
) -> Result<HttpResponse, AppError> {
    let editing = load_for_edit(&state, &user, *id).await?;
    match parse_yaml(&form.yaml) {
        Ok(def) => {
            store(&state, &user, &editing, &def).await?;
            let problems = validate(&def);
            if problems.is_empty() {
                flash::success(&session, "Working copy replaced. Save to make it the next version.");
            } else {
                flash::push(&session, "warning", format!("Working copy replaced; fix {} problem(s) before saving.", problems.len()));
            }
            Ok(redirect(htmx, &format!("/processes/{}", *id)))
        }
        Err(e) => {
            let page = YamlPage {
                chrome: Chrome::new(&user, &session, "Edit as YAML", "/processes"),
                id: *id,
                process_name: editing.definition.name.clone(),
                yaml: form.into_inner().yaml,
                errors: vec![e.message],
            };
            render_form_errors(&page, htmx)
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ExportQuery {
    pub version: Option<i32>,
}

pub async fn export(
    state: web::Data<AppState>,
    user: CurrentUser,
    id: web::Path<i64>,
    query: web::Query<ExportQuery>,
) -> Result<HttpResponse, AppError> {
    let mut conn = state.db().await?;
    let process = Process::find(&mut conn, user.account_id, *id).await?;
    user.require(Action::ViewProcess, process.scope())?;
    let (version, def) = ops::load(&mut conn, &process, query.version).await?;
    Ok(crate::web::api::processes::yaml_download(&def, process.id, version))
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct DiffQuery {
    pub from: Option<i32>,
    pub to: Option<i32>,
}

#[derive(Template)]
#[template(path = "pages/processes/diff.html")]
pub struct DiffPage {
    pub chrome: Chrome,
    pub id: i64,
    pub process_name: String,
    pub from: i32,
    pub to: i32,
    pub versions: Vec<i32>,
    pub changes: Vec<Change>,
}

pub async fn diff_page(
    state: web::Data<AppState>,
    user: CurrentUser,
    session: Session,
    id: web::Path<i64>,
    query: web::Query<DiffQuery>,
) -> Result<HttpResponse, AppError> {
    let mut conn = state.db().await?;
    let process = Process::find(&mut conn, user.account_id, *id).await?;
    user.require(Action::ViewProcess, process.scope())?;
    let to = query.to.unwrap_or(process.latest_version);
    let from = query.from.unwrap_or((to - 1).max(1));
    let (_, old) = ops::load(&mut conn, &process, Some(from)).await?;
    let (_, new) = ops::load(&mut conn, &process, Some(to)).await?;
    render(&DiffPage {
        chrome: Chrome::new(&user, &session, format!("Changes in {}", new.name), "/processes"),
        id: process.id,
        process_name: new.name.clone(),
        from,
        to,
        versions: (1..=process.latest_version).rev().collect(),
        changes: diff(&old, &new),
    })
}
