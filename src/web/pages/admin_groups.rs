//! `/admin/groups`: teams used as owners and approvers (`group:<name>`).

use actix_session::Session;
use actix_web::{web, HttpResponse};
use askama::Template;
use serde::Deserialize;

use super::{redirect, render, render_form_errors, Chrome};
use crate::db::models::catalog::{Group, GroupWithMembers};
use crate::domain::policy::{Action, Scope};
use crate::domain::validate::FieldErrors;
use crate::ops::catalog as ops;
use crate::web::error::AppError;
use crate::web::extractors::{CurrentUser, Htmx};
use crate::web::flash;
use crate::web::AppState;

#[derive(Debug, Default, Deserialize, Clone)]
#[serde(default)]
pub struct GroupForm {
    pub name: String,
    /// E-mails, separated by commas, spaces or new lines.
    pub members: String,
}

impl GroupForm {
    fn member_list(&self) -> Vec<String> {
        self.members.split([',', '\n', '\r', ' ', ';']).map(str::trim).filter(|s| !s.is_empty()).map(str::to_string).collect()
    }
}

#[derive(Template)]
#[template(path = "pages/admin/groups.html")]
pub struct GroupsPage {
    pub chrome: Chrome,
    pub groups: Vec<GroupWithMembers>,
    pub form: GroupForm,
    pub errors: FieldErrors,
}

async fn groups_page(
    state: &AppState,
    user: &CurrentUser,
    session: &Session,
    form: GroupForm,
    errors: FieldErrors,
) -> Result<GroupsPage, AppError> {
    let mut conn = state.db().await?;
    let groups = Group::list_with_members(&mut conn, user.account_id).await?;
    Ok(GroupsPage { chrome: Chrome::new(user, session, "Groups", "/admin/groups"), groups, form, errors })
}

pub async fn list(state: web::Data<AppState>, user: CurrentUser, session: Session) -> Result<HttpResponse, AppError> {
    user.require(Action::ManageCatalog, Scope::Account)?;
    render(&groups_page(&state, &user, &session, GroupForm::default(), FieldErrors::new()).await?)
}

pub async fn create(
    state: web::Data<AppState>,
    user: CurrentUser,
    session: Session,
    htmx: Htmx,
    form: web::Form<GroupForm>,
) -> Result<HttpResponse, AppError> {
    user.require(Action::ManageCatalog, Scope::Account)?;
    let mut conn = state.db().await?;
    match ops::create_group(&mut conn, &user.actor(), &form.name, &form.member_list(), state.now()).await {
        Ok(group) => {
            flash::success(&session, format!("Group {} created.", group.name));
            Ok(redirect(htmx, &format!("/admin/groups/{}", group.id)))
        }
        Err(e) => {
            let Some(errors) = e.field_errors() else { return Err(e.into()) };
            render_form_errors(&groups_page(&state, &user, &session, form.into_inner(), errors).await?, htmx)
        }
    }
}

#[derive(Template)]
#[template(path = "pages/admin/group.html")]
pub struct GroupPage {
    pub chrome: Chrome,
    pub group: Group,
    pub members: Vec<(i64, String, String)>,
    pub email: String,
    pub errors: FieldErrors,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct MemberForm {
    pub email: String,
}

async fn group_page(state: &AppState, user: &CurrentUser, session: &Session, id: i64) -> Result<GroupPage, AppError> {
    let mut conn = state.db().await?;
    let group = Group::find(&mut conn, user.account_id, id).await?;
    let members = Group::members(&mut conn, group.id).await?;
    Ok(GroupPage {
        chrome: Chrome::new(user, session, format!("Group {}", group.name), "/admin/groups"),
        group,
        members,
        email: String::new(),
        errors: FieldErrors::new(),
    })
}

pub async fn show(state: web::Data<AppState>, user: CurrentUser, session: Session, id: web::Path<i64>) -> Result<HttpResponse, AppError> {
    user.require(Action::ManageCatalog, Scope::Account)?;
    render(&group_page(&state, &user, &session, *id).await?)
}

pub async fn add_member(
    state: web::Data<AppState>,
    user: CurrentUser,
    session: Session,
    htmx: Htmx,
    id: web::Path<i64>,
    form: web::Form<MemberForm>,
) -> Result<HttpResponse, AppError> {
    user.require(Action::ManageCatalog, Scope::Account)?;
    let mut conn = state.db().await?;
    match ops::add_group_member(&mut conn, &user.actor(), *id, &form.email, state.now()).await {
        Ok(()) => {
            flash::success(&session, format!("{} added.", form.email.trim()));
            Ok(redirect(htmx, &format!("/admin/groups/{}", *id)))
        }
        Err(e) => {
            let Some(errors) = e.field_errors() else { return Err(e.into()) };
            let mut page = group_page(&state, &user, &session, *id).await?;
            page.email = form.into_inner().email;
            page.errors = errors;
            render_form_errors(&page, htmx)
        }
    }
}

pub async fn remove_member(
    state: web::Data<AppState>,
    user: CurrentUser,
    session: Session,
    htmx: Htmx,
    path: web::Path<(i64, i64)>,
) -> Result<HttpResponse, AppError> {
    user.require(Action::ManageCatalog, Scope::Account)?;
    let (id, member) = path.into_inner();
    let mut conn = state.db().await?;
    ops::remove_group_member(&mut conn, &user.actor(), id, member, state.now()).await?;
    flash::success(&session, "Member removed.");
    Ok(redirect(htmx, &format!("/admin/groups/{id}")))
}

pub async fn delete(
    state: web::Data<AppState>,
    user: CurrentUser,
    session: Session,
    htmx: Htmx,
    id: web::Path<i64>,
) -> Result<HttpResponse, AppError> {
    user.require(Action::ManageCatalog, Scope::Account)?;
    let mut conn = state.db().await?;
    ops::delete_group(&mut conn, &user.actor(), *id, state.now()).await?;
    flash::success(&session, "Group deleted.");
    Ok(redirect(htmx, "/admin/groups"))
}
