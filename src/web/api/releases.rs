//! `/api/v1/releases` (DESIGN §10).

use actix_web::{web, HttpResponse};
use serde::Deserialize;
use serde_json::Value;

use super::release_json::{DeletedJson, ReleaseJson, ReleaseListJson, ReleaseRowJson, RemovedLinkJson};
use super::{created, ok};
use crate::db::models::releases::{self as rows, Release};
use crate::domain::policy::Action;
use crate::ops::activities::ActivityAt;
use crate::ops::releases::{self as ops, filter_from, ListQuery, ReleaseInput};
use crate::web::error::{ApiError, AppError};
use crate::web::extractors::{ApiJson, ApiUser};
use crate::web::AppState;

async fn answer(conn: &mut diesel_async::AsyncPgConnection, release: Release, warnings: &[String]) -> Result<Value, ApiError> {
    let view = ops::view(conn, release).await?;
    serde_json::to_value(ReleaseJson::of(&view, warnings)).map_err(|e| ApiError(AppError::Unexpected(e.into())))
}

pub async fn create(state: web::Data<AppState>, user: ApiUser, body: ApiJson<ReleaseInput>) -> Result<HttpResponse, ApiError> {
    let mut conn = state.db().await?;
    let actor = user.actor();
    let saved = ops::create_release(&mut conn, user.requester(&actor), &state.secrets, &body.0, state.now()).await?;
    Ok(created(&answer(&mut conn, saved.release, &saved.warnings).await?))
}

async fn visible(
    state: &AppState,
    user: &ApiUser,
    id: i64,
) -> Result<(diesel_async::pooled_connection::deadpool::Object<diesel_async::AsyncPgConnection>, Release), ApiError> {
    let mut conn = state.db().await?;
    let release = Release::find(&mut conn, user.account_id, id).await?;
    user.require(Action::ViewRelease, release.scope())?;
    Ok((conn, release))
}

pub async fn get(state: web::Data<AppState>, user: ApiUser, id: web::Path<i64>) -> Result<HttpResponse, ApiError> {
    let (mut conn, release) = visible_or_named(&state, &user, *id).await?;
    Ok(ok(&answer(&mut conn, release, &[]).await?))
}

/// `GET /api/v1/releases/{id}/board`: the manifest as a board (empty for a release without one).
/// Read through the release page's cache (one read per database snapshot and reader's roles).
pub async fn board(state: web::Data<AppState>, user: ApiUser, id: web::Path<i64>) -> Result<HttpResponse, ApiError> {
    let mut conn = state.db().await?;
    let now = state.now();
    let detail = ops::detail(
        &mut conn,
        (&state.pages.release, &state.pages.standing, user.reading(now)),
        user.actor(),
        (&user.email, &user.bindings),
        (*id, None),
    )
    .await?;
    match &detail.read.board {
        Some(board) => Ok(ok(board)),
        None => Ok(ok(&crate::ops::board::Board { environments: Vec::new(), rows: Vec::new() })),
    }
}

pub async fn patch(
    state: web::Data<AppState>,
    user: ApiUser,
    id: web::Path<i64>,
    body: ApiJson<ReleaseInput>,
) -> Result<HttpResponse, ApiError> {
    let input = body.0;
    if input.activate.is_some() {
        return Err(ApiError(AppError::bad_request("activate", "use POST /api/v1/releases/{id}/activate")));
    }
    let (mut conn, release) = visible(&state, &user, *id).await?;
    let actor = user.actor();
    let saved = ops::edit_draft(&mut conn, user.requester(&actor), &state.secrets, &release, &input, state.now()).await?;
    Ok(ok(&answer(&mut conn, saved.release, &saved.warnings).await?))
}

#[derive(Debug, Deserialize, Default, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReasonBody {
    #[serde(default)]
    pub reason: String,
}

pub async fn activate(state: web::Data<AppState>, user: ApiUser, id: web::Path<i64>) -> Result<HttpResponse, ApiError> {
    let (mut conn, release) = visible(&state, &user, *id).await?;
    user.require(Action::Activate, release.scope())?;
    let activated = ops::activate(&mut conn, &user.actor(), release.id, state.now()).await?;
    Ok(ok(&answer(&mut conn, activated, &[]).await?))
}

pub async fn run_now(
    state: web::Data<AppState>,
    user: ApiUser,
    id: web::Path<i64>,
    body: ApiJson<ReasonBody>,
) -> Result<HttpResponse, ApiError> {
    let (mut conn, release) = visible(&state, &user, *id).await?;
    user.require(Action::RunNow, release.scope())?;
    let activated = ops::run_now(&mut conn, &user.actor(), release.id, &body.0.reason, state.now()).await?;
    Ok(ok(&answer(&mut conn, activated, &[]).await?))
}

pub async fn abort(
    state: web::Data<AppState>,
    user: ApiUser,
    id: web::Path<i64>,
    body: ApiJson<ReasonBody>,
) -> Result<HttpResponse, ApiError> {
    let (mut conn, release) = visible(&state, &user, *id).await?;
    user.require(Action::Abort, release.scope())?;
    let aborted = ops::abort(&mut conn, &user.actor(), release.id, &body.0.reason, state.now()).await?;
    Ok(ok(&answer(&mut conn, aborted, &[]).await?))
}

/// `POST /api/v1/releases/{id}/retry {reason}`: a release the engine set aside runs again.
pub async fn retry(
    state: web::Data<AppState>,
    user: ApiUser,
    id: web::Path<i64>,
    body: ApiJson<ReasonBody>,
) -> Result<HttpResponse, ApiError> {
    let (mut conn, release) = visible(&state, &user, *id).await?;
    user.require(Action::DecideFailure, release.scope())?;
    let resumed = ops::retry_set_aside(&mut conn, &user.actor(), release.id, &body.0.reason, state.now()).await?;
    Ok(ok(&answer(&mut conn, resumed, &[]).await?))
}

pub async fn restart(state: web::Data<AppState>, user: ApiUser, id: web::Path<i64>) -> Result<HttpResponse, ApiError> {
    let (mut conn, release) = visible(&state, &user, *id).await?;
    user.require(Action::Restart, release.scope())?;
    let draft = ops::restart(&mut conn, &user.actor(), release.id, state.now()).await?;
    Ok(created(&answer(&mut conn, draft, &[]).await?))
}

pub async fn rebase(state: web::Data<AppState>, user: ApiUser, id: web::Path<i64>) -> Result<HttpResponse, ApiError> {
    let (mut conn, release) = visible(&state, &user, *id).await?;
    user.require(Action::EditDraft, release.scope())?;
    let saved = ops::rebase(&mut conn, &user.actor(), &user.time_zone, &state.secrets, release.id, state.now()).await?;
    Ok(ok(&answer(&mut conn, saved.release, &saved.warnings).await?))
}

pub async fn delete(state: web::Data<AppState>, user: ApiUser, id: web::Path<i64>) -> Result<HttpResponse, ApiError> {
    let (mut conn, release) = visible(&state, &user, *id).await?;
    user.require(Action::DeleteRelease, release.scope())?;
    let deleted = ops::delete(&mut conn, &user.actor(), release.id, state.settings.retention_days, state.now()).await?;
    Ok(ok(&DeletedJson {
        deleted: release.id,
        purged: deleted.purged,
        removed_links: deleted.removed_links.iter().map(|(id, name, kind)| RemovedLinkJson { release_id: *id, name, kind }).collect(),
    }))
}

pub async fn list(state: web::Data<AppState>, user: ApiUser, query: web::Query<ListQuery>) -> Result<HttpResponse, ApiError> {
    let mut conn = state.db().await?;
    let zone = user.zone();
    let mut filter = filter_from(&mut conn, user.account_id, &query, zone).await?;
    filter.visible_to = Some(crate::domain::policy::Visibility::of(&user.bindings, Action::ViewRelease));
    let page = query.page.unwrap_or(0).max(0);
    let (found, total) = rows::list(&mut conn, user.account_id, &filter, page).await?;
    let releases: Vec<ReleaseRowJson> = found.iter().filter(|r| user.may(Action::ViewRelease, r.scope())).map(ReleaseRowJson::of).collect();
    Ok(ok(&ReleaseListJson { releases, page, page_size: rows::PAGE_SIZE, total }))
}

pub async fn act(
    state: web::Data<AppState>,
    user: ApiUser,
    path: web::Path<(i64, String, String, String)>,
    body: ApiJson<crate::ops::activities::ActInput>,
) -> Result<HttpResponse, ApiError> {
    use crate::ops::activities::{self as acts, Person, Verb};
    let (id, phase, activity, verb) = path.into_inner();
    let verb = Verb::parse(&verb).ok_or(ApiError(AppError::NotFound))?;
    let (mut conn, release) = visible_or_named(&state, &user, id).await?;
    let person = Person::load(&mut conn, user.actor(), (&user.email, &user.bindings), state.now()).await?;
    let updated =
        acts::act(&mut conn, &person, ActivityAt { release_id: release.id, phase: &phase, key: &activity }, verb, &body.0, state.now())
            .await?;
    Ok(ok(&answer(&mut conn, updated, &[]).await?))
}

pub async fn rollback(
    state: web::Data<AppState>,
    user: ApiUser,
    id: web::Path<i64>,
    body: ApiJson<ReasonBody>,
) -> Result<HttpResponse, ApiError> {
    let (mut conn, release) = visible(&state, &user, *id).await?;
    let updated =
        crate::ops::activities::roll_back(&mut conn, &user.actor(), &user.bindings, release.id, &body.0.reason, state.now()).await?;
    Ok(ok(&answer(&mut conn, updated, &[]).await?))
}

/// Named people (owners, approvers, stakeholders) see the release whatever their role.
async fn visible_or_named(
    state: &AppState,
    user: &ApiUser,
    id: i64,
) -> Result<(diesel_async::pooled_connection::deadpool::Object<diesel_async::AsyncPgConnection>, Release), ApiError> {
    let mut conn = state.db().await?;
    let release = Release::find(&mut conn, user.account_id, id).await?;
    crate::ops::releases::require_visible(&mut conn, &release, &user.bindings, (user.user_id, &user.email)).await?;
    Ok((conn, release))
}

pub async fn override_freeze(
    state: web::Data<AppState>,
    user: ApiUser,
    id: web::Path<i64>,
    body: ApiJson<ReasonBody>,
) -> Result<HttpResponse, ApiError> {
    let (mut conn, release) = visible(&state, &user, *id).await?;
    user.require(Action::OverrideFreeze, release.scope())?;
    let updated = crate::ops::freezes::override_for(&mut conn, &user.actor(), release.id, &body.0.reason, state.now()).await?;
    Ok(ok(&answer(&mut conn, updated, &[]).await?))
}
