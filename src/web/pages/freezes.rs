//! `/admin/freezes`: freeze windows. Account release managers and admins manage the account's;
//! an org release manager manages their org's, which hold only that org's releases.

use actix_session::Session;
use actix_web::{web, HttpResponse};
use askama::Template;

use super::{redirect, render, render_form_errors, Chrome};
use crate::domain::policy::{Action, Scope};
use crate::domain::validate::FieldErrors;
use crate::ops::freezes::{self as ops, FreezeInput};
use crate::web::error::AppError;
use crate::web::extractors::{CurrentUser, Htmx};
use crate::web::flash;
use crate::web::AppState;

pub struct FreezeRow {
    pub id: i64,
    pub reason: String,
    pub environments: String,
    pub when: String,
    /// The org whose releases it holds; empty for the whole account.
    pub org: String,
    pub can_delete: bool,
}

#[derive(Template)]
#[template(path = "pages/admin/freezes.html")]
pub struct FreezesPage {
    pub chrome: Chrome,
    pub freezes: Vec<FreezeRow>,
    /// Where the user may create one: ("" for the account, or an org's slug, label).
    pub scopes: Vec<(String, String)>,
    pub form: FreezeInput,
    pub errors: FieldErrors,
}

async fn page(
    state: &AppState,
    user: &CurrentUser,
    session: &Session,
    form: FreezeInput,
    errors: FieldErrors,
) -> Result<FreezesPage, AppError> {
    let mut conn = state.db().await?;
    let tz: chrono_tz::Tz = user.time_zone.parse().unwrap_or(chrono_tz::UTC);
    let fmt = |t: chrono::DateTime<chrono::Utc>| t.with_timezone(&tz).format("%Y-%m-%d %H:%M %Z").to_string();
    let orgs = crate::db::models::accounts::Organization::list(&mut conn, user.account_id).await?;
    let org_name = |id: Option<i64>| id.and_then(|id| orgs.iter().find(|o| o.id == id)).map(|o| o.name.clone()).unwrap_or_default();
    let freezes = ops::list(&mut conn, user.account_id)
        .await?
        .into_iter()
        .filter(|f| user.may(Action::ViewCalendar, f.scope()))
        .map(|f| {
            let when = match (f.starts_at, f.ends_at, &f.rrule, f.dtstart, f.duration_minutes) {
                (Some(s), Some(e), _, _, _) => format!("{} → {}", fmt(s), fmt(e)),
                (_, _, Some(r), Some(d), Some(m)) => format!("{r} from {} ({}) for {m} min", d.format("%Y-%m-%d %H:%M"), f.time_zone),
                _ => String::new(),
            };
            FreezeRow {
                id: f.id,
                can_delete: user.may(Action::ManageFreeze, f.scope()),
                org: org_name(f.org_id),
                reason: f.reason,
                environments: f.environments.join(", "),
                when,
            }
        })
        .collect();
    let mut scopes = Vec::new();
    if user.may(Action::ManageFreeze, Scope::Account) {
        scopes.push((String::new(), "The whole account".to_string()));
    }
    scopes.extend(orgs.iter().filter(|o| user.may(Action::ManageFreeze, Scope::Org(o.id))).map(|o| (o.slug.clone(), o.name.clone())));
    Ok(FreezesPage { chrome: Chrome::new(user, session, "Freeze windows", "/admin/freezes"), freezes, scopes, form, errors })
}

pub async fn list(state: web::Data<AppState>, user: CurrentUser, session: Session) -> Result<HttpResponse, AppError> {
    if !user.may_somewhere(Action::ManageFreeze) {
        user.require(Action::ManageFreeze, Scope::Account)?;
    }
    let form = FreezeInput { time_zone: user.time_zone.clone(), ..Default::default() };
    render(&page(&state, &user, &session, form, FieldErrors::new()).await?)
}

pub async fn create(
    state: web::Data<AppState>,
    user: CurrentUser,
    session: Session,
    htmx: Htmx,
    form: web::Form<FreezeInput>,
) -> Result<HttpResponse, AppError> {
    let form = form.into_inner();
    let mut conn = state.db().await?;
    user.require(Action::ManageFreeze, ops::scope_of(&mut conn, user.account_id, &form).await?)?;
    match ops::create(&mut conn, &user.actor(), &form, state.now()).await {
        Ok(_) => {
            flash::success(&session, "Freeze window created.");
            Ok(redirect(htmx, "/admin/freezes"))
        }
        Err(e) => {
            let Some(errors) = e.field_errors() else { return Err(e.into()) };
            render_form_errors(&page(&state, &user, &session, form, errors).await?, htmx)
        }
    }
}

pub async fn delete(
    state: web::Data<AppState>,
    user: CurrentUser,
    session: Session,
    htmx: Htmx,
    id: web::Path<i64>,
) -> Result<HttpResponse, AppError> {
    let mut conn = state.db().await?;
    let freeze = ops::find(&mut conn, user.account_id, *id).await?;
    user.require(Action::ManageFreeze, freeze.scope())?;
    ops::delete(&mut conn, &user.actor(), freeze.id, state.now()).await?;
    flash::success(&session, "Freeze window deleted.");
    Ok(redirect(htmx, "/admin/freezes"))
}
