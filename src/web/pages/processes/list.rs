//! `/processes`: the list by scope, new process, YAML import (paste or upload).

use actix_session::Session;
use actix_web::{web, HttpResponse};
use askama::Template;
use serde::Deserialize;

use crate::db::models::accounts::Organization;
use crate::db::models::processes::{Process, ProcessSummary};
use crate::domain::policy::{Action, Scope};
use crate::domain::validate::FieldErrors;
use crate::ops::processes::{self as ops, Source};
use crate::ops::OpError;
use crate::web::error::AppError;
use crate::web::extractors::{CurrentUser, Htmx};
use crate::web::flash;
use crate::web::pages::{redirect, render, render_form_errors, Chrome};
use crate::web::AppState;

pub struct ScopeGroup {
    pub label: String,
    pub processes: Vec<ProcessSummary>,
}

#[derive(Debug, Default, Deserialize, Clone)]
#[serde(default)]
pub struct NewProcessForm {
    pub name: String,
    pub org: String,
}

#[derive(Debug, Default, Deserialize, Clone)]
#[serde(default)]
pub struct ImportForm {
    pub org: String,
    pub yaml: String,
}

#[derive(Template)]
#[template(path = "pages/processes/list.html")]
pub struct ProcessesPage {
    pub chrome: Chrome,
    pub groups: Vec<ScopeGroup>,
    /// Scopes the user may create processes in: (org slug or "", label).
    pub creatable: Vec<(String, String)>,
    pub new_form: NewProcessForm,
    pub new_errors: FieldErrors,
    pub import_form: ImportForm,
    pub import_errors: Vec<String>,
}

async fn page(state: &AppState, user: &CurrentUser, session: &Session) -> Result<ProcessesPage, AppError> {
    let mut conn = state.db().await?;
    let all = Process::list(&mut conn, user.account_id).await?;
    let orgs = Organization::list(&mut conn, user.account_id).await?;
    let mut groups = vec![ScopeGroup { label: "Account-level processes".into(), processes: Vec::new() }];
    for o in &orgs {
        groups.push(ScopeGroup { label: format!("Organization {} ({})", o.name, o.slug), processes: Vec::new() });
    }
    for s in all.into_iter().filter(|s| user.may(Action::ViewProcess, s.process.scope())) {
        let index = match s.process.org_id {
            None => 0,
            Some(id) => orgs.iter().position(|o| o.id == id).map_or(0, |i| i + 1),
        };
        groups[index].processes.push(s);
    }
    let mut creatable = Vec::new();
    if user.may(Action::ManageProcess, Scope::Account) {
        creatable.push((String::new(), "Account level".to_string()));
    }
    for o in &orgs {
        if user.may(Action::ManageProcess, Scope::Org(o.id)) {
            creatable.push((o.slug.clone(), format!("Organization {}", o.name)));
        }
    }
    Ok(ProcessesPage {
        chrome: Chrome::new(user, session, "Processes", "/processes"),
        groups: groups.into_iter().filter(|g| !g.processes.is_empty()).collect(),
        creatable,
        new_form: NewProcessForm::default(),
        new_errors: FieldErrors::new(),
        import_form: ImportForm::default(),
        import_errors: Vec::new(),
    })
}

pub async fn list(state: web::Data<AppState>, user: CurrentUser, session: Session) -> Result<HttpResponse, AppError> {
    user.require(Action::ViewProcess, Scope::Account)?;
    render(&page(&state, &user, &session).await?)
}

/// The org of a form (slug or empty) and the permission to manage processes there.
async fn org_scope(state: &AppState, user: &CurrentUser, org: &str) -> Result<Option<i64>, AppError> {
    let org_id = match org.trim() {
        "" => None,
        slug => {
            let mut conn = state.db().await?;
            Some(
                Organization::by_slug(&mut conn, user.account_id, slug)
                    .await
                    .map_err(|_| AppError::bad_request("org", format!("there is no organization {slug:?}")))?
                    .id,
            )
        }
    };
    user.require(Action::ManageProcess, org_id.map_or(Scope::Account, Scope::Org))?;
    Ok(org_id)
}

pub async fn create(
    state: web::Data<AppState>,
    user: CurrentUser,
    session: Session,
    htmx: Htmx,
    form: web::Form<NewProcessForm>,
) -> Result<HttpResponse, AppError> {
    let form = form.into_inner();
    let org_id = org_scope(&state, &user, &form.org).await?;
    let mut conn = state.db().await?;
    match ops::create_empty(&mut conn, &user.actor(), org_id, &form.name, state.now()).await {
        Ok(process) => {
            flash::success(&session, format!("Process {} created: add its phases and activities, then save.", process.name));
            Ok(redirect(htmx, &format!("/processes/{}", process.id)))
        }
        Err(e) => {
            let Some(errors) = e.field_errors() else { return Err(e.into()) };
            let mut p = page(&state, &user, &session).await?;
            p.new_form = form;
            p.new_errors = errors;
            render_form_errors(&p, htmx)
        }
    }
}

pub async fn import(
    state: web::Data<AppState>,
    user: CurrentUser,
    session: Session,
    htmx: Htmx,
    form: web::Form<ImportForm>,
) -> Result<HttpResponse, AppError> {
    let form = form.into_inner();
    let org_id = org_scope(&state, &user, &form.org).await?;
    let mut conn = state.db().await?;
    match ops::create(&mut conn, &user.actor(), org_id, Source::Yaml(form.yaml.clone()), state.now()).await {
        Ok(saved) => {
            flash::success(&session, format!("Process {} imported as version 1.", saved.process.name));
            for w in &saved.warnings {
                flash::push(&session, "warning", format!("Warning: {w}"));
            }
            Ok(redirect(htmx, &format!("/processes/{}", saved.process.id)))
        }
        Err(e) => {
            let messages = definition_messages(&e).ok_or(e)?;
            let mut p = page(&state, &user, &session).await?;
            p.import_form = form;
            p.import_errors = messages;
            render_form_errors(&p, htmx)
        }
    }
}

/// The messages of an error about a definition's content, or `None` for other errors.
pub fn definition_messages(e: &OpError) -> Option<Vec<String>> {
    match e {
        OpError::Parse { message, .. } => Some(vec![message.clone()]),
        OpError::Definition(errors) => Some(errors.iter().map(|e| e.to_string()).collect()),
        OpError::Duplicate { message, .. } => Some(vec![message.clone()]),
        OpError::Invalid(errors) => Some(errors.0.iter().map(|(f, m)| format!("{f} {m}")).collect()),
        _ => None,
    }
}
