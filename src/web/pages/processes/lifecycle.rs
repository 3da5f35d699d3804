//! The process page's buttons beside editing: duplicate, archive or restore, delete.

use actix_session::Session;
use actix_web::{web, HttpResponse};
use serde::Deserialize;

use crate::db::models::processes::Process;
use crate::domain::policy::Action;
use crate::ops::process_lifecycle as ops;
use crate::web::error::AppError;
use crate::web::extractors::{CurrentUser, Htmx};
use crate::web::flash;
use crate::web::pages::redirect;
use crate::web::AppState;

async fn managed(state: &AppState, user: &CurrentUser, id: i64) -> Result<Process, AppError> {
    let mut conn = state.db().await?;
    let process = Process::find(&mut conn, user.account_id, id).await?;
    user.require(Action::ManageProcess, process.scope())?;
    Ok(process)
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct DuplicateForm {
    pub name: String,
}

pub async fn duplicate(
    state: web::Data<AppState>,
    user: CurrentUser,
    session: Session,
    htmx: Htmx,
    id: web::Path<i64>,
    form: web::Form<DuplicateForm>,
) -> Result<HttpResponse, AppError> {
    let process = managed(&state, &user, *id).await?;
    let mut conn = state.db().await?;
    match ops::duplicate(&mut conn, &user.actor(), process.id, &form.name, state.now()).await {
        Ok(saved) => {
            flash::success(&session, format!("{} is a copy of {}.", saved.process.name, process.name));
            Ok(redirect(htmx, &format!("/processes/{}", saved.process.id)))
        }
        Err(e) => {
            flash::push(&session, "error", crate::web::pages::releases::refusal_message(e)?);
            Ok(redirect(htmx, &format!("/processes/{}", process.id)))
        }
    }
}

async fn archive_to(
    state: &AppState,
    user: &CurrentUser,
    session: &Session,
    htmx: Htmx,
    id: i64,
    archived: bool,
) -> Result<HttpResponse, AppError> {
    let process = managed(state, user, id).await?;
    let mut conn = state.db().await?;
    ops::set_archived(&mut conn, &user.actor(), process.id, archived, state.now()).await?;
    flash::success(
        session,
        if archived {
            format!("{} is archived: hidden from new releases; its releases go on.", process.name)
        } else {
            format!("{} is back: new releases may use it.", process.name)
        },
    );
    Ok(redirect(htmx, &format!("/processes/{}", process.id)))
}

pub async fn archive(
    state: web::Data<AppState>,
    user: CurrentUser,
    session: Session,
    htmx: Htmx,
    id: web::Path<i64>,
) -> Result<HttpResponse, AppError> {
    archive_to(&state, &user, &session, htmx, *id, true).await
}

pub async fn unarchive(
    state: web::Data<AppState>,
    user: CurrentUser,
    session: Session,
    htmx: Htmx,
    id: web::Path<i64>,
) -> Result<HttpResponse, AppError> {
    archive_to(&state, &user, &session, htmx, *id, false).await
}

pub async fn delete(
    state: web::Data<AppState>,
    user: CurrentUser,
    session: Session,
    htmx: Htmx,
    id: web::Path<i64>,
) -> Result<HttpResponse, AppError> {
    let process = managed(&state, &user, *id).await?;
    let mut conn = state.db().await?;
    match ops::delete(&mut conn, &user.actor(), process.id, state.now()).await {
        Ok(()) => {
            flash::success(&session, format!("Process {} deleted.", process.name));
            Ok(redirect(htmx, "/processes"))
        }
        Err(e) => {
            flash::push(&session, "error", crate::web::pages::releases::refusal_message(e)?);
            Ok(redirect(htmx, &format!("/processes/{}", process.id)))
        }
    }
}
