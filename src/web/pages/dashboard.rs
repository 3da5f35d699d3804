//! `/`: what waits for me, what runs now, what failed lately, what comes next, and freezes.

use actix_session::Session;
use actix_web::{web, HttpResponse};
use askama::Template;

use super::{ago, local, render, Chrome};
use crate::domain::policy::{Action, Scope};
use crate::ops::dashboard::overview;
use crate::web::error::AppError;
use crate::web::extractors::CurrentUser;
use crate::web::pages::work::{work_items, WorkItem};
use crate::web::AppState;

pub struct RunningRow {
    pub id: i64,
    pub name: String,
    pub status: String,
    pub done: usize,
    pub total: usize,
    pub current: String,
    pub since: String,
}

pub struct FailureRow {
    pub id: i64,
    pub name: String,
    pub status: String,
    pub reason: String,
    pub when: String,
}

pub struct UpcomingRow {
    pub id: i64,
    pub name: String,
    pub status: String,
    pub window: String,
    pub environments: String,
    pub conflicts: usize,
}

pub struct FreezeRow {
    pub reason: String,
    pub environments: String,
    pub window: String,
    pub now: bool,
}

#[derive(Template)]
#[template(path = "pages/dashboard.html")]
pub struct DashboardPage {
    pub chrome: Chrome,
    pub name: String,
    pub account: String,
    pub roles: Vec<String>,
    pub time_zone: String,
    pub can_view_calendar: bool,
    pub items: Vec<WorkItem>,
    pub running: Vec<RunningRow>,
    pub failures: Vec<FailureRow>,
    pub upcoming: Vec<UpcomingRow>,
    pub freezes: Vec<FreezeRow>,
}

pub async fn dashboard(state: web::Data<AppState>, user: CurrentUser, session: Session) -> Result<HttpResponse, AppError> {
    let items = work_items(&state, &user).await?;
    let now = state.now();
    let actor = user.actor();
    let found = {
        let mut conn = state.db().await?;
        overview(&mut conn, user.requester(&actor), now).await?
    };
    let zone = &user.time_zone;
    let roles = user
        .roles
        .iter()
        .map(|r| match &r.org_slug {
            Some(org) => format!("{} ({org})", r.role),
            None => r.role.clone(),
        })
        .collect();
    let page = DashboardPage {
        chrome: Chrome::new(&user, &session, "Dashboard", "/"),
        name: user.name.clone(),
        account: user.account_slug.clone(),
        roles,
        time_zone: user.time_zone.clone(),
        can_view_calendar: user.may(Action::ViewCalendar, Scope::Account),
        items,
        running: found
            .in_flight
            .into_iter()
            .map(|f| RunningRow {
                since: f.release.started_at.map(|t| ago(t, now)).unwrap_or_default(),
                id: f.release.id,
                name: f.release.name,
                status: f.release.status.as_str().to_owned(),
                done: f.phases_done,
                total: f.phases_total,
                current: f.current.join(", "),
            })
            .collect(),
        failures: found
            .failures
            .into_iter()
            .map(|r| FailureRow {
                when: r.finished_at.map(|t| ago(t, now)).unwrap_or_default(),
                id: r.id,
                name: r.name,
                status: r.status.as_str().to_owned(),
                reason: r.status_reason.unwrap_or_default(),
            })
            .collect(),
        upcoming: found
            .upcoming
            .into_iter()
            .map(|e| UpcomingRow {
                window: format!("{} → {}", local(Some(e.start), zone), local(Some(e.end), zone)),
                conflicts: e.conflicts.len(),
                id: e.release.id,
                name: e.release.name,
                status: e.release.status.as_str().to_owned(),
                environments: e.release.environments.join(", "),
            })
            .collect(),
        freezes: found
            .freezes
            .into_iter()
            .map(|(f, s, e)| FreezeRow {
                reason: f.reason,
                environments: f.environments.join(", "),
                window: format!("{} → {}", local(Some(s), zone), local(Some(e), zone)),
                now: s <= now,
            })
            .collect(),
    };
    render(&page)
}
