//! Shared status links (`/status/{token}`): read-only, revocable, no log-in, no secrets.

use actix_session::Session;
use actix_web::{web, HttpResponse};
use askama::Template;
use chrono::{DateTime, Utc};

use super::{redirect, render};
use crate::db::models::releases::Release;
use crate::domain::policy::Action;
use crate::ops::status_links;
use crate::web::error::AppError;
use crate::web::extractors::{CurrentUser, Htmx};
use crate::web::flash;
use crate::web::AppState;

#[derive(Debug, Default, serde::Deserialize)]
#[serde(default)]
pub struct CreateForm {
    /// Days the link works (empty: the default, 30).
    pub expires_in_days: String,
}

pub async fn create(
    state: web::Data<AppState>,
    user: CurrentUser,
    session: Session,
    htmx: Htmx,
    id: web::Path<i64>,
    form: web::Form<CreateForm>,
) -> Result<HttpResponse, AppError> {
    let lifetime = status_links::lifetime(&form.expires_in_days)?;
    let mut conn = state.db().await?;
    let release = Release::find(&mut conn, user.account_id, *id).await?;
    user.require(Action::Activate, release.scope())?;
    let token = status_links::create(&mut conn, &user.actor(), &release, lifetime, state.now()).await?;
    flash::success(
        &session,
        format!(
            "Shared status link (read-only, no secrets, works for {} days): {}/status/{token}",
            lifetime.num_days(),
            state.settings.base_url
        ),
    );
    Ok(redirect(htmx, &format!("/releases/{}", release.id)))
}

pub async fn revoke(
    state: web::Data<AppState>,
    user: CurrentUser,
    session: Session,
    htmx: Htmx,
    id: web::Path<i64>,
) -> Result<HttpResponse, AppError> {
    let mut conn = state.db().await?;
    let release = Release::find(&mut conn, user.account_id, *id).await?;
    user.require(Action::Activate, release.scope())?;
    let n = status_links::revoke(&mut conn, &user.actor(), &release, state.now()).await?;
    flash::success(&session, format!("{n} shared status link(s) revoked."));
    Ok(redirect(htmx, &format!("/releases/{}", release.id)))
}

pub struct Row {
    pub name: String,
    pub status: String,
    pub activities: Vec<(String, String)>,
}

#[derive(Template)]
#[template(path = "pages/status.html")]
pub struct StatusPage {
    pub name: String,
    pub status: String,
    pub window: String,
    pub phases: Vec<Row>,
    pub timeline: Vec<(String, String)>,
}

pub async fn show(state: web::Data<AppState>, token: web::Path<String>) -> Result<HttpResponse, AppError> {
    let mut conn = state.db().await?;
    let status_links::SharedStatus { release: r, phases, activities, timeline: events } =
        status_links::shared(&mut conn, &token, state.now()).await?;
    let tz: chrono_tz::Tz = r.time_zone.parse().unwrap_or(chrono_tz::UTC);
    let fmt = |t: DateTime<Utc>| t.with_timezone(&tz).format("%Y-%m-%d %H:%M %Z").to_string();
    render(&StatusPage {
        name: r.name.clone(),
        status: r.status.as_str().to_owned(),
        window: match (r.schedule_start, r.schedule_end) {
            (Some(s), Some(e)) => format!("{} → {}", fmt(s), fmt(e)),
            _ => String::new(),
        },
        phases: phases
            .iter()
            .map(|p| Row {
                name: p.name.clone(),
                status: p.status.as_str().to_owned(),
                activities: activities
                    .iter()
                    .filter(|a| a.phase_key == p.key)
                    .map(|a| (a.name.clone(), a.status.as_str().to_owned()))
                    .collect(),
            })
            .collect(),
        // The timeline names what happened and when, never the details (which may hold inputs).
        timeline: events.into_iter().map(|(at, action, subject)| (fmt(at), format!("{action} {subject}"))).collect(),
    })
}
