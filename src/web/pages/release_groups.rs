//! `/release-groups`: recurring cadences, their next occurrences, pause/resume and skips.

use actix_session::Session;
use actix_web::{web, HttpResponse};
use askama::Template;

use super::{redirect, render, render_form_errors, Chrome};
use crate::db::models::processes::Process;
use crate::domain::policy::{Action, Scope};
use crate::domain::validate::FieldErrors;
use crate::ops::release_groups::{self as ops, ReleaseGroupInput};
use crate::web::error::AppError;
use crate::web::extractors::{CurrentUser, Htmx};
use crate::web::flash;
use crate::web::AppState;

pub struct ReleaseGroupRow {
    pub id: i64,
    pub name: String,
    pub rule: String,
    pub paused: bool,
    /// (UTC RFC 3339, local label) of the next occurrences.
    pub next: Vec<(String, String)>,
    pub releases: Vec<(i64, String, String)>,
}

#[derive(Template)]
#[template(path = "pages/release_groups.html")]
pub struct ReleaseGroupsPage {
    pub chrome: Chrome,
    pub groups: Vec<ReleaseGroupRow>,
    pub processes: Vec<(i64, String)>,
    pub form: ReleaseGroupInput,
    pub errors: FieldErrors,
    pub can_manage: bool,
}

async fn page(
    state: &AppState,
    user: &CurrentUser,
    session: &Session,
    form: ReleaseGroupInput,
    errors: FieldErrors,
) -> Result<ReleaseGroupsPage, AppError> {
    let mut conn = state.db().await?;
    let now = state.now();
    let visible: Vec<_> = ops::list(&mut conn, user.account_id)
        .await?
        .into_iter()
        .filter(|g| user.may(Action::ViewCalendar, g.org_id.map_or(Scope::Account, Scope::Org)))
        .collect();
    let mut releases_by_group = ops::releases_of(&mut conn, &visible.iter().map(|g| g.id).collect::<Vec<_>>()).await?;
    let mut groups = Vec::new();
    for g in visible {
        let tz = g.zone();
        let next = g
            .next(now, 10)
            .into_iter()
            .map(|t| (t.to_rfc3339(), t.with_timezone(&tz).format("%a %Y-%m-%d %H:%M %Z").to_string()))
            .collect();
        let releases = releases_by_group.remove(&g.id).unwrap_or_default().into_iter().map(|r| (r.id, r.name, r.status)).collect();
        groups.push(ReleaseGroupRow {
            id: g.id,
            rule: format!("{} from {} ({})", g.rrule, g.dtstart.format("%Y-%m-%d %H:%M"), g.time_zone),
            name: g.name,
            paused: g.paused,
            next,
            releases,
        });
    }
    let processes = Process::list(&mut conn, user.account_id)
        .await?
        .into_iter()
        .filter(|p| p.process.latest_version > 0 && user.may(Action::ManageReleaseGroup, p.process.scope()))
        .map(|p| (p.process.id, p.process.name))
        .collect();
    Ok(ReleaseGroupsPage {
        chrome: Chrome::new(user, session, "Release groups", "/release-groups"),
        groups,
        processes,
        form,
        errors,
        can_manage: user.may(Action::ManageReleaseGroup, Scope::Account)
            || user.bindings.iter().filter_map(|b| b.org).any(|o| user.may(Action::ManageReleaseGroup, Scope::Org(o))),
    })
}

pub async fn list(state: web::Data<AppState>, user: CurrentUser, session: Session) -> Result<HttpResponse, AppError> {
    user.require(Action::ViewCalendar, Scope::Account)?;
    let form = ReleaseGroupInput {
        time_zone: user.time_zone.clone(),
        horizon_days: "21".into(),
        duration: "4h".into(),
        rrule: "FREQ=WEEKLY;BYDAY=MO".into(),
        ..Default::default()
    };
    render(&page(&state, &user, &session, form, FieldErrors::new()).await?)
}

pub async fn create(
    state: web::Data<AppState>,
    user: CurrentUser,
    session: Session,
    htmx: Htmx,
    form: web::Form<ReleaseGroupInput>,
) -> Result<HttpResponse, AppError> {
    let form = form.into_inner();
    let mut conn = state.db().await?;
    let scope = match form.process_id.trim().parse::<i64>().ok() {
        Some(id) => Process::find(&mut conn, user.account_id, id).await.map(|p| p.scope()).unwrap_or(Scope::Account),
        None => Scope::Account,
    };
    user.require(Action::ManageReleaseGroup, scope)?;
    match ops::create(&mut conn, &user.actor(), &form, state.now()).await {
        Ok(g) => {
            flash::success(&session, format!("Release group {} created; its upcoming releases appear within a few seconds.", g.name));
            Ok(redirect(htmx, "/release-groups"))
        }
        Err(e) => {
            let Some(errors) = e.field_errors() else { return Err(e.into()) };
            render_form_errors(&page(&state, &user, &session, form, errors).await?, htmx)
        }
    }
}

async fn manage(state: &AppState, user: &CurrentUser, id: i64) -> Result<(), AppError> {
    let mut conn = state.db().await?;
    let g = ops::find(&mut conn, user.account_id, id).await?;
    user.require(Action::ManageReleaseGroup, g.org_id.map_or(Scope::Account, Scope::Org))
}

pub async fn pause(state: web::Data<AppState>, user: CurrentUser, htmx: Htmx, id: web::Path<i64>) -> Result<HttpResponse, AppError> {
    manage(&state, &user, *id).await?;
    let mut conn = state.db().await?;
    ops::set_paused(&mut conn, &user.actor(), *id, true, state.now()).await?;
    Ok(redirect(htmx, "/release-groups"))
}

pub async fn resume(state: web::Data<AppState>, user: CurrentUser, htmx: Htmx, id: web::Path<i64>) -> Result<HttpResponse, AppError> {
    manage(&state, &user, *id).await?;
    let mut conn = state.db().await?;
    ops::set_paused(&mut conn, &user.actor(), *id, false, state.now()).await?;
    Ok(redirect(htmx, "/release-groups"))
}

#[derive(Debug, Default, serde::Deserialize)]
#[serde(default)]
pub struct SkipForm {
    pub occurrence: String,
}

pub async fn skip(
    state: web::Data<AppState>,
    user: CurrentUser,
    session: Session,
    htmx: Htmx,
    id: web::Path<i64>,
    form: web::Form<SkipForm>,
) -> Result<HttpResponse, AppError> {
    manage(&state, &user, *id).await?;
    let at = chrono::DateTime::parse_from_rfc3339(form.occurrence.trim())
        .map_err(|_| AppError::bad_request("occurrence", "is not an occurrence time"))?
        .with_timezone(&chrono::Utc);
    let mut conn = state.db().await?;
    ops::skip(&mut conn, &user.actor(), *id, at, state.now()).await?;
    flash::success(&session, "That occurrence will not be created.");
    Ok(redirect(htmx, "/release-groups"))
}
