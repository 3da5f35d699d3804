//! Adding, editing and removing phases in the working copy.

use actix_session::Session;
use actix_web::{web, HttpResponse};
use askama::Template;
use serde::Deserialize;

use crate::domain::process::PhaseDef;
use crate::web::error::AppError;
use crate::web::extractors::{CurrentUser, Htmx};
use crate::web::flash;
use crate::web::pages::{redirect, render, render_form_errors, Chrome};
use crate::web::AppState;

use super::*;
use crate::domain::process::edit::{new_errors, remove_phase};

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
        phase.depends_on = comma_list(&self.depends_on);
        phase.not_before = opt(&self.not_before);
        phase.rollback = self.rollback.is_some();
    }
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
    remove_phase(&mut def, &key).map_err(removal_refused)?;
    store(&state, &user, &editing, &def).await?;
    flash::success(&session, format!("Phase {key} removed from your working copy."));
    Ok(redirect(htmx, &format!("/processes/{id}")))
}
