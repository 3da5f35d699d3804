//! `/profile`: name, time zone, password, delegations and e-mail mutes.

use actix_session::Session;
use actix_web::{web, HttpResponse};
use askama::Template;

use super::{redirect, render, render_form_errors, Chrome};
use crate::db::models::users::{self as rows, User};
use crate::domain::validate::FieldErrors;
use crate::ops::profile::{self, DelegationInput, MUTABLE_KINDS};
use crate::ops::tokens::{self, TokenInput};
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
    pub delegations: Vec<(i64, String, String, String)>,
    pub delegation_error: Option<String>,
    pub mutes: Vec<(&'static str, bool)>,
    pub tokens: Vec<TokenLine>,
    pub token_input: TokenInput,
    pub token_errors: FieldErrors,
    /// A token just created: its plain text, shown this once.
    pub new_token: Option<String>,
}

/// One API token as the profile lists it.
pub struct TokenLine {
    pub id: i64,
    pub name: String,
    pub created: String,
    pub expires: String,
    pub state: &'static str,
    pub active: bool,
}

pub fn zone_names() -> Vec<&'static str> {
    chrono_tz::TZ_VARIANTS.iter().map(|z| z.name()).collect()
}

async fn page(state: &AppState, user: &CurrentUser, session: &Session) -> Result<ProfilePage, AppError> {
    let mut conn = state.db().await?;
    let me = User::find(&mut conn, user.account_id, user.user_id).await?;
    let tz: chrono_tz::Tz = user.time_zone.parse().unwrap_or(chrono_tz::UTC);
    let fmt = |t: chrono::DateTime<chrono::Utc>| t.with_timezone(&tz).format("%Y-%m-%d %H:%M %Z").to_string();
    let (delegations, muted) = profile::delegations_and_mutes(&mut conn, user.user_id).await?;
    let now = state.now();
    let tokens = tokens::list_own(&mut conn, &user.actor())
        .await?
        .into_iter()
        .map(|t| TokenLine {
            id: t.id,
            created: fmt(t.created_at),
            expires: t.expires_at.map(fmt).unwrap_or_else(|| "never".into()),
            state: t.state(now),
            active: t.is_active(now),
            name: t.name,
        })
        .collect();
    Ok(ProfilePage {
        tokens,
        token_input: TokenInput::default(),
        token_errors: FieldErrors::new(),
        new_token: None,
        delegations: delegations.into_iter().map(|d| (d.id, d.delegate_email, fmt(d.starts_at), fmt(d.ends_at))).collect(),
        delegation_error: None,
        mutes: MUTABLE_KINDS.iter().map(|k| (*k, muted.iter().any(|m| m == k))).collect(),
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
            session.insert(SESSION_KEY, token).map_err(|e| AppError::Unexpected(anyhow::Error::new(e).context("session")))?;
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

/// Names a delegate for a period; their vote counts as this user's one vote.
pub async fn add_delegation(
    state: web::Data<AppState>,
    user: CurrentUser,
    session: Session,
    htmx: Htmx,
    form: web::Form<DelegationInput>,
) -> Result<HttpResponse, AppError> {
    let tz: chrono_tz::Tz = user.time_zone.parse().unwrap_or(chrono_tz::UTC);
    let mut conn = state.db().await?;
    match profile::add_delegation(&mut conn, &user.actor(), &form, tz, state.now()).await {
        Ok(delegate) => {
            flash::success(&session, format!("{} votes for you from {} to {}.", delegate.email, form.starts_at, form.ends_at));
            Ok(redirect(htmx, "/profile"))
        }
        Err(e) => {
            let Some(errors) = e.field_errors() else { return Err(e.into()) };
            let mut p = page(&state, &user, &session).await?;
            p.delegation_error = errors.0.values().next().cloned();
            render_form_errors(&p, htmx)
        }
    }
}

pub async fn remove_delegation(
    state: web::Data<AppState>,
    user: CurrentUser,
    session: Session,
    htmx: Htmx,
    id: web::Path<i64>,
) -> Result<HttpResponse, AppError> {
    let mut conn = state.db().await?;
    profile::remove_delegation(&mut conn, &user.actor(), *id, state.now()).await?;
    flash::success(&session, "Delegation removed.");
    Ok(redirect(htmx, "/profile"))
}

pub async fn set_mutes(
    state: web::Data<AppState>,
    user: CurrentUser,
    session: Session,
    htmx: Htmx,
    form: web::Form<Vec<(String, String)>>,
) -> Result<HttpResponse, AppError> {
    let chosen: Vec<String> = form.iter().filter(|(k, _)| k == "mute").map(|(_, v)| v.clone()).collect();
    let mut conn = state.db().await?;
    profile::set_mutes(&mut conn, &user.actor(), &chosen, state.now()).await?;
    flash::success(&session, "E-mail preferences saved.");
    Ok(redirect(htmx, "/profile"))
}

/// Creates an API token and shows its plain text once, on the page itself (never in a redirect,
/// a flash message or a log).
pub async fn create_token(
    state: web::Data<AppState>,
    user: CurrentUser,
    session: Session,
    htmx: Htmx,
    form: web::Form<TokenInput>,
) -> Result<HttpResponse, AppError> {
    let mut conn = state.db().await?;
    match tokens::create_own(&mut conn, &user.actor(), &user.time_zone, &form, state.now()).await {
        Ok(made) => {
            let mut p = page(&state, &user, &session).await?;
            p.new_token = Some(made.token);
            render(&p)
        }
        Err(e) => {
            let Some(errors) = e.field_errors() else { return Err(e.into()) };
            let mut p = page(&state, &user, &session).await?;
            p.token_input = form.into_inner();
            p.token_errors = errors;
            render_form_errors(&p, htmx)
        }
    }
}

pub async fn revoke_token(
    state: web::Data<AppState>,
    user: CurrentUser,
    session: Session,
    htmx: Htmx,
    id: web::Path<i64>,
) -> Result<HttpResponse, AppError> {
    let mut conn = state.db().await?;
    tokens::revoke_own(&mut conn, &user.actor(), *id, state.now()).await?;
    flash::success(&session, "API token revoked: it no longer works.");
    Ok(redirect(htmx, "/profile"))
}
