//! The activity form (kind-specific fields), and adding, editing and removing activities.

use actix_session::Session;
use actix_web::{web, HttpResponse};
use askama::Template;
use serde::Deserialize;

use crate::domain::process::definition::{
    ActivityDef, ActivityKind, Completion, DeploysDef, OnFailure, RetryDef, Threshold, WebhookConfig,
};
use crate::web::error::AppError;
use crate::web::extractors::{CurrentUser, Htmx};
use crate::web::flash;
use crate::web::pages::{redirect, render, render_form_errors, Chrome};
use crate::web::AppState;

use super::*;
use crate::domain::process::edit::{new_errors, remove_activity};

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

pub(super) fn enum_text<T: serde::Serialize>(v: &Option<T>) -> String {
    v.as_ref().and_then(|x| serde_json::to_value(x).ok()).and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default()
}

pub(super) fn parse_enum<T: serde::de::DeserializeOwned>(s: &str, field: &str, errors: &mut Vec<String>) -> Option<T> {
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
        a.depends_on = comma_list(&self.depends_on);
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
                a.approvers = comma_list(&self.approvers);
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

/// Where the activity form saves: process `id`, phase `phase_key`, a new activity (`key: None`)
/// or an existing one.
pub(super) struct Slot {
    pub id: i64,
    pub phase_key: String,
    pub key: Option<String>,
}

pub(super) fn activity_page(
    (user, session): (&CurrentUser, &Session),
    editing: &Editing,
    slot: Slot,
    form: ActivityForm,
    errors: Vec<String>,
) -> ActivityPage {
    ActivityPage {
        chrome: Chrome::new(user, session, format!("Activity in {}", slot.phase_key), "/processes"),
        id: slot.id,
        process_name: editing.definition.name.clone(),
        phase_key: slot.phase_key,
        editing_key: slot.key,
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
    render(&activity_page((&user, &session), &editing, Slot { id, phase_key, key: None }, form, vec![]))
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
    render(&activity_page((&user, &session), &editing, Slot { id, phase_key, key: Some(key) }, form, vec![]))
}

pub(super) async fn save_activity(
    state: &AppState,
    (user, session): (&CurrentUser, &Session),
    htmx: Htmx,
    slot: Slot,
    form: ActivityForm,
) -> Result<HttpResponse, AppError> {
    let Slot { id, phase_key, key: existing } = slot;
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
    let page = activity_page((user, session), &editing, Slot { id, phase_key, key: existing }, form, errors);
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
    save_activity(&state, (&user, &session), htmx, Slot { id, phase_key, key: None }, form.into_inner()).await
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
    save_activity(&state, (&user, &session), htmx, Slot { id, phase_key, key: Some(key) }, form.into_inner()).await
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
    remove_activity(&mut def, &phase_key, &key).map_err(removal_refused)?;
    store(&state, &user, &editing, &def).await?;
    flash::success(&session, format!("Activity {phase_key}.{key} removed from your working copy."));
    Ok(redirect(htmx, &format!("/processes/{id}")))
}
