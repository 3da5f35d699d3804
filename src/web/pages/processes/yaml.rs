//! The YAML view of the working copy, pasting YAML, and export.

use actix_session::Session;
use actix_web::{web, HttpResponse};
use askama::Template;
use serde::Deserialize;

use crate::db::models::processes::Process;
use crate::domain::policy::Action;
use crate::domain::process::definition::parse_yaml;
use crate::domain::process::validate;
use crate::ops::processes::{self as ops};
use crate::web::error::AppError;
use crate::web::extractors::{CurrentUser, Htmx};
use crate::web::flash;
use crate::web::pages::{redirect, render, render_form_errors, Chrome};
use crate::web::AppState;

use super::*;

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
    Ok(crate::web::download::yaml_download(&def, process.id, version))
}
