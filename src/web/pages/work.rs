//! `/work` (everything waiting for me, oldest first) and `/notifications` (in-app list).

use actix_session::Session;
use actix_web::{web, HttpResponse};
use askama::Template;
use chrono::{DateTime, Utc};

use super::{redirect, render, Chrome};
use crate::ops::work;
use crate::web::error::AppError;
use crate::web::extractors::{CurrentUser, Htmx};
use crate::web::AppState;

pub struct WorkItem {
    pub release_id: i64,
    pub release_name: String,
    pub phase: String,
    pub key: String,
    /// The key as one URL path segment (a fan-out instance's brackets encoded).
    pub path_key: String,
    pub name: String,
    pub what: &'static str,
    pub since: String,
    pub allowed: Vec<&'static str>,
    pub needs_reason: Vec<&'static str>,
    /// Its comment thread (author, when, text); filled on `/work` only.
    pub comments: Vec<(String, String, String)>,
}

#[derive(Template)]
#[template(path = "pages/work.html")]
pub struct WorkPage {
    pub chrome: Chrome,
    pub items: Vec<WorkItem>,
}

/// What waits for this person now, with the actions they may take (the same on `/` and `/work`).
pub async fn work_items(state: &AppState, user: &CurrentUser) -> Result<Vec<WorkItem>, AppError> {
    let mut conn = state.db().await?;
    let waiting = work::waiting_for(&mut conn, &user.actor(), &user.email, &user.bindings, state.now()).await?;
    let mut items = Vec::new();
    for work::Waiting { release: r, activity: a, allowed } in waiting {
        let what = if allowed.contains(&"approve") {
            "approval"
        } else if allowed.contains(&"retry") {
            "failure decision"
        } else {
            "manual task"
        };
        items.push(WorkItem {
            release_id: r.id,
            release_name: r.name.clone(),
            phase: a.phase_key.clone(),
            path_key: crate::web::error::percent_encode(&a.key),
            key: a.key.clone(),
            name: a.name.clone(),
            what,
            since: a.started_at.map(|t| fmt(t, &user.time_zone)).unwrap_or_default(),
            needs_reason: allowed.iter().copied().filter(|v| matches!(*v, "fail" | "reject" | "retry" | "ignore" | "fix")).collect(),
            allowed,
            comments: Vec::new(),
        });
    }
    Ok(items)
}

pub async fn work(state: web::Data<AppState>, user: CurrentUser, session: Session) -> Result<HttpResponse, AppError> {
    let mut items = work_items(&state, &user).await?;
    let mut conn = state.db().await?;
    let release_ids: Vec<i64> = items.iter().map(|i| i.release_id).collect();
    let threads = crate::ops::activity_talk::threads(&mut conn, user.account_id, &release_ids).await?;
    for item in &mut items {
        item.comments = threads
            .iter()
            .filter(|(r, p, k, ..)| *r == item.release_id && p == &item.phase && k == &item.key)
            .map(|(_, _, _, author, text, at)| (author.clone(), fmt(*at, &user.time_zone), text.clone()))
            .collect();
    }
    render(&WorkPage { chrome: Chrome::new(&user, &session, "My work", "/work"), items })
}

fn fmt(t: DateTime<Utc>, zone: &str) -> String {
    let tz: chrono_tz::Tz = zone.parse().unwrap_or(chrono_tz::UTC);
    t.with_timezone(&tz).format("%Y-%m-%d %H:%M %Z").to_string()
}

pub struct NotificationRow {
    pub subject: String,
    pub body: String,
    pub link: String,
    pub at: String,
    pub unread: bool,
}

#[derive(Template)]
#[template(path = "pages/notifications.html")]
pub struct NotificationsPage {
    pub chrome: Chrome,
    pub rows: Vec<NotificationRow>,
}

pub async fn notifications_page(state: web::Data<AppState>, user: CurrentUser, session: Session) -> Result<HttpResponse, AppError> {
    let mut conn = state.db().await?;
    let found = work::notifications(&mut conn, user.user_id).await?;
    let rows = found
        .into_iter()
        .map(|(subject, body, link, at, read)| NotificationRow {
            subject,
            body,
            // Sign-off links are e-mailed only; the in-app entry points to My work.
            link: link.map(|l| if l.starts_with("/signoff/") { "/work".to_string() } else { l }).unwrap_or_default(),
            at: fmt(at, &user.time_zone),
            unread: read.is_none(),
        })
        .collect();
    render(&NotificationsPage { chrome: Chrome::new(&user, &session, "Notifications", "/notifications"), rows })
}

pub async fn mark_read(state: web::Data<AppState>, user: CurrentUser, htmx: Htmx) -> Result<HttpResponse, AppError> {
    let mut conn = state.db().await?;
    work::mark_read(&mut conn, user.user_id, state.now()).await?;
    Ok(redirect(htmx, "/notifications"))
}
