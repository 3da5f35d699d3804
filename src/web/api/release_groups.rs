//! `/api/v1/release-groups` (DESIGN §5, §10): recurring cadences, their preview, pause, resume,
//! skips, edits and deletion.

use actix_web::{web, HttpResponse};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{created, ok};
use crate::domain::policy::{Action, Scope};
use crate::ops::release_groups::{self as ops, GroupView, Occurrence, ReleaseGroup, ReleaseGroupFields, ReleaseGroupInput};
use crate::web::error::ApiError;
use crate::web::extractors::{ApiJson, ApiUser};
use crate::web::AppState;

#[derive(Serialize, utoipa::ToSchema)]
pub struct ReleaseGroupJson {
    pub id: i64,
    pub name: String,
    pub process_id: i64,
    pub process_name: String,
    pub input_set: Option<String>,
    pub org: Option<String>,
    pub rrule: String,
    /// Local date and time of the first occurrence, `YYYY-MM-DDTHH:MM`.
    pub dtstart: String,
    pub time_zone: String,
    pub duration: String,
    pub name_template: String,
    pub horizon_days: i32,
    pub require_previous_finished: bool,
    pub paused: bool,
    /// The type of the releases it makes.
    #[serde(rename = "type")]
    pub release_type: &'static str,
    /// Its releases' release manager (e-mail).
    pub owner: Option<String>,
    /// Its releases' stakeholders.
    pub stakeholders: Vec<String>,
    pub created_at: DateTime<Utc>,
}

impl ReleaseGroupJson {
    fn of(view: GroupView) -> Self {
        let GroupView { group: g, process_name, input_set, org, owner } = view;
        ReleaseGroupJson {
            id: g.id,
            duration: g.duration(),
            dtstart: g.dtstart.format("%Y-%m-%dT%H:%M").to_string(),
            name: g.name,
            process_id: g.process_id,
            process_name,
            input_set,
            org,
            rrule: g.rrule,
            time_zone: g.time_zone,
            name_template: g.name_template,
            horizon_days: g.horizon_days,
            require_previous_finished: g.require_previous_finished,
            paused: g.paused,
            release_type: g.release_type.as_str(),
            owner,
            stakeholders: g.stakeholders,
            created_at: g.created_at,
        }
    }
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct GroupPreviewJson {
    pub occurrences: Vec<Occurrence>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct GroupDeletedJson {
    pub deleted_drafts: Vec<i64>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct GroupSkippedJson {
    pub skipped: Vec<DateTime<Utc>>,
    pub deleted_drafts: Vec<i64>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SkipBody {
    /// A local date (`YYYY-MM-DD`: every occurrence that day) or one occurrence (RFC 3339).
    pub date: String,
}

type Conn = diesel_async::pooled_connection::deadpool::Object<diesel_async::AsyncPgConnection>;

/// The group, if the caller may see it (404 for another account's, 403 for another org's).
async fn visible(state: &AppState, user: &ApiUser, id: i64) -> Result<(Conn, ReleaseGroup), ApiError> {
    let mut conn = state.db().await?;
    let group = ops::get(&mut conn, user.account_id, id).await?;
    user.require(Action::ViewCalendar, group.scope())?;
    Ok((conn, group))
}

async fn managed(state: &AppState, user: &ApiUser, id: i64) -> Result<(Conn, ReleaseGroup), ApiError> {
    let (conn, group) = visible(state, user, id).await?;
    user.require(Action::ManageReleaseGroup, group.scope())?;
    Ok((conn, group))
}

async fn answer(conn: &mut Conn, group: ReleaseGroup) -> Result<ReleaseGroupJson, ApiError> {
    Ok(ReleaseGroupJson::of(ops::describe(conn, group).await?))
}

pub async fn list(state: web::Data<AppState>, user: ApiUser) -> Result<HttpResponse, ApiError> {
    let mut conn = state.db().await?;
    let mut groups = Vec::new();
    for g in ops::list(&mut conn, user.account_id).await? {
        if user.may(Action::ViewCalendar, g.scope()) {
            groups.push(answer(&mut conn, g).await?);
        }
    }
    Ok(ok(&json!({ "release_groups": groups })))
}

/// Refuses before any check of the settings when the caller may not manage groups there.
async fn require_manage(conn: &mut Conn, user: &ApiUser, input: &ReleaseGroupInput) -> Result<(), ApiError> {
    let scope = ops::scope_of(conn, user.account_id, input).await?.map_or(Scope::Account, Scope::Org);
    user.require(Action::ManageReleaseGroup, scope)
}

pub async fn create(state: web::Data<AppState>, user: ApiUser, body: ApiJson<ReleaseGroupFields>) -> Result<HttpResponse, ApiError> {
    let mut conn = state.db().await?;
    let input = body.0.onto(ReleaseGroupInput { time_zone: user.time_zone.clone(), ..Default::default() });
    require_manage(&mut conn, &user, &input).await?;
    let group = ops::create(&mut conn, &user.actor(), &input, state.now()).await?;
    Ok(created(&answer(&mut conn, group).await?))
}

pub async fn get(state: web::Data<AppState>, user: ApiUser, id: web::Path<i64>) -> Result<HttpResponse, ApiError> {
    let (mut conn, group) = visible(&state, &user, *id).await?;
    Ok(ok(&answer(&mut conn, group).await?))
}

pub async fn patch(
    state: web::Data<AppState>,
    user: ApiUser,
    id: web::Path<i64>,
    body: ApiJson<ReleaseGroupFields>,
) -> Result<HttpResponse, ApiError> {
    let (mut conn, group) = managed(&state, &user, *id).await?;
    let input = body.0.onto(ops::as_input(&mut conn, &group).await?);
    require_manage(&mut conn, &user, &input).await?;
    let group = ops::update(&mut conn, &user.actor(), group.id, &input, state.now()).await?;
    Ok(ok(&answer(&mut conn, group).await?))
}

pub async fn delete(state: web::Data<AppState>, user: ApiUser, id: web::Path<i64>) -> Result<HttpResponse, ApiError> {
    let (mut conn, group) = managed(&state, &user, *id).await?;
    let deleted_drafts = ops::delete(&mut conn, &user.actor(), group.id, state.now()).await?;
    Ok(ok(&GroupDeletedJson { deleted_drafts }))
}

pub async fn preview(state: web::Data<AppState>, user: ApiUser, id: web::Path<i64>) -> Result<HttpResponse, ApiError> {
    let (mut conn, group) = visible(&state, &user, *id).await?;
    Ok(ok(&GroupPreviewJson { occurrences: ops::preview(&mut conn, &group, 10, state.now()).await? }))
}

pub async fn pause(state: web::Data<AppState>, user: ApiUser, id: web::Path<i64>) -> Result<HttpResponse, ApiError> {
    let (mut conn, group) = managed(&state, &user, *id).await?;
    let group = ops::set_paused(&mut conn, &user.actor(), group.id, true, state.now()).await?;
    Ok(ok(&answer(&mut conn, group).await?))
}

pub async fn resume(state: web::Data<AppState>, user: ApiUser, id: web::Path<i64>) -> Result<HttpResponse, ApiError> {
    let (mut conn, group) = managed(&state, &user, *id).await?;
    let group = ops::set_paused(&mut conn, &user.actor(), group.id, false, state.now()).await?;
    Ok(ok(&answer(&mut conn, group).await?))
}

pub async fn skip(
    state: web::Data<AppState>,
    user: ApiUser,
    id: web::Path<i64>,
    body: ApiJson<SkipBody>,
) -> Result<HttpResponse, ApiError> {
    let (mut conn, group) = managed(&state, &user, *id).await?;
    let skipped = ops::occurrences_named(&group, &body.0.date)?;
    let deleted_drafts = ops::skip(&mut conn, &user.actor(), group.id, &skipped, state.now()).await?;
    Ok(ok(&GroupSkippedJson { skipped, deleted_drafts }))
}
