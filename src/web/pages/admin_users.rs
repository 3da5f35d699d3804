//! `/admin/users`: create, disable, reset passwords, grant and remove roles (manage_users).

use actix_session::Session;
use actix_web::{web, HttpResponse};
use askama::Template;
use serde::Deserialize;

use super::{redirect, render, render_form_errors, Chrome};
use crate::db::models::accounts::Organization;
use crate::db::models::users::{bindings_of_account, RoleBindingRow, User};
use crate::domain::policy::{Action, Role, Scope};
use crate::domain::validate::FieldErrors;
use crate::ops::users::{self, NewUserInput};
use crate::web::error::AppError;
use crate::web::extractors::{CurrentUser, Htmx};
use crate::web::flash;
use crate::web::AppState;

pub struct UserRow {
    pub id: i64,
    pub email: String,
    pub name: String,
    pub roles: Vec<String>,
    pub disabled: bool,
}

fn describe(b: &RoleBindingRow) -> String {
    match &b.org_slug {
        Some(org) => format!("{} ({org})", b.role),
        None => b.role.clone(),
    }
}

fn role_names() -> Vec<&'static str> {
    Role::ALL.iter().map(|r| r.as_str()).collect()
}

#[derive(Template)]
#[template(path = "pages/admin/users.html")]
pub struct UsersPage {
    pub chrome: Chrome,
    pub users: Vec<UserRow>,
    pub form: NewUserInput,
    pub errors: FieldErrors,
    pub roles: Vec<&'static str>,
    pub orgs: Vec<Organization>,
}

pub async fn admin_home(user: CurrentUser) -> Result<HttpResponse, AppError> {
    user.require(Action::ManageUsers, Scope::Account)?;
    Ok(HttpResponse::SeeOther().insert_header(("Location", "/admin/users")).finish())
}

async fn users_page(
    state: &AppState,
    user: &CurrentUser,
    session: &Session,
    form: NewUserInput,
    errors: FieldErrors,
) -> Result<UsersPage, AppError> {
    let mut conn = state.db().await?;
    let all = User::list(&mut conn, user.account_id).await?;
    let bindings = bindings_of_account(&mut conn, user.account_id).await?;
    let orgs = Organization::list(&mut conn, user.account_id).await?;
    let users = all
        .into_iter()
        .map(|u| UserRow {
            roles: bindings.iter().filter(|b| b.user_id == u.id).map(describe).collect(),
            id: u.id,
            email: u.email,
            name: u.name,
            disabled: u.disabled_at.is_some(),
        })
        .collect();
    Ok(UsersPage { chrome: Chrome::new(user, session, "Users", "/admin/users"), users, form, errors, roles: role_names(), orgs })
}

pub async fn list(state: web::Data<AppState>, user: CurrentUser, session: Session) -> Result<HttpResponse, AppError> {
    user.require(Action::ManageUsers, Scope::Account)?;
    let form = NewUserInput { role: "viewer".into(), ..Default::default() };
    render(&users_page(&state, &user, &session, form, FieldErrors::new()).await?)
}

pub async fn create(
    state: web::Data<AppState>,
    user: CurrentUser,
    session: Session,
    htmx: Htmx,
    form: web::Form<NewUserInput>,
) -> Result<HttpResponse, AppError> {
    user.require(Action::ManageUsers, Scope::Account)?;
    let mut conn = state.db().await?;
    let input = form.into_inner();
    match users::create_user(&mut conn, &user.actor(), &input, state.now()).await {
        Ok(created) => {
            flash::success(&session, format!("User {} created.", created.email));
            Ok(redirect(htmx, &format!("/admin/users/{}", created.id)))
        }
        Err(e) => {
            let Some(errors) = e.field_errors() else { return Err(e.into()) };
            // Never send a typed password back to the browser.
            let kept = NewUserInput { password: String::new(), ..input };
            render_form_errors(&users_page(&state, &user, &session, kept, errors).await?, htmx)
        }
    }
}

#[derive(Template)]
#[template(path = "pages/admin/user.html")]
pub struct UserPage {
    pub chrome: Chrome,
    pub target: User,
    pub bindings: Vec<(i64, String)>,
    pub role_form: RoleForm,
    pub role_errors: FieldErrors,
    pub password_errors: FieldErrors,
    pub roles: Vec<&'static str>,
    pub orgs: Vec<Organization>,
    pub is_self: bool,
}

#[derive(Debug, Default, Deserialize, Clone)]
#[serde(default)]
pub struct RoleForm {
    pub role: String,
    pub org: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct PasswordForm {
    pub password: String,
}

async fn user_page(state: &AppState, user: &CurrentUser, session: &Session, id: i64) -> Result<UserPage, AppError> {
    let mut conn = state.db().await?;
    let target = User::find(&mut conn, user.account_id, id).await?;
    let bindings =
        bindings_of_account(&mut conn, user.account_id).await?.iter().filter(|b| b.user_id == id).map(|b| (b.id, describe(b))).collect();
    let orgs = Organization::list(&mut conn, user.account_id).await?;
    Ok(UserPage {
        chrome: Chrome::new(user, session, target.email.clone(), "/admin/users"),
        is_self: target.id == user.user_id,
        target,
        bindings,
        role_form: RoleForm::default(),
        role_errors: FieldErrors::new(),
        password_errors: FieldErrors::new(),
        roles: role_names(),
        orgs,
    })
}

pub async fn show(state: web::Data<AppState>, user: CurrentUser, session: Session, id: web::Path<i64>) -> Result<HttpResponse, AppError> {
    user.require(Action::ManageUsers, Scope::Account)?;
    render(&user_page(&state, &user, &session, *id).await?)
}

async fn set_disabled(
    state: &AppState,
    user: &CurrentUser,
    session: &Session,
    htmx: Htmx,
    id: i64,
    disabled: bool,
) -> Result<HttpResponse, AppError> {
    user.require(Action::ManageUsers, Scope::Account)?;
    let mut conn = state.db().await?;
    let target = users::set_disabled(&mut conn, &user.actor(), id, disabled, state.now()).await?;
    let verb = if disabled { "disabled; their sessions and API tokens no longer work" } else { "enabled" };
    flash::success(session, format!("{} {verb}.", target.email));
    Ok(redirect(htmx, &format!("/admin/users/{id}")))
}

pub async fn disable(
    state: web::Data<AppState>,
    user: CurrentUser,
    session: Session,
    htmx: Htmx,
    id: web::Path<i64>,
) -> Result<HttpResponse, AppError> {
    set_disabled(&state, &user, &session, htmx, *id, true).await
}

pub async fn enable(
    state: web::Data<AppState>,
    user: CurrentUser,
    session: Session,
    htmx: Htmx,
    id: web::Path<i64>,
) -> Result<HttpResponse, AppError> {
    set_disabled(&state, &user, &session, htmx, *id, false).await
}

pub async fn reset_password(
    state: web::Data<AppState>,
    user: CurrentUser,
    session: Session,
    htmx: Htmx,
    id: web::Path<i64>,
    form: web::Form<PasswordForm>,
) -> Result<HttpResponse, AppError> {
    user.require(Action::ManageUsers, Scope::Account)?;
    let mut conn = state.db().await?;
    match users::reset_password(&mut conn, &user.actor(), *id, &form.password, state.now()).await {
        Ok(()) => {
            flash::success(&session, "Password reset; the user's sessions have been logged out.");
            Ok(redirect(htmx, &format!("/admin/users/{}", *id)))
        }
        Err(e) => {
            let Some(errors) = e.field_errors() else { return Err(e.into()) };
            let mut page = user_page(&state, &user, &session, *id).await?;
            page.password_errors = errors;
            render_form_errors(&page, htmx)
        }
    }
}

pub async fn add_role(
    state: web::Data<AppState>,
    user: CurrentUser,
    session: Session,
    htmx: Htmx,
    id: web::Path<i64>,
    form: web::Form<RoleForm>,
) -> Result<HttpResponse, AppError> {
    user.require(Action::ManageUsers, Scope::Account)?;
    let mut conn = state.db().await?;
    match users::add_role(&mut conn, &user.actor(), *id, &form.role, &form.org, state.now()).await {
        Ok(()) => {
            flash::success(&session, format!("Role {} granted.", form.role));
            Ok(redirect(htmx, &format!("/admin/users/{}", *id)))
        }
        Err(e) => {
            let Some(errors) = e.field_errors() else { return Err(e.into()) };
            let mut page = user_page(&state, &user, &session, *id).await?;
            page.role_form = form.into_inner();
            page.role_errors = errors;
            render_form_errors(&page, htmx)
        }
    }
}

pub async fn remove_role(
    state: web::Data<AppState>,
    user: CurrentUser,
    session: Session,
    htmx: Htmx,
    path: web::Path<(i64, i64)>,
) -> Result<HttpResponse, AppError> {
    user.require(Action::ManageUsers, Scope::Account)?;
    let (id, binding) = path.into_inner();
    let mut conn = state.db().await?;
    User::find(&mut conn, user.account_id, id).await?;
    users::remove_role(&mut conn, &user.actor(), binding, state.now()).await?;
    flash::success(&session, "Role removed.");
    Ok(redirect(htmx, &format!("/admin/users/{id}")))
}
