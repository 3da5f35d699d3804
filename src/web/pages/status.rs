//! Shared status links (`/status/{token}`): read-only, revocable, no log-in, no secrets.

use actix_session::Session;
use actix_web::{web, HttpResponse};
use askama::Template;
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use super::{redirect, render};
use crate::db::models::releases::{self as rows, Release};
use crate::db::schema::{audit_events, releases, status_links};
use crate::domain::policy::Action;
use crate::security::{random_token, sha256_hex};
use crate::web::error::AppError;
use crate::web::extractors::{CurrentUser, Htmx};
use crate::web::flash;
use crate::web::AppState;

pub async fn create(
    state: web::Data<AppState>,
    user: CurrentUser,
    session: Session,
    htmx: Htmx,
    id: web::Path<i64>,
) -> Result<HttpResponse, AppError> {
    let mut conn = state.db().await?;
    let release = Release::find(&mut conn, user.account_id, *id).await?;
    user.require(Action::Activate, release.scope())?;
    let token = random_token(24);
    diesel::insert_into(status_links::table)
        .values((
            status_links::token_hash.eq(sha256_hex(&token)),
            status_links::account_id.eq(release.account_id),
            status_links::release_id.eq(release.id),
            status_links::created_by.eq(user.user_id),
            status_links::created_at.eq(state.now()),
        ))
        .execute(&mut conn)
        .await?;
    crate::db::audit::append(
        &mut conn,
        crate::db::audit::NewEvent::release(&release, format!("user:{}", user.email), "release.status_link_create"),
        state.now(),
    )
    .await?;
    flash::success(&session, format!("Shared status link (read-only, no secrets): {}/status/{token}", state.settings.base_url));
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
    let n = diesel::update(status_links::table.filter(status_links::release_id.eq(release.id)).filter(status_links::revoked_at.is_null()))
        .set(status_links::revoked_at.eq(state.now()))
        .execute(&mut conn)
        .await?;
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
    let release_id: Option<i64> = status_links::table
        .filter(status_links::token_hash.eq(sha256_hex(&token)))
        .filter(status_links::revoked_at.is_null())
        .select(status_links::release_id)
        .first(&mut conn)
        .await
        .optional()?;
    let release_id = release_id.ok_or(AppError::NotFound)?;
    let r: Release = releases::table.find(release_id).select(Release::as_select()).first(&mut conn).await?;
    let (phases, activities) = rows::tree(&mut conn, r.id).await?;
    let events: Vec<(DateTime<Utc>, String, String)> = audit_events::table
        .filter(audit_events::release_id.eq(r.id))
        .order(audit_events::seq)
        .limit(500)
        .select((audit_events::at, audit_events::action, audit_events::subject))
        .load(&mut conn)
        .await?;
    let tz: chrono_tz::Tz = r.time_zone.parse().unwrap_or(chrono_tz::UTC);
    let fmt = |t: DateTime<Utc>| t.with_timezone(&tz).format("%Y-%m-%d %H:%M %Z").to_string();
    render(&StatusPage {
        name: r.name.clone(),
        status: r.status.clone(),
        window: match (r.schedule_start, r.schedule_end) {
            (Some(s), Some(e)) => format!("{} → {}", fmt(s), fmt(e)),
            _ => String::new(),
        },
        phases: phases
            .iter()
            .map(|p| Row {
                name: p.name.clone(),
                status: p.status.clone(),
                activities: activities.iter().filter(|a| a.phase_key == p.key).map(|a| (a.name.clone(), a.status.clone())).collect(),
            })
            .collect(),
        // The timeline names what happened and when, never the details (which may hold inputs).
        timeline: events.into_iter().map(|(at, action, subject)| (fmt(at), format!("{action} {subject}"))).collect(),
    })
}
