//! `GET /api/v1/deployments`: what was deployed where, newest first.

use actix_web::{web, HttpResponse};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::ok;
use crate::db::reports::DeploymentRow;
use crate::domain::policy::{Action, Scope};
use crate::ops::reports::ReportQuery;
use crate::web::error::ApiError;
use crate::web::extractors::ApiUser;
use crate::web::AppState;

#[derive(Debug, Deserialize, Default, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(default, deny_unknown_fields)]
pub struct DeploymentQuery {
    pub environment: Option<String>,
    pub service: Option<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct DeploymentJson<'a> {
    pub service: &'a str,
    pub version: &'a str,
    pub environment: &'a str,
    pub release_id: Option<i64>,
    pub deployed_at: DateTime<Utc>,
}

impl<'a> DeploymentJson<'a> {
    fn of(d: &'a DeploymentRow) -> Self {
        DeploymentJson {
            service: &d.service,
            version: &d.version,
            environment: &d.environment,
            release_id: d.release_id,
            deployed_at: d.deployed_at,
        }
    }
}

/// Only deployments of releases the caller may see (as every report).
pub async fn deployments(state: web::Data<AppState>, user: ApiUser, query: web::Query<DeploymentQuery>) -> Result<HttpResponse, ApiError> {
    user.require(Action::ViewRelease, Scope::Account)?;
    let mut conn = state.db().await?;
    let actor = user.actor();
    let q = ReportQuery { environment: query.environment.clone(), service: query.service.clone(), ..Default::default() };
    let rows = crate::ops::reports::history(&mut conn, user.requester(&actor), &q, state.now()).await?;
    let deployments: Vec<DeploymentJson> = rows.iter().map(DeploymentJson::of).collect();
    Ok(ok(&json!({ "deployments": deployments })))
}
