//! `GET /api/v1/deployments`: what was deployed where, newest first.

use actix_web::{web, HttpResponse};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::ok;
use crate::db::models::deployments::Deployment;
use crate::domain::policy::{Action, Scope};
use crate::web::error::ApiError;
use crate::web::extractors::ApiUser;
use crate::web::AppState;

#[derive(Debug, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct DeploymentQuery {
    pub environment: Option<String>,
    pub service: Option<String>,
}

#[derive(Serialize)]
pub struct DeploymentJson<'a> {
    pub service: &'a str,
    pub version: &'a str,
    pub environment: &'a str,
    pub release_id: Option<i64>,
    pub deployed_at: DateTime<Utc>,
}

impl<'a> DeploymentJson<'a> {
    fn of(d: &'a Deployment) -> Self {
        DeploymentJson {
            service: &d.service,
            version: &d.version,
            environment: &d.environment,
            release_id: d.release_id,
            deployed_at: d.deployed_at,
        }
    }
}

pub async fn deployments(state: web::Data<AppState>, user: ApiUser, query: web::Query<DeploymentQuery>) -> Result<HttpResponse, ApiError> {
    user.require(Action::ViewRelease, Scope::Account)?;
    let mut conn = state.db().await?;
    let nonempty = |v: &Option<String>| v.clone().filter(|s| !s.is_empty());
    let rows = Deployment::latest(&mut conn, user.account_id, nonempty(&query.environment), nonempty(&query.service), 1000).await?;
    let deployments: Vec<DeploymentJson> = rows.iter().map(DeploymentJson::of).collect();
    Ok(ok(&json!({ "deployments": deployments })))
}
