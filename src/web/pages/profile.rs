//! `/profile`: name, time zone, password.

use actix_session::Session;
use actix_web::{web, HttpResponse};
use askama::Template;

use super::{redirect, render, render_form_errors, Chrome};
use crate::db::models::users::{self as rows, User};
use crate::domain::validate::FieldErrors;
use crate::ops::users::{self, PasswordChangeInput, ProfileInput};
use crate::web::error::AppError;
use crate::web::extractors::{CurrentUser, Htmx};
use crate::web::flash;
use crate::web::middleware::SESSION_KEY;
use crate::web::AppState;

#[derive(Template)]
#[template(path = "pages/profile.html")]
pub struct ProfilePage {
    pub chrome: Chrome,
    pub email: String,
    pub profile: ProfileInput,
    pub profile_errors: FieldErrors,
    pub password_errors: FieldErrors,
    pub zones: Vec<&'static str>,
}

pub fn zone_names() -> Vec<&'static str> {
    chrono_tz::TZ_VARIANTS.iter().map(|z| z.name()).collect()
}

async fn page(state: &AppState, user: &CurrentUser, session: &Session) -> Result<ProfilePage, AppError> {
    let mut conn = state.db().await?;
    let me = User::find(&mut conn, user.account_id, user.user_id).await?;
    Ok(ProfilePage {
        chrome: Chrome::new(user, session, "Profile", "/profile"),
        email: me.email,
        profile: ProfileInput { name: me.name, time_zone: me.time_zone.unwrap_or_default() },
        profile_errors: FieldErrors::new(),
        password_errors: FieldErrors::new(),
        zones: zone_names(),
    })
}

pub async fn show(state: web::Data<AppState>, user: CurrentUser, session: Session) -> Result<HttpResponse, AppError> {
    render(&page(&state, &user, &session).await?)
}

pub async fn update(
    state: web::Data<AppState>,
    user: CurrentUser,
    session: Session,
    htmx: Htmx,
    form: web::Form<ProfileInput>,
) -> Result<HttpResponse, AppError> {
    let mut conn = state.db().await?;
    match users::update_profile(&mut conn, &user.actor(), &form, state.now()).await {
        Ok(()) => {
            flash::success(&session, "Profile saved.");
            Ok(redirect(htmx, "/profile"))
        }
        Err(e) => {
            let Some(errors) = e.field_errors() else { return Err(e.into()) };
            let mut p = page(&state, &user, &session).await?;
            p.profile = form.into_inner();
            p.profile_errors = errors;
            render_form_errors(&p, htmx)
        }
    }
}

pub async fn change_password(
    state: web::Data<AppState>,
    user: CurrentUser,
    session: Session,
    htmx: Htmx,
    form: web::Form<PasswordChangeInput>,
) -> Result<HttpResponse, AppError> {
    let mut conn = state.db().await?;
    let now = state.now();
    match users::change_password(&mut conn, &user.actor(), &form, now).await {
        Ok(me) => {
            // Every session ended with the change; this browser continues in a fresh one.
            let (token, _) = rows::create_session(&mut conn, &me, now).await?;
            session.renew();
            session.insert(SESSION_KEY, token).map_err(|e| AppError::Unexpected(anyhow::anyhow!("session: {e}")))?;
            flash::success(&session, "Password changed. Your other sessions have been logged out.");
            Ok(redirect(htmx, "/profile"))
        }
        Err(e) => {
            let Some(errors) = e.field_errors() else { return Err(e.into()) };
            let mut p = page(&state, &user, &session).await?;
            p.password_errors = errors;
            render_form_errors(&p, htmx)
        }
    }
}
