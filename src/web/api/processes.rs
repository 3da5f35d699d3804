//! `/api/v1/processes` and their input sets (DESIGN §10).

use actix_web::{web, HttpResponse};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::{created, ok};
use crate::db::models::accounts::Organization;
use crate::db::models::processes::{InputSet, Process, ProcessSummary, ProcessVersion};
use crate::domain::policy::{Action, Scope};
use crate::domain::process::Definition;
use crate::ops::processes::{self as ops, InputSetInput, Saved, Source};
use crate::web::error::{ApiError, AppError};
use crate::web::extractors::{ApiJson, ApiUser};
use crate::web::AppState;

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateBody {
    #[serde(default)]
    pub org: Option<String>,
    pub definition: Value,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateBody {
    pub definition: Value,
}

#[derive(Debug, Deserialize, Default, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(default)]
pub struct VersionQuery {
    pub version: Option<i32>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ProcessSummaryJson<'a> {
    pub id: i64,
    pub name: &'a str,
    pub org: Option<&'a str>,
    pub latest_version: i32,
    pub updated_at: DateTime<Utc>,
}

impl<'a> ProcessSummaryJson<'a> {
    fn of(s: &'a ProcessSummary) -> Self {
        ProcessSummaryJson {
            id: s.process.id,
            name: &s.process.name,
            org: s.org_slug.as_deref(),
            latest_version: s.process.latest_version,
            updated_at: s.process.updated_at,
        }
    }
}

/// A process version as created, updated or read.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ProcessJson<'a> {
    pub id: i64,
    pub name: &'a str,
    pub org: Option<String>,
    pub version: i32,
    pub latest_version: i32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created_at: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created_by: Option<&'a str>,
    #[schema(value_type = Object)]
    pub definition: &'a Definition,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub warnings: Option<&'a [String]>,
}

impl<'a> ProcessJson<'a> {
    fn saved(saved: &'a Saved, org: Option<String>) -> Self {
        ProcessJson {
            id: saved.process.id,
            name: &saved.process.name,
            org,
            version: saved.version,
            latest_version: saved.version,
            created_at: None,
            created_by: None,
            definition: &saved.definition,
            warnings: Some(&saved.warnings),
        }
    }
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct InputSetJson<'a> {
    pub id: i64,
    pub name: &'a str,
    pub values: serde_json::Map<String, Value>,
    pub updated_at: DateTime<Utc>,
}

impl<'a> InputSetJson<'a> {
    fn of(def: &Definition, set: &'a InputSet) -> Self {
        InputSetJson { id: set.id, name: &set.name, values: ops::masked(def, &set.input_values), updated_at: set.updated_at }
    }
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
    let visible: Vec<ProcessSummaryJson> =
        all.iter().filter(|s| user.may(Action::ViewProcess, s.process.scope())).map(ProcessSummaryJson::of).collect();
    Ok(ok(&json!({ "processes": visible })))
}

pub async fn create(state: web::Data<AppState>, user: ApiUser, body: ApiJson<CreateBody>) -> Result<HttpResponse, ApiError> {
    let mut conn = state.db().await?;
    let body = body.0;
    let org_id = org_id(&mut conn, user.account_id, body.org.as_deref()).await?;
    user.require(Action::ManageProcess, org_id.map_or(Scope::Account, Scope::Org))?;
    let saved = ops::create(&mut conn, &user.actor(), org_id, Source::from_api(body.definition), state.now()).await?;
    Ok(created(&ProcessJson::saved(&saved, body.org.filter(|o| !o.trim().is_empty()))))
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
    Ok(ok(&ProcessJson {
        id: process.id,
        name: &def.name,
        org: org_slug(&mut conn, &process).await?,
        version,
        latest_version: process.latest_version,
        created_at: Some(row.created_at),
        created_by: Some(&row.created_by),
        definition: &def,
        warnings: None,
    }))
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
    Ok(ok(&ProcessJson::saved(&saved, org_slug(&mut conn, &process).await?)))
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

pub async fn list_input_sets(state: web::Data<AppState>, user: ApiUser, id: web::Path<i64>) -> Result<HttpResponse, ApiError> {
    let (mut conn, process) = visible_process(&state, &user, *id).await?;
    let (_, def) = ops::load(&mut conn, &process, None).await?;
    let sets = InputSet::list(&mut conn, user.account_id, process.id).await?;
    Ok(ok(&json!({"input_sets": sets.iter().map(|s| InputSetJson::of(&def, s)).collect::<Vec<_>>()})))
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
    Ok(created(&InputSetJson::of(&def, &set)))
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
    Ok(ok(&InputSetJson::of(&def, &set)))
}

pub async fn delete_input_set(state: web::Data<AppState>, user: ApiUser, path: web::Path<(i64, String)>) -> Result<HttpResponse, ApiError> {
    let (id, name) = path.into_inner();
    let (mut conn, process) = visible_process(&state, &user, id).await?;
    user.require(Action::ManageProcess, process.scope())?;
    let existing = InputSet::by_name(&mut conn, user.account_id, process.id, &name).await?;
    ops::delete_input_set(&mut conn, &user.actor(), &process, &existing, state.now()).await?;
    Ok(HttpResponse::NoContent().finish())
}
