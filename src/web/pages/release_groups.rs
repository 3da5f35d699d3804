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
        let releases =
            releases_by_group.remove(&g.id).unwrap_or_default().into_iter().map(|r| (r.id, r.name, r.status.as_str().to_owned())).collect();
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
        can_manage: user.may_somewhere(Action::ManageReleaseGroup),
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
    let scope = ops::scope_of(&mut conn, user.account_id, &form).await?.map_or(Scope::Account, Scope::Org);
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
    let g = ops::get(&mut conn, user.account_id, id).await?;
    user.require(Action::ManageReleaseGroup, g.scope())
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

#[derive(Template)]
#[template(path = "pages/release_group.html")]
pub struct ReleaseGroupPage {
    pub chrome: Chrome,
    pub id: i64,
    pub action: String,
    pub name: String,
    pub rule: String,
    pub paused: bool,
    pub preview: Vec<ops::Occurrence>,
    pub drafts: Vec<(i64, String)>,
    pub processes: Vec<(i64, String)>,
    pub form: ReleaseGroupInput,
    pub errors: FieldErrors,
    pub can_manage: bool,
}

async fn group_page(
    state: &AppState,
    user: &CurrentUser,
    session: &Session,
    id: i64,
    form: Option<ReleaseGroupInput>,
    errors: FieldErrors,
) -> Result<ReleaseGroupPage, AppError> {
    let mut conn = state.db().await?;
    let g = ops::get(&mut conn, user.account_id, id).await?;
    user.require(Action::ViewCalendar, g.scope())?;
    let can_manage = user.may(Action::ManageReleaseGroup, g.scope());
    let form = match form {
        Some(f) => f,
        None if can_manage => ops::as_input(&mut conn, &g).await?,
        None => ReleaseGroupInput::default(),
    };
    let processes = Process::list(&mut conn, user.account_id)
        .await?
        .into_iter()
        .filter(|p| p.process.latest_version > 0 && user.may(Action::ManageReleaseGroup, p.process.scope()))
        .map(|p| (p.process.id, p.process.name))
        .collect();
    Ok(ReleaseGroupPage {
        chrome: Chrome::new(user, session, &g.name, "/release-groups"),
        id: g.id,
        action: format!("/release-groups/{}", g.id),
        rule: format!(
            "{} from {} ({}), each {} long, created {} days ahead; {} releases, managed by {}{}",
            g.rrule,
            g.dtstart.format("%Y-%m-%d %H:%M"),
            g.time_zone,
            g.duration(),
            g.horizon_days,
            g.release_type,
            if form.owner.is_empty() { "nobody" } else { &form.owner },
            if g.stakeholders.is_empty() { String::new() } else { format!(", stakeholders {}", g.stakeholders.join(", ")) }
        ),
        preview: ops::preview(&mut conn, &g, 10, state.now()).await?,
        drafts: ops::drafts_of(&mut conn, g.id).await?,
        name: g.name,
        paused: g.paused,
        processes,
        form,
        errors,
        can_manage,
    })
}

pub async fn show(state: web::Data<AppState>, user: CurrentUser, session: Session, id: web::Path<i64>) -> Result<HttpResponse, AppError> {
    render(&group_page(&state, &user, &session, *id, None, FieldErrors::new()).await?)
}

pub async fn update(
    state: web::Data<AppState>,
    user: CurrentUser,
    session: Session,
    htmx: Htmx,
    id: web::Path<i64>,
    form: web::Form<ReleaseGroupInput>,
) -> Result<HttpResponse, AppError> {
    manage(&state, &user, *id).await?;
    let form = form.into_inner();
    let mut conn = state.db().await?;
    let scope = ops::scope_of(&mut conn, user.account_id, &form).await?.map_or(Scope::Account, Scope::Org);
    user.require(Action::ManageReleaseGroup, scope)?;
    match ops::update(&mut conn, &user.actor(), *id, &form, state.now()).await {
        Ok(g) => {
            flash::success(&session, format!("Release group {} saved; releases already created keep their schedule.", g.name));
            Ok(redirect(htmx, &format!("/release-groups/{}", g.id)))
        }
        Err(e) => {
            let Some(errors) = e.field_errors() else { return Err(e.into()) };
            render_form_errors(&group_page(&state, &user, &session, *id, Some(form), errors).await?, htmx)
        }
    }
}

pub async fn delete(
    state: web::Data<AppState>,
    user: CurrentUser,
    session: Session,
    htmx: Htmx,
    id: web::Path<i64>,
) -> Result<HttpResponse, AppError> {
    manage(&state, &user, *id).await?;
    let mut conn = state.db().await?;
    let drafts = ops::delete(&mut conn, &user.actor(), *id, state.now()).await?;
    flash::success(&session, format!("Release group deleted, with {} draft(s); its other releases stay.", drafts.len()));
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
    let deleted = ops::skip(&mut conn, &user.actor(), *id, &[at], state.now()).await?;
    flash::success(
        &session,
        if deleted.is_empty() {
            "That occurrence will not be created.".to_string()
        } else {
            "That occurrence is skipped; its draft was deleted.".to_string()
        },
    );
    Ok(redirect(htmx, &format!("/release-groups/{}", *id)))
}
