//! `/admin/freezes`: freeze windows (account release managers and admins).

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

#[derive(Template)]
#[template(path = "pages/admin/freezes.html")]
pub struct FreezesPage {
    pub chrome: Chrome,
    pub freezes: Vec<(i64, String, String, String)>,
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
    let freezes = ops::list(&mut conn, user.account_id)
        .await?
        .into_iter()
        .map(|f| {
            let when = match (f.starts_at, f.ends_at, &f.rrule, f.dtstart, f.duration_minutes) {
                (Some(s), Some(e), _, _, _) => format!("{} → {}", fmt(s), fmt(e)),
                (_, _, Some(r), Some(d), Some(m)) => format!("{r} from {} ({}) for {m} min", d.format("%Y-%m-%d %H:%M"), f.time_zone),
                _ => String::new(),
            };
            (f.id, f.reason, f.environments.join(", "), when)
        })
        .collect();
    Ok(FreezesPage { chrome: Chrome::new(user, session, "Freeze windows", "/admin/freezes"), freezes, form, errors })
}

pub async fn list(state: web::Data<AppState>, user: CurrentUser, session: Session) -> Result<HttpResponse, AppError> {
    user.require(Action::ManageFreeze, Scope::Account)?;
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
    user.require(Action::ManageFreeze, Scope::Account)?;
    let form = form.into_inner();
    let mut conn = state.db().await?;
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
    user.require(Action::ManageFreeze, Scope::Account)?;
    let mut conn = state.db().await?;
    ops::delete(&mut conn, &user.actor(), *id, state.now()).await?;
    flash::success(&session, "Freeze window deleted.");
    Ok(redirect(htmx, "/admin/freezes"))
}
