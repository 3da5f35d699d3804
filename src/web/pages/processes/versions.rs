//! Read-only past versions and the diff between two versions.

use actix_session::Session;
use actix_web::{web, HttpResponse};
use askama::Template;
use serde::Deserialize;

use crate::db::models::processes::Process;
use crate::domain::policy::Action;
use crate::domain::process::diff::{diff, Change};
use crate::ops::processes::{self as ops};
use crate::web::error::AppError;
use crate::web::extractors::CurrentUser;
use crate::web::pages::{render, Chrome};
use crate::web::AppState;

use super::*;

pub async fn show_version(
    state: web::Data<AppState>,
    user: CurrentUser,
    session: Session,
    path: web::Path<(i64, i32)>,
) -> Result<HttpResponse, AppError> {
    let (id, version) = path.into_inner();
    let editing = load(&state, &user, id, Some(version)).await?;
    render(&editor_page(&state, &user, &session, editing, true).await?)
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct DiffQuery {
    pub from: Option<i32>,
    pub to: Option<i32>,
}

#[derive(Template)]
#[template(path = "pages/processes/diff.html")]
pub struct DiffPage {
    pub chrome: Chrome,
    pub id: i64,
    pub process_name: String,
    pub from: i32,
    pub to: i32,
    pub versions: Vec<i32>,
    pub changes: Vec<Change>,
}

pub async fn diff_page(
    state: web::Data<AppState>,
    user: CurrentUser,
    session: Session,
    id: web::Path<i64>,
    query: web::Query<DiffQuery>,
) -> Result<HttpResponse, AppError> {
    let mut conn = state.db().await?;
    let process = Process::find(&mut conn, user.account_id, *id).await?;
    user.require(Action::ViewProcess, process.scope())?;
    let to = query.to.unwrap_or(process.latest_version);
    let from = query.from.unwrap_or((to - 1).max(1));
    let (_, old) = ops::load(&mut conn, &process, Some(from)).await?;
    let (_, new) = ops::load(&mut conn, &process, Some(to)).await?;
    render(&DiffPage {
        chrome: Chrome::new(&user, &session, format!("Changes in {}", new.name), "/processes"),
        id: process.id,
        process_name: new.name.clone(),
        from,
        to,
        versions: (1..=process.latest_version).rev().collect(),
        changes: diff(&old, &new),
    })
}
