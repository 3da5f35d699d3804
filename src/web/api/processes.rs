//! `/api/v1/processes` and their input sets (DESIGN §10).

use actix_web::{web, HttpResponse};
use serde::Deserialize;
use serde_json::{json, Value};

use super::{created, ok};
use crate::db::models::accounts::Organization;
use crate::db::models::processes::{InputSet, Process, ProcessSummary, ProcessVersion};
use crate::domain::policy::{Action, Scope};
use crate::ops::processes::{self as ops, InputSetInput, Source};
use crate::web::error::{ApiError, AppError};
use crate::web::extractors::{ApiJson, ApiUser};
use crate::web::AppState;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateBody {
    #[serde(default)]
    pub org: Option<String>,
    pub definition: Value,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateBody {
    pub definition: Value,
}

#[derive(Debug, Deserialize, Default)]
#[serde(default)]
pub struct VersionQuery {
    pub version: Option<i32>,
}

pub fn summary_json(s: &ProcessSummary) -> Value {
    json!({
        "id": s.process.id,
        "name": s.process.name,
        "org": s.org_slug,
        "latest_version": s.process.latest_version,
        "updated_at": s.process.updated_at,
    })
}

async fn org_id(conn: &mut diesel_async::AsyncPgConnection, account_id: i64, org: Option<&str>) -> Result<Option<i64>, ApiError> {
    match org.map(str::trim).filter(|o| !o.is_empty()) {
        None => Ok(None),
        Some(slug) => match Organization::by_slug(conn, account_id, slug).await {
            Ok(o) => Ok(Some(o.id)),
            Err(diesel::result::Error::NotFound) => {
                Err(ApiError(AppError::bad_request("org", format!("there is no organization {slug:?}"))))
            }
            Err(e) => Err(e.into()),
        },
    }
}

async fn org_slug(conn: &mut diesel_async::AsyncPgConnection, process: &Process) -> Result<Option<String>, ApiError> {
    Ok(match process.org_id {
        Some(id) => Some(Organization::find(conn, process.account_id, id).await?.slug),
        None => None,
    })
}

pub async fn list(state: web::Data<AppState>, user: ApiUser) -> Result<HttpResponse, ApiError> {
    let mut conn = state.db().await?;
    let all = Process::list(&mut conn, user.account_id).await?;
    let visible: Vec<Value> = all.iter().filter(|s| user.may(Action::ViewProcess, s.process.scope())).map(summary_json).collect();
    Ok(ok(&json!({ "processes": visible })))
}

pub async fn create(state: web::Data<AppState>, user: ApiUser, body: ApiJson<CreateBody>) -> Result<HttpResponse, ApiError> {
    let mut conn = state.db().await?;
    let body = body.0;
    let org_id = org_id(&mut conn, user.account_id, body.org.as_deref()).await?;
    user.require(Action::ManageProcess, org_id.map_or(Scope::Account, Scope::Org))?;
    let saved = ops::create(&mut conn, &user.actor(), org_id, Source::from_api(body.definition), state.now()).await?;
    Ok(created(&json!({
        "id": saved.process.id,
        "name": saved.process.name,
        "org": body.org.filter(|o| !o.trim().is_empty()),
        "version": saved.version,
        "latest_version": saved.version,
        "definition": saved.definition,
        "warnings": saved.warnings,
    })))
}

async fn visible_process(
    state: &AppState,
    user: &ApiUser,
    id: i64,
) -> Result<(diesel_async::pooled_connection::deadpool::Object<diesel_async::AsyncPgConnection>, Process), ApiError> {
    let mut conn = state.db().await?;
    let process = Process::find(&mut conn, user.account_id, id).await?;
    user.require(Action::ViewProcess, process.scope())?;
    Ok((conn, process))
}

pub async fn get(
    state: web::Data<AppState>,
    user: ApiUser,
    id: web::Path<i64>,
    query: web::Query<VersionQuery>,
) -> Result<HttpResponse, ApiError> {
    let (mut conn, process) = visible_process(&state, &user, *id).await?;
    let (version, def) = ops::load(&mut conn, &process, query.version).await?;
    let row = ProcessVersion::find(&mut conn, user.account_id, process.id, version).await?;
    Ok(ok(&json!({
        "id": process.id,
        "name": def.name,
        "org": org_slug(&mut conn, &process).await?,
        "version": version,
        "latest_version": process.latest_version,
        "created_at": row.created_at,
        "created_by": row.created_by,
        "definition": def,
    })))
}

pub async fn update(
    state: web::Data<AppState>,
    user: ApiUser,
    id: web::Path<i64>,
    body: ApiJson<UpdateBody>,
) -> Result<HttpResponse, ApiError> {
    let (mut conn, process) = visible_process(&state, &user, *id).await?;
    user.require(Action::ManageProcess, process.scope())?;
    let def = ops::parse(Source::from_api(body.0.definition))?;
    let saved = ops::save_version(&mut conn, &user.actor(), process.id, def, state.now()).await?;
    Ok(ok(&json!({
        "id": saved.process.id,
        "name": saved.process.name,
        "org": org_slug(&mut conn, &process).await?,
        "version": saved.version,
        "latest_version": saved.version,
        "definition": saved.definition,
        "warnings": saved.warnings,
    })))
}

pub async fn export(
    state: web::Data<AppState>,
    user: ApiUser,
    id: web::Path<i64>,
    query: web::Query<VersionQuery>,
) -> Result<HttpResponse, ApiError> {
    let (mut conn, process) = visible_process(&state, &user, *id).await?;
    let (version, def) = ops::load(&mut conn, &process, query.version).await?;
    Ok(crate::web::download::yaml_download(&def, process.id, version))
}

fn input_set_json(def: &crate::domain::process::Definition, set: &InputSet) -> Value {
    json!({"id": set.id, "name": set.name, "values": ops::masked(def, &set.input_values), "updated_at": set.updated_at})
}

pub async fn list_input_sets(state: web::Data<AppState>, user: ApiUser, id: web::Path<i64>) -> Result<HttpResponse, ApiError> {
    let (mut conn, process) = visible_process(&state, &user, *id).await?;
    let (_, def) = ops::load(&mut conn, &process, None).await?;
    let sets = InputSet::list(&mut conn, user.account_id, process.id).await?;
    Ok(ok(&json!({"input_sets": sets.iter().map(|s| input_set_json(&def, s)).collect::<Vec<_>>()})))
}

pub async fn create_input_set(
    state: web::Data<AppState>,
    user: ApiUser,
    id: web::Path<i64>,
    body: ApiJson<InputSetInput>,
) -> Result<HttpResponse, ApiError> {
    let (mut conn, process) = visible_process(&state, &user, *id).await?;
    user.require(Action::ManageProcess, process.scope())?;
    let set = ops::save_input_set(&mut conn, &user.actor(), &state.secrets, &process, None, &body.0, state.now()).await?;
    let (_, def) = ops::load(&mut conn, &process, None).await?;
    Ok(created(&input_set_json(&def, &set)))
}

pub async fn update_input_set(
    state: web::Data<AppState>,
    user: ApiUser,
    path: web::Path<(i64, String)>,
    body: ApiJson<InputSetInput>,
) -> Result<HttpResponse, ApiError> {
    let (id, name) = path.into_inner();
    let (mut conn, process) = visible_process(&state, &user, id).await?;
    user.require(Action::ManageProcess, process.scope())?;
    let existing = InputSet::by_name(&mut conn, user.account_id, process.id, &name).await?;
    let set = ops::save_input_set(&mut conn, &user.actor(), &state.secrets, &process, Some(&existing), &body.0, state.now()).await?;
    let (_, def) = ops::load(&mut conn, &process, None).await?;
    Ok(ok(&input_set_json(&def, &set)))
}

pub async fn delete_input_set(state: web::Data<AppState>, user: ApiUser, path: web::Path<(i64, String)>) -> Result<HttpResponse, ApiError> {
    let (id, name) = path.into_inner();
    let (mut conn, process) = visible_process(&state, &user, id).await?;
    user.require(Action::ManageProcess, process.scope())?;
    let existing = InputSet::by_name(&mut conn, user.account_id, process.id, &name).await?;
    ops::delete_input_set(&mut conn, &user.actor(), &process, &existing, state.now()).await?;
    Ok(HttpResponse::NoContent().finish())
}
