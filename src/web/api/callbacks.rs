//! `POST /api/v1/callbacks/{token}` (the token is the only credential) and `GET /api/v1/deployments`.

use actix_web::{web, HttpResponse};
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use serde::Deserialize;
use serde_json::json;

use super::ok;
use crate::db::schema::deployments;
use crate::engine::outcomes::{self, CallbackBody};
use crate::web::error::{ApiError, AppError};
use crate::web::extractors::{ApiJson, ApiUser};
use crate::web::AppState;

pub async fn callback(state: web::Data<AppState>, token: web::Path<String>, body: ApiJson<CallbackBody>) -> Result<HttpResponse, ApiError> {
    if token.len() > 100 {
        return Err(ApiError(AppError::NotFound));
    }
    let mut conn = state.db().await?;
    match outcomes::callback(&mut conn, &token, body.0, state.now()).await {
        Ok(()) => Ok(ok(&json!({"accepted": true}))),
        Err(crate::ops::OpError::NotFound) => Ok(HttpResponse::NotFound().json(json!({"error": {
            "code": "unknown_callback",
            "message": "This callback URL is not known (or its release was deleted)."
        }}))),
        Err(e) => Err(e.into()),
    }
}

#[derive(Debug, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct DeploymentQuery {
    pub environment: Option<String>,
    pub service: Option<String>,
}

pub async fn deployments(state: web::Data<AppState>, user: ApiUser, query: web::Query<DeploymentQuery>) -> Result<HttpResponse, ApiError> {
    user.require(crate::domain::policy::Action::ViewRelease, crate::domain::policy::Scope::Account)?;
    let mut conn = state.db().await?;
    let mut q = deployments::table.filter(deployments::account_id.eq(user.account_id)).into_boxed();
    if let Some(e) = query.environment.as_deref().filter(|s| !s.is_empty()) {
        q = q.filter(deployments::environment.eq(e.to_string()));
    }
    if let Some(s) = query.service.as_deref().filter(|s| !s.is_empty()) {
        q = q.filter(deployments::service.eq(s.to_string()));
    }
    let rows: Vec<(String, String, String, i64, chrono::DateTime<chrono::Utc>)> = q
        .order((deployments::deployed_at.desc(), deployments::id.desc()))
        .limit(1000)
        .select((deployments::service, deployments::version, deployments::environment, deployments::release_id, deployments::deployed_at))
        .load(&mut conn)
        .await?;
    Ok(ok(&json!({"deployments": rows.into_iter().map(|(service, version, environment, release_id, deployed_at)| json!({
        "service": service, "version": version, "environment": environment, "release_id": release_id, "deployed_at": deployed_at
    })).collect::<Vec<_>>()})))
}
