//! Log-in (argon2id, throttled) and log-out.

use actix_session::Session;
use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;
use chrono::TimeDelta;
use serde::Deserialize;
use serde_json::json;

use super::{redirect, render, render_form_errors, Chrome};
use crate::db::audit::{self, NewEvent};
use crate::db::models::users::{self as rows, User, THROTTLE_MAX_PER_ADDRESS, THROTTLE_MAX_PER_EMAIL, THROTTLE_WINDOW_MINUTES};
use crate::web::error::AppError;
use crate::web::extractors::{client_addr, Htmx, Principal};
use crate::web::middleware::{PRELOGIN_CSRF_KEY, SESSION_KEY};
use crate::web::AppState;
use actix_web::HttpMessage;
use diesel_async::AsyncConnection;

#[derive(Template)]
#[template(path = "pages/login.html")]
pub struct LoginPage {
    pub chrome: Chrome,
    pub email: String,
    pub next: String,
    pub error: Option<String>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(default)]
pub struct LoginQuery {
    pub next: String,
}

#[derive(Debug, Deserialize, Default)]
#[serde(default)]
pub struct LoginForm {
    pub email: String,
    pub password: String,
    pub next: String,
}

/// Only local paths: never redirect off-site after log-in.
pub fn safe_next(next: &str) -> String {
    if next.starts_with('/') && !next.starts_with("//") && !next.starts_with("/\\") && !next.contains(['\r', '\n']) {
        next.to_string()
    } else {
        "/".to_string()
    }
}

/// The pre-log-in CSRF token lives in the signed session cookie until a session replaces it.
fn prelogin_token(session: &Session) -> Result<String, AppError> {
    if let Ok(Some(t)) = session.get::<String>(PRELOGIN_CSRF_KEY) {
        return Ok(t);
    }
    let token = crate::security::random_token(32);
    session.insert(PRELOGIN_CSRF_KEY, &token).map_err(|e| AppError::Unexpected(anyhow::Error::new(e).context("session")))?;
    Ok(token)
}

pub async fn login_page(req: HttpRequest, session: Session, query: web::Query<LoginQuery>) -> Result<HttpResponse, AppError> {
    let next = safe_next(&query.next);
    if req.extensions().get::<Principal>().is_some() {
        return Ok(HttpResponse::SeeOther().insert_header((header::LOCATION, next)).finish());
    }
    let page = LoginPage { chrome: Chrome::anonymous("Log in", prelogin_token(&session)?), email: String::new(), next, error: None };
    render(&page)
}

pub async fn login(
    req: HttpRequest,
    state: web::Data<AppState>,
    session: Session,
    htmx: Htmx,
    form: web::Form<LoginForm>,
) -> Result<HttpResponse, AppError> {
    let form = form.into_inner();
    let next = safe_next(&form.next);
    let email = form.email.trim().to_string();
    let now = state.now();
    let addr = client_addr(&req);
    let show_error = |message: &str| -> Result<HttpResponse, AppError> {
        let page = LoginPage {
            chrome: Chrome::anonymous("Log in", prelogin_token(&session)?),
            email: email.chars().take(254).collect(),
            next: next.clone(),
            error: Some(message.to_string()),
        };
        render_form_errors(&page, htmx)
    };
    if email.is_empty() || form.password.is_empty() {
        return show_error("Enter your e-mail and password.");
    }
    if email.len() > 254 || form.password.len() > 1024 {
        return show_error("E-mail or password is not correct.");
    }
    let mut conn = state.db().await?;
    let (email_failures, addr_failures, oldest) = rows::recent_failures(&mut conn, &email, &addr, now).await?;
    if email_failures >= THROTTLE_MAX_PER_EMAIL || addr_failures >= THROTTLE_MAX_PER_ADDRESS {
        let retry_after =
            oldest.map_or(THROTTLE_WINDOW_MINUTES * 60, |t| (t + TimeDelta::minutes(THROTTLE_WINDOW_MINUTES) - now).num_seconds().max(1));
        let user = User::by_email(&mut conn, &email).await?;
        match user {
            Some(u) => {
                audit::append(
                    &mut conn,
                    NewEvent::account(u.account_id, format!("client:{addr}"), "login.throttled", format!("user:{}", u.email))
                        .with_details(json!({"retry_after_seconds": retry_after})),
                    now,
                )
                .await?;
            }
            None => tracing::warn!(email = %email, client = %addr, "log-in throttled for an unknown e-mail"),
        }
        return Err(AppError::TooManyRequests { retry_after });
    }
    let user = User::by_email(&mut conn, &email).await?;
    let verified = crate::security::verify_password(form.password.clone(), user.as_ref().map(|u| u.password_hash.clone())).await;
    let user = match user {
        Some(u) if verified && u.disabled_at.is_none() => u,
        other => {
            rows::record_failure(&mut conn, &email, &addr, now).await?;
            match other {
                Some(u) => {
                    let why = if verified { "disabled" } else { "wrong_password" };
                    audit::append(
                        &mut conn,
                        NewEvent::account(u.account_id, format!("client:{addr}"), "login.failed", format!("user:{}", u.email))
                            .with_details(json!({"reason": why})),
                        now,
                    )
                    .await?;
                }
                None => tracing::info!(email = %email, client = %addr, "log-in failed for an unknown e-mail"),
            }
            return show_error("E-mail or password is not correct.");
        }
    };
    let token = conn
        .transaction(async |conn| {
            rows::clear_failures(conn, &email).await?;
            let (token, _csrf) = rows::create_session(conn, &user, now).await?;
            let actor = format!("user:{}", user.email);
            audit::append(conn, NewEvent::account(user.account_id, actor.clone(), "login.success", actor), now).await?;
            Ok::<_, diesel::result::Error>(token)
        })
        .await?;
    session.renew();
    session.remove(PRELOGIN_CSRF_KEY);
    session.insert(SESSION_KEY, token).map_err(|e| AppError::Unexpected(anyhow::Error::new(e).context("session")))?;
    Ok(redirect(htmx, &next))
}

pub async fn logout(req: HttpRequest, state: web::Data<AppState>, session: Session, htmx: Htmx) -> Result<HttpResponse, AppError> {
    let principal = req.extensions().get::<Principal>().cloned();
    if let Some(p) = principal {
        let mut conn = state.db().await?;
        let now = state.now();
        if let Some(token) = &p.session_token {
            rows::revoke_session(&mut conn, token, now).await?;
        }
        audit::append(&mut conn, NewEvent::account(p.account_id, format!("user:{}", p.email), "logout", format!("user:{}", p.email)), now)
            .await?;
    }
    session.purge();
    Ok(redirect(htmx, "/login"))
}
