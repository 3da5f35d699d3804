//! `/`: what waits for me and what runs now.

use actix_session::Session;
use actix_web::{web, HttpResponse};
use askama::Template;

use super::{render, Chrome};
use crate::domain::policy::{Action, Scope};
use crate::web::error::AppError;
use crate::web::extractors::CurrentUser;
use crate::web::pages::work::{work_items, WorkItem};
use crate::web::AppState;

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
}

pub async fn dashboard(state: web::Data<AppState>, user: CurrentUser, session: Session) -> Result<HttpResponse, AppError> {
    let items = work_items(&state, &user).await?;
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
    };
    render(&page)
}
