//! `/admin/orgs`, `/admin/environments`, `/admin/services` (manage_catalog).

use actix_session::Session;
use actix_web::{web, HttpResponse};
use askama::Template;
use serde::Deserialize;

use super::{redirect, render, render_form_errors, Chrome};
use crate::db::models::accounts::Organization;
use crate::db::models::catalog::{Environment, Service};
use crate::domain::policy::{Action, Scope};
use crate::domain::validate::FieldErrors;
use crate::ops::catalog::{self as ops, EnvironmentInput};
use crate::web::error::AppError;
use crate::web::extractors::{CurrentUser, Htmx};
use crate::web::flash;
use crate::web::AppState;

#[derive(Debug, Default, Deserialize, Clone)]
#[serde(default)]
pub struct OrgForm {
    pub slug: String,
    pub name: String,
}

#[derive(Template)]
#[template(path = "pages/admin/orgs.html")]
pub struct OrgsPage {
    pub chrome: Chrome,
    pub orgs: Vec<Organization>,
    pub form: OrgForm,
    pub errors: FieldErrors,
}

async fn orgs_page(
    state: &AppState,
    user: &CurrentUser,
    session: &Session,
    form: OrgForm,
    errors: FieldErrors,
) -> Result<OrgsPage, AppError> {
    let mut conn = state.db().await?;
    let orgs = Organization::list(&mut conn, user.account_id).await?;
    Ok(OrgsPage { chrome: Chrome::new(user, session, "Organizations", "/admin/orgs"), orgs, form, errors })
}

pub async fn orgs(state: web::Data<AppState>, user: CurrentUser, session: Session) -> Result<HttpResponse, AppError> {
    user.require(Action::ManageCatalog, Scope::Account)?;
    render(&orgs_page(&state, &user, &session, OrgForm::default(), FieldErrors::new()).await?)
}

pub async fn create_org(
    state: web::Data<AppState>,
    user: CurrentUser,
    session: Session,
    htmx: Htmx,
    form: web::Form<OrgForm>,
) -> Result<HttpResponse, AppError> {
    user.require(Action::ManageCatalog, Scope::Account)?;
    let mut conn = state.db().await?;
    match ops::create_org(&mut conn, &user.actor(), &form.slug, &form.name, state.now()).await {
        Ok(org) => {
            flash::success(&session, format!("Organization {} created.", org.slug));
            Ok(redirect(htmx, "/admin/orgs"))
        }
        Err(e) => {
            let Some(errors) = e.field_errors() else { return Err(e.into()) };
            render_form_errors(&orgs_page(&state, &user, &session, form.into_inner(), errors).await?, htmx)
        }
    }
}

/// One named catalog item (organization or service): rename and delete.
#[derive(Template)]
#[template(path = "pages/admin/item.html")]
pub struct ItemPage {
    pub chrome: Chrome,
    pub kind: &'static str,
    pub base: &'static str,
    pub id: i64,
    pub label: String,
    pub name: String,
    pub errors: FieldErrors,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct NameForm {
    pub name: String,
}

pub async fn org(state: web::Data<AppState>, user: CurrentUser, session: Session, id: web::Path<i64>) -> Result<HttpResponse, AppError> {
    user.require(Action::ManageCatalog, Scope::Account)?;
    let mut conn = state.db().await?;
    let org = Organization::find(&mut conn, user.account_id, *id).await?;
    render(&ItemPage {
        chrome: Chrome::new(&user, &session, format!("Organization {}", org.slug), "/admin/orgs"),
        kind: "organization",
        base: "/admin/orgs",
        id: org.id,
        label: org.slug,
        name: org.name,
        errors: FieldErrors::new(),
    })
}

pub async fn rename_org(
    state: web::Data<AppState>,
    user: CurrentUser,
    session: Session,
    htmx: Htmx,
    id: web::Path<i64>,
    form: web::Form<NameForm>,
) -> Result<HttpResponse, AppError> {
    user.require(Action::ManageCatalog, Scope::Account)?;
    let mut conn = state.db().await?;
    let org = Organization::find(&mut conn, user.account_id, *id).await?;
    match ops::rename_org(&mut conn, &user.actor(), org.id, &form.name, state.now()).await {
        Ok(_) => {
            flash::success(&session, "Organization saved.");
            Ok(redirect(htmx, &format!("/admin/orgs/{}", org.id)))
        }
        Err(e) => {
            let Some(errors) = e.field_errors() else { return Err(e.into()) };
            let page = ItemPage {
                chrome: Chrome::new(&user, &session, format!("Organization {}", org.slug), "/admin/orgs"),
                kind: "organization",
                base: "/admin/orgs",
                id: org.id,
                label: org.slug,
                name: form.into_inner().name,
                errors,
            };
            render_form_errors(&page, htmx)
        }
    }
}

pub async fn delete_org(
    state: web::Data<AppState>,
    user: CurrentUser,
    session: Session,
    htmx: Htmx,
    id: web::Path<i64>,
) -> Result<HttpResponse, AppError> {
    user.require(Action::ManageCatalog, Scope::Account)?;
    let mut conn = state.db().await?;
    ops::delete_org(&mut conn, &user.actor(), *id, state.now()).await?;
    flash::success(&session, "Organization deleted.");
    Ok(redirect(htmx, "/admin/orgs"))
}

/// The environment form as typed (checkbox → "on").
#[derive(Debug, Default, Deserialize, Clone)]
#[serde(default)]
pub struct EnvironmentForm {
    pub name: String,
    pub production: Option<String>,
    pub deploy_lock: String,
}

impl EnvironmentForm {
    fn input(&self) -> EnvironmentInput {
        EnvironmentInput {
            name: Some(self.name.clone()),
            production: Some(self.production.is_some()),
            position: None,
            deploy_lock: Some(self.deploy_lock.clone()),
        }
    }
    pub fn is_production(&self) -> bool {
        self.production.is_some()
    }
}

#[derive(Template)]
#[template(path = "pages/admin/environments.html")]
pub struct EnvironmentsPage {
    pub chrome: Chrome,
    pub environments: Vec<Environment>,
    pub form: EnvironmentForm,
    pub errors: FieldErrors,
}

async fn environments_page(
    state: &AppState,
    user: &CurrentUser,
    session: &Session,
    form: EnvironmentForm,
    errors: FieldErrors,
) -> Result<EnvironmentsPage, AppError> {
    let mut conn = state.db().await?;
    let environments = Environment::list(&mut conn, user.account_id).await?;
    Ok(EnvironmentsPage { chrome: Chrome::new(user, session, "Environments", "/admin/environments"), environments, form, errors })
}

pub async fn environments(state: web::Data<AppState>, user: CurrentUser, session: Session) -> Result<HttpResponse, AppError> {
    user.require(Action::ManageCatalog, Scope::Account)?;
    render(&environments_page(&state, &user, &session, EnvironmentForm::default(), FieldErrors::new()).await?)
}

pub async fn create_environment(
    state: web::Data<AppState>,
    user: CurrentUser,
    session: Session,
    htmx: Htmx,
    form: web::Form<EnvironmentForm>,
) -> Result<HttpResponse, AppError> {
    user.require(Action::ManageCatalog, Scope::Account)?;
    let mut conn = state.db().await?;
    match ops::create_environment(&mut conn, &user.actor(), &form.input(), state.now()).await {
        Ok(env) => {
            flash::success(&session, format!("Environment {} created.", env.name));
            Ok(redirect(htmx, "/admin/environments"))
        }
        Err(e) => {
            let Some(errors) = e.field_errors() else { return Err(e.into()) };
            render_form_errors(&environments_page(&state, &user, &session, form.into_inner(), errors).await?, htmx)
        }
    }
}

#[derive(Template)]
#[template(path = "pages/admin/environment.html")]
pub struct EnvironmentPage {
    pub chrome: Chrome,
    pub environment: Environment,
    pub form: EnvironmentForm,
    pub errors: FieldErrors,
}

pub async fn environment(
    state: web::Data<AppState>,
    user: CurrentUser,
    session: Session,
    id: web::Path<i64>,
) -> Result<HttpResponse, AppError> {
    user.require(Action::ManageCatalog, Scope::Account)?;
    let mut conn = state.db().await?;
    let environment = Environment::find(&mut conn, user.account_id, *id).await?;
    let form = EnvironmentForm {
        name: environment.name.clone(),
        production: environment.production.then(|| "on".to_string()),
        deploy_lock: environment.deploy_lock.as_str().to_string(),
    };
    render(&EnvironmentPage {
        chrome: Chrome::new(&user, &session, format!("Environment {}", environment.name), "/admin/environments"),
        environment,
        form,
        errors: FieldErrors::new(),
    })
}

pub async fn update_environment(
    state: web::Data<AppState>,
    user: CurrentUser,
    session: Session,
    htmx: Htmx,
    id: web::Path<i64>,
    form: web::Form<EnvironmentForm>,
) -> Result<HttpResponse, AppError> {
    user.require(Action::ManageCatalog, Scope::Account)?;
    let mut conn = state.db().await?;
    let environment = Environment::find(&mut conn, user.account_id, *id).await?;
    match ops::update_environment(&mut conn, &user.actor(), environment.id, &form.input(), state.now()).await {
        Ok(env) => {
            flash::success(&session, format!("Environment {} saved.", env.name));
            Ok(redirect(htmx, "/admin/environments"))
        }
        Err(e) => {
            let Some(errors) = e.field_errors() else { return Err(e.into()) };
            let page = EnvironmentPage {
                chrome: Chrome::new(&user, &session, format!("Environment {}", environment.name), "/admin/environments"),
                environment,
                form: form.into_inner(),
                errors,
            };
            render_form_errors(&page, htmx)
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct MoveForm {
    pub direction: String,
}

pub async fn move_environment(
    state: web::Data<AppState>,
    user: CurrentUser,
    htmx: Htmx,
    id: web::Path<i64>,
    form: web::Form<MoveForm>,
) -> Result<HttpResponse, AppError> {
    user.require(Action::ManageCatalog, Scope::Account)?;
    let up = match form.direction.as_str() {
        "up" => true,
        "down" => false,
        other => return Err(AppError::bad_request("direction", format!("{other:?} is not up or down"))),
    };
    let mut conn = state.db().await?;
    ops::move_environment(&mut conn, &user.actor(), *id, up, state.now()).await?;
    Ok(redirect(htmx, "/admin/environments"))
}

pub async fn delete_environment(
    state: web::Data<AppState>,
    user: CurrentUser,
    session: Session,
    htmx: Htmx,
    id: web::Path<i64>,
) -> Result<HttpResponse, AppError> {
    user.require(Action::ManageCatalog, Scope::Account)?;
    let mut conn = state.db().await?;
    ops::delete_environment(&mut conn, &user.actor(), *id, state.now()).await?;
    flash::success(&session, "Environment deleted.");
    Ok(redirect(htmx, "/admin/environments"))
}

#[derive(Template)]
#[template(path = "pages/admin/services.html")]
pub struct ServicesPage {
    pub chrome: Chrome,
    pub services: Vec<Service>,
    pub name: String,
    pub errors: FieldErrors,
}

async fn services_page(
    state: &AppState,
    user: &CurrentUser,
    session: &Session,
    name: String,
    errors: FieldErrors,
) -> Result<ServicesPage, AppError> {
    let mut conn = state.db().await?;
    let services = Service::list(&mut conn, user.account_id).await?;
    Ok(ServicesPage { chrome: Chrome::new(user, session, "Services", "/admin/services"), services, name, errors })
}

pub async fn services(state: web::Data<AppState>, user: CurrentUser, session: Session) -> Result<HttpResponse, AppError> {
    user.require(Action::ManageCatalog, Scope::Account)?;
    render(&services_page(&state, &user, &session, String::new(), FieldErrors::new()).await?)
}

pub async fn create_service(
    state: web::Data<AppState>,
    user: CurrentUser,
    session: Session,
    htmx: Htmx,
    form: web::Form<NameForm>,
) -> Result<HttpResponse, AppError> {
    user.require(Action::ManageCatalog, Scope::Account)?;
    let mut conn = state.db().await?;
    match ops::create_service(&mut conn, &user.actor(), &form.name, state.now()).await {
        Ok(service) => {
            flash::success(&session, format!("Service {} created.", service.name));
            Ok(redirect(htmx, "/admin/services"))
        }
        Err(e) => {
            let Some(errors) = e.field_errors() else { return Err(e.into()) };
            render_form_errors(&services_page(&state, &user, &session, form.into_inner().name, errors).await?, htmx)
        }
    }
}

pub async fn service(
    state: web::Data<AppState>,
    user: CurrentUser,
    session: Session,
    id: web::Path<i64>,
) -> Result<HttpResponse, AppError> {
    user.require(Action::ManageCatalog, Scope::Account)?;
    let mut conn = state.db().await?;
    let service = Service::find(&mut conn, user.account_id, *id).await?;
    render(&ItemPage {
        chrome: Chrome::new(&user, &session, format!("Service {}", service.name), "/admin/services"),
        kind: "service",
        base: "/admin/services",
        id: service.id,
        label: service.name.clone(),
        name: service.name,
        errors: FieldErrors::new(),
    })
}

pub async fn rename_service(
    state: web::Data<AppState>,
    user: CurrentUser,
    session: Session,
    htmx: Htmx,
    id: web::Path<i64>,
    form: web::Form<NameForm>,
) -> Result<HttpResponse, AppError> {
    user.require(Action::ManageCatalog, Scope::Account)?;
    let mut conn = state.db().await?;
    let service = Service::find(&mut conn, user.account_id, *id).await?;
    match ops::rename_service(&mut conn, &user.actor(), service.id, &form.name, state.now()).await {
        Ok(_) => {
            flash::success(&session, "Service saved.");
            Ok(redirect(htmx, "/admin/services"))
        }
        Err(e) => {
            let Some(errors) = e.field_errors() else { return Err(e.into()) };
            let page = ItemPage {
                chrome: Chrome::new(&user, &session, format!("Service {}", service.name), "/admin/services"),
                kind: "service",
                base: "/admin/services",
                id: service.id,
                label: service.name,
                name: form.into_inner().name,
                errors,
            };
            render_form_errors(&page, htmx)
        }
    }
}

pub async fn delete_service(
    state: web::Data<AppState>,
    user: CurrentUser,
    session: Session,
    htmx: Htmx,
    id: web::Path<i64>,
) -> Result<HttpResponse, AppError> {
    user.require(Action::ManageCatalog, Scope::Account)?;
    let mut conn = state.db().await?;
    ops::delete_service(&mut conn, &user.actor(), *id, state.now()).await?;
    flash::success(&session, "Service deleted.");
    Ok(redirect(htmx, "/admin/services"))
}
