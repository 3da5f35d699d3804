//! Log-in (argon2id, throttled) and log-out.

use actix_session::Session;
use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;
use serde::Deserialize;

use super::{redirect, render, render_form_errors, Chrome};
use crate::ops::sessions::{self, LogIn};
use crate::web::error::AppError;
use crate::web::extractors::{client_addr, Htmx, Principal};
use crate::web::middleware::{PRELOGIN_CSRF_KEY, SESSION_KEY};
use crate::web::AppState;
use actix_web::HttpMessage;

#[derive(Template)]
#[template(path = "pages/login.html")]
pub struct LoginPage {
    pub chrome: Chrome,
    pub email: String,
    pub next: String,
    pub error: Option<String>,
    /// Single sign-on: (button label, whether the provider answers now).
    pub sso: Option<(String, bool)>,
}

async fn sso_offer(state: &AppState) -> Option<(String, bool)> {
    match state.sso.as_ref() {
        Some(sso) => Some((sso.settings.label.clone(), sso.available().await)),
        None => None,
    }
}

/// The log-in page again with a message (a refused or failed single sign-on).
pub async fn login_page_with(state: &AppState, session: &Session, next: &str, message: &str) -> Result<HttpResponse, AppError> {
    let page = LoginPage {
        chrome: Chrome::anonymous("Log in", prelogin_token(session)?),
        email: String::new(),
        next: safe_next(next),
        error: Some(message.to_string()),
        sso: sso_offer(state).await,
    };
    super::render_status(&page, actix_web::http::StatusCode::FORBIDDEN)
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

/// Only same-origin relative paths: never redirect off-site after log-in. Browsers drop tabs
/// and newlines and read `\` as `/`, so `/\t/evil.example` would become `//evil.example`:
/// any control character or backslash makes the target `/`.
pub fn safe_next(next: &str) -> String {
    let local = next.starts_with('/') && !next.starts_with("//") && !next.chars().any(|c| c.is_control() || c == '\\');
    if local {
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

pub async fn login_page(
    req: HttpRequest,
    state: web::Data<AppState>,
    session: Session,
    query: web::Query<LoginQuery>,
) -> Result<HttpResponse, AppError> {
    let next = safe_next(&query.next);
    if req.extensions().get::<Principal>().is_some() {
        return Ok(HttpResponse::SeeOther().insert_header((header::LOCATION, next)).finish());
    }
    let page = LoginPage {
        chrome: Chrome::anonymous("Log in", prelogin_token(&session)?),
        email: String::new(),
        next,
        error: None,
        sso: sso_offer(&state).await,
    };
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
    let addr = client_addr(&req, &state.trusted_proxies);
    let sso = sso_offer(&state).await;
    let show_error = |message: &str| -> Result<HttpResponse, AppError> {
        let page = LoginPage {
            chrome: Chrome::anonymous("Log in", prelogin_token(&session)?),
            email: email.chars().take(254).collect(),
            next: next.clone(),
            error: Some(message.to_string()),
            sso: sso.clone(),
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
    let sso_account = state.sso.as_ref().map(|s| s.settings.account.as_str());
    let token = match sessions::log_in(&mut conn, (&email, &form.password), &addr, sso_account, now).await? {
        LogIn::Session { token } => token,
        // One answer for every refusal (wrong password, SSO required, unknown): it says nothing
        // about who exists or whether the password was right.
        LogIn::Refused if sso.is_some() => {
            return show_error(
                "E-mail or password is not correct. If your organization signs in through single sign-on, use the button below.",
            )
        }
        LogIn::Refused => return show_error("E-mail or password is not correct."),
        LogIn::Throttled { retry_after_seconds } => return Err(AppError::TooManyRequests { retry_after: retry_after_seconds }),
    };
    session.renew();
    session.remove(PRELOGIN_CSRF_KEY);
    session.insert(SESSION_KEY, token).map_err(|e| AppError::Unexpected(anyhow::Error::new(e).context("session")))?;
    Ok(redirect(htmx, &next))
}

pub async fn logout(req: HttpRequest, state: web::Data<AppState>, session: Session, htmx: Htmx) -> Result<HttpResponse, AppError> {
    let principal = req.extensions().get::<Principal>().cloned();
    if let Some(p) = principal {
        let mut conn = state.db().await?;
        sessions::log_out(&mut conn, (p.account_id, &p.email), p.session_token.as_deref(), state.now()).await?;
    }
    session.purge();
    Ok(redirect(htmx, "/login"))
}

#[cfg(test)]
mod tests {
    use super::safe_next;

    #[test]
    fn only_same_origin_paths_survive() {
        for ok in ["/", "/releases/4?tab=audit", "/calendar?view=month&date=2026-12-01"] {
            assert_eq!(safe_next(ok), ok);
        }
        for bad in [
            "/\t/evil.example",
            "/\n/evil.example",
            "//evil.example",
            "/\\evil.example",
            "https://evil.example",
            "evil",
            "/\u{0}x",
            "/a\\b",
        ] {
            assert_eq!(safe_next(bad), "/", "{bad:?}");
        }
    }
}
