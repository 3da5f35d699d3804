//! Server-rendered pages: the layout frame (`Chrome`) and response helpers.

pub mod admin_catalog;
pub mod admin_groups;
pub mod admin_settings;
pub mod admin_users;
pub mod audit;
pub mod auth;
pub mod calendar;
pub mod dashboard;
pub mod feed;
pub mod freezes;
pub mod input_sets;
pub mod insights;
pub mod locks;
pub mod processes;
pub mod profile;
pub mod release_groups;
pub mod releases;
pub mod reports;
pub mod signoff;
pub mod status;
pub mod work;

use actix_session::Session;
use actix_web::http::{header, StatusCode};
use actix_web::{HttpMessage, HttpRequest, HttpResponse};
use askama::Template;

use super::error::AppError;
use super::extractors::{Htmx, Principal};
use super::flash::{self, Flash};
use crate::domain::policy::{Action, Scope};

#[derive(Debug, Clone)]
pub struct NavLink {
    pub href: &'static str,
    pub label: &'static str,
    pub active: bool,
}

/// What the layout needs: title, user, CSRF token for htmx, navigation, flash messages.
#[derive(Debug, Clone)]
pub struct Chrome {
    pub title: String,
    pub user_name: Option<String>,
    pub csrf_token: String,
    pub hx_headers: String,
    pub nav: Vec<NavLink>,
    pub admin_nav: Vec<NavLink>,
    pub flashes: Vec<Flash>,
    pub unread: i64,
}

impl Chrome {
    pub fn new(user: &Principal, session: &Session, title: impl Into<String>, current: &str) -> Self {
        let csrf = user.csrf_token.clone().unwrap_or_default();
        let link = |href: &'static str, label: &'static str| NavLink { href, label, active: current == href };
        let mut nav = vec![link("/", "Dashboard")];
        if user.may(Action::ViewCalendar, Scope::Account) {
            nav.push(link("/calendar", "Calendar"));
        }
        if user.may(Action::ViewRelease, Scope::Account) {
            nav.push(link("/releases", "Releases"));
        }
        if user.may(Action::ViewProcess, Scope::Account) {
            nav.push(link("/processes", "Processes"));
        }
        if user.may(Action::ViewRelease, Scope::Account) {
            nav.push(link("/release-groups", "Release groups"));
            nav.push(link("/reports/deployed", "Reports"));
            nav.push(link("/insights", "Insights"));
        }
        if !crate::domain::policy::Visibility::of(&user.bindings, Action::ViewAudit).nothing() {
            nav.push(link("/audit", "Audit"));
        }
        nav.push(link("/work", "My work"));
        nav.push(link("/profile", "Profile"));
        let mut admin_nav = Vec::new();
        if user.may(Action::ManageUsers, Scope::Account) {
            admin_nav.push(link("/admin/users", "Users"));
        }
        if user.may(Action::ManageCatalog, Scope::Account) {
            admin_nav.push(link("/admin/groups", "Groups"));
            admin_nav.push(link("/admin/orgs", "Organizations"));
            admin_nav.push(link("/admin/environments", "Environments"));
            admin_nav.push(link("/admin/services", "Services"));
        }
        if user.may_somewhere(Action::ManageFreeze) {
            admin_nav.push(link("/admin/freezes", "Freezes"));
        }
        if user.may(Action::ManageSettings, Scope::Account) {
            admin_nav.push(link("/admin/settings", "Settings"));
        }
        Self {
            title: title.into(),
            user_name: Some(user.name.clone()),
            hx_headers: hx_headers(&csrf),
            csrf_token: csrf,
            nav,
            admin_nav,
            flashes: flash::take(session),
            unread: user.unread,
        }
    }

    pub fn anonymous(title: impl Into<String>, csrf_token: String) -> Self {
        Self {
            title: title.into(),
            user_name: None,
            hx_headers: hx_headers(&csrf_token),
            csrf_token,
            nav: Vec::new(),
            admin_nav: Vec::new(),
            flashes: Vec::new(),
            unread: 0,
        }
    }
}

/// A time as the user reads it, in their time zone; empty for none.
pub fn local(t: Option<chrono::DateTime<chrono::Utc>>, zone: &str) -> String {
    let tz: chrono_tz::Tz = zone.parse().unwrap_or(chrono_tz::UTC);
    t.map(|t| t.with_timezone(&tz).format("%Y-%m-%d %H:%M %Z").to_string()).unwrap_or_default()
}

/// How long ago, in the largest whole unit: "just now", "5 minutes ago", "3 days ago".
pub fn ago(t: chrono::DateTime<chrono::Utc>, now: chrono::DateTime<chrono::Utc>) -> String {
    let d = now - t;
    let (n, unit) = if d.num_days() >= 2 {
        (d.num_days(), "days")
    } else if d.num_hours() >= 2 {
        (d.num_hours(), "hours")
    } else if d.num_minutes() >= 2 {
        (d.num_minutes(), "minutes")
    } else {
        return if d.num_seconds() < 0 { "in the future".into() } else { "just now".into() };
    };
    format!("{n} {unit} ago")
}

/// The user's query string again (for CSV links and paging), without empty values.
pub fn query_string(pairs: &[(&str, &Option<String>)]) -> String {
    let kept: Vec<(&str, &str)> =
        pairs.iter().filter_map(|(k, v)| v.as_deref().map(str::trim).filter(|v| !v.is_empty()).map(|v| (*k, v))).collect();
    serde_urlencoded::to_string(kept).unwrap_or_default()
}

fn hx_headers(csrf: &str) -> String {
    serde_json::json!({ super::middleware::CSRF_HEADER: csrf }).to_string()
}

fn html(status: StatusCode, body: String) -> HttpResponse {
    HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .insert_header((header::VARY, "HX-Request"))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(body)
}

pub fn render<T: Template>(page: &T) -> Result<HttpResponse, AppError> {
    render_status(page, StatusCode::OK)
}

pub fn render_status<T: Template>(page: &T, status: StatusCode) -> Result<HttpResponse, AppError> {
    let body = page.render().map_err(|e| AppError::Unexpected(anyhow::Error::new(e).context("rendering a template")))?;
    Ok(html(status, body))
}

/// A form with errors: htmx swaps only 2xx, so it gets 200; a plain browser POST gets 422.
pub fn render_form_errors<T: Template>(page: &T, htmx: Htmx) -> Result<HttpResponse, AppError> {
    render_status(page, if htmx.0 { StatusCode::OK } else { StatusCode::UNPROCESSABLE_ENTITY })
}

/// After a successful POST: 303 for browsers, `HX-Redirect` for htmx (a 303 would nest a page).
pub fn redirect(htmx: Htmx, to: &str) -> HttpResponse {
    if htmx.0 {
        HttpResponse::Ok().insert_header(("HX-Redirect", to.to_string())).finish()
    } else {
        HttpResponse::SeeOther().insert_header((header::LOCATION, to.to_string())).finish()
    }
}

pub async fn not_found(req: HttpRequest) -> Result<HttpResponse, AppError> {
    // A known path asked with another method: 405 naming the methods it answers.
    let allowed = crate::web::allowed_methods(req.path());
    if !allowed.is_empty() {
        let allow = allowed.join(", ");
        let mut res = if req.path().starts_with("/api/") {
            AppError::MethodNotAllowed { allow: allow.clone() }.json_response()
        } else {
            actix_web::ResponseError::error_response(&AppError::MethodNotAllowed { allow: allow.clone() })
        };
        if let Ok(v) = header::HeaderValue::from_str(&allow) {
            res.headers_mut().insert(header::ALLOW, v);
        }
        return Ok(res);
    }
    // Unknown API paths answer in JSON like the rest of the API.
    if req.path().starts_with("/api/") {
        return Ok(AppError::NotFound.json_response());
    }
    let _ = req.extensions();
    Err(AppError::NotFound)
}
