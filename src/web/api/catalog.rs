//! Organizations, environments, services and groups, named by slug or name (DESIGN §10).

use actix_web::{web, HttpResponse};
use serde::Deserialize;
use serde_json::json;

use super::{created, ok};
use crate::db::models::accounts::Organization;
use crate::db::models::catalog::{Environment, Group, Service};
use crate::domain::policy::{Action, Scope};
use crate::ops::catalog::{self as ops, EnvironmentInput};
use crate::web::error::ApiError;
use crate::web::extractors::{ApiJson, ApiUser};
use crate::web::AppState;

fn manage(user: &ApiUser) -> Result<(), ApiError> {
    user.require(Action::ManageCatalog, Scope::Account)
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OrgBody {
    pub slug: String,
    pub name: String,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NameBody {
    pub name: String,
}

pub async fn list_orgs(state: web::Data<AppState>, user: ApiUser) -> Result<HttpResponse, ApiError> {
    let mut conn = state.db().await?;
    Ok(ok(&json!({"orgs": Organization::list(&mut conn, user.account_id).await?})))
}

pub async fn create_org(state: web::Data<AppState>, user: ApiUser, body: ApiJson<OrgBody>) -> Result<HttpResponse, ApiError> {
    manage(&user)?;
    let mut conn = state.db().await?;
    let org = ops::create_org(&mut conn, &user.actor(), &body.0.slug, &body.0.name, state.now()).await?;
    Ok(created(&org))
}

pub async fn get_org(state: web::Data<AppState>, user: ApiUser, slug: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let mut conn = state.db().await?;
    Ok(ok(&Organization::by_slug(&mut conn, user.account_id, &slug).await?))
}

pub async fn patch_org(
    state: web::Data<AppState>,
    user: ApiUser,
    slug: web::Path<String>,
    body: ApiJson<NameBody>,
) -> Result<HttpResponse, ApiError> {
    manage(&user)?;
    let mut conn = state.db().await?;
    let org = Organization::by_slug(&mut conn, user.account_id, &slug).await?;
    Ok(ok(&ops::rename_org(&mut conn, &user.actor(), org.id, &body.0.name, state.now()).await?))
}

pub async fn delete_org(state: web::Data<AppState>, user: ApiUser, slug: web::Path<String>) -> Result<HttpResponse, ApiError> {
    manage(&user)?;
    let mut conn = state.db().await?;
    let org = Organization::by_slug(&mut conn, user.account_id, &slug).await?;
    ops::delete_org(&mut conn, &user.actor(), org.id, state.now()).await?;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EnvironmentBody {
    pub name: Option<String>,
    pub production: Option<bool>,
    pub position: Option<i32>,
    /// `none`, `service` or `environment` (DESIGN §2).
    pub deploy_lock: Option<String>,
}

impl EnvironmentBody {
    fn input(self) -> EnvironmentInput {
        EnvironmentInput { name: self.name, production: self.production, position: self.position, deploy_lock: self.deploy_lock }
    }
}

pub async fn list_environments(state: web::Data<AppState>, user: ApiUser) -> Result<HttpResponse, ApiError> {
    let mut conn = state.db().await?;
    Ok(ok(&json!({"environments": Environment::list(&mut conn, user.account_id).await?})))
}

pub async fn create_environment(
    state: web::Data<AppState>,
    user: ApiUser,
    body: ApiJson<EnvironmentBody>,
) -> Result<HttpResponse, ApiError> {
    manage(&user)?;
    let mut conn = state.db().await?;
    let env = ops::create_environment(&mut conn, &user.actor(), &body.0.input(), state.now()).await?;
    Ok(created(&env))
}

pub async fn get_environment(state: web::Data<AppState>, user: ApiUser, name: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let mut conn = state.db().await?;
    Ok(ok(&Environment::by_name(&mut conn, user.account_id, &name).await?))
}

pub async fn patch_environment(
    state: web::Data<AppState>,
    user: ApiUser,
    name: web::Path<String>,
    body: ApiJson<EnvironmentBody>,
) -> Result<HttpResponse, ApiError> {
    manage(&user)?;
    let mut conn = state.db().await?;
    let env = Environment::by_name(&mut conn, user.account_id, &name).await?;
    Ok(ok(&ops::update_environment(&mut conn, &user.actor(), env.id, &body.0.input(), state.now()).await?))
}

pub async fn delete_environment(state: web::Data<AppState>, user: ApiUser, name: web::Path<String>) -> Result<HttpResponse, ApiError> {
    manage(&user)?;
    let mut conn = state.db().await?;
    let env = Environment::by_name(&mut conn, user.account_id, &name).await?;
    ops::delete_environment(&mut conn, &user.actor(), env.id, state.now()).await?;
    Ok(HttpResponse::NoContent().finish())
}

pub async fn list_services(state: web::Data<AppState>, user: ApiUser) -> Result<HttpResponse, ApiError> {
    let mut conn = state.db().await?;
    Ok(ok(&json!({"services": Service::list(&mut conn, user.account_id).await?})))
}

pub async fn create_service(state: web::Data<AppState>, user: ApiUser, body: ApiJson<NameBody>) -> Result<HttpResponse, ApiError> {
    manage(&user)?;
    let mut conn = state.db().await?;
    Ok(created(&ops::create_service(&mut conn, &user.actor(), &body.0.name, state.now()).await?))
}

pub async fn get_service(state: web::Data<AppState>, user: ApiUser, name: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let mut conn = state.db().await?;
    Ok(ok(&Service::by_name(&mut conn, user.account_id, &name).await?))
}

pub async fn patch_service(
    state: web::Data<AppState>,
    user: ApiUser,
    name: web::Path<String>,
    body: ApiJson<NameBody>,
) -> Result<HttpResponse, ApiError> {
    manage(&user)?;
    let mut conn = state.db().await?;
    let service = Service::by_name(&mut conn, user.account_id, &name).await?;
    Ok(ok(&ops::rename_service(&mut conn, &user.actor(), service.id, &body.0.name, state.now()).await?))
}

pub async fn delete_service(state: web::Data<AppState>, user: ApiUser, name: web::Path<String>) -> Result<HttpResponse, ApiError> {
    manage(&user)?;
    let mut conn = state.db().await?;
    let service = Service::by_name(&mut conn, user.account_id, &name).await?;
    ops::delete_service(&mut conn, &user.actor(), service.id, state.now()).await?;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GroupBody {
    pub name: String,
    #[serde(default)]
    pub members: Vec<String>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GroupPatch {
    pub name: Option<String>,
    pub members: Option<Vec<String>>,
}

pub async fn list_groups(state: web::Data<AppState>, user: ApiUser) -> Result<HttpResponse, ApiError> {
    let mut conn = state.db().await?;
    Ok(ok(&json!({"groups": Group::list_with_members(&mut conn, user.account_id).await?})))
}

pub async fn create_group(state: web::Data<AppState>, user: ApiUser, body: ApiJson<GroupBody>) -> Result<HttpResponse, ApiError> {
    manage(&user)?;
    let mut conn = state.db().await?;
    Ok(created(&ops::create_group(&mut conn, &user.actor(), &body.0.name, &body.0.members, state.now()).await?))
}

pub async fn get_group(state: web::Data<AppState>, user: ApiUser, name: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let mut conn = state.db().await?;
    let group = Group::by_name(&mut conn, user.account_id, &name).await?;
    Ok(ok(&group.with_members(&mut conn).await?))
}

pub async fn patch_group(
    state: web::Data<AppState>,
    user: ApiUser,
    name: web::Path<String>,
    body: ApiJson<GroupPatch>,
) -> Result<HttpResponse, ApiError> {
    manage(&user)?;
    let mut conn = state.db().await?;
    let group = Group::by_name(&mut conn, user.account_id, &name).await?;
    let body = body.0;
    Ok(ok(&ops::update_group(&mut conn, &user.actor(), group.id, body.name.as_deref(), body.members.as_deref(), state.now()).await?))
}

pub async fn delete_group(state: web::Data<AppState>, user: ApiUser, name: web::Path<String>) -> Result<HttpResponse, ApiError> {
    manage(&user)?;
    let mut conn = state.db().await?;
    let group = Group::by_name(&mut conn, user.account_id, &name).await?;
    ops::delete_group(&mut conn, &user.actor(), group.id, state.now()).await?;
    Ok(HttpResponse::NoContent().finish())
}
