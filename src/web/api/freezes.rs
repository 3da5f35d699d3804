//! `/api/v1/freezes` (DESIGN §2, §10): freeze windows of the account or of one org.

use actix_web::{web, HttpResponse};
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::json;

use super::{created, ok};
use crate::db::models::accounts::Organization;
use crate::domain::policy::Action;
use crate::ops::freezes::{self as ops, FreezeFields, FreezeWindow};
use crate::web::error::ApiError;
use crate::web::extractors::{ApiJson, ApiUser};
use crate::web::AppState;

#[derive(Serialize, utoipa::ToSchema)]
pub struct FreezeJson {
    pub id: i64,
    pub reason: String,
    pub environments: Vec<String>,
    pub time_zone: String,
    /// A one-off window's start and end.
    pub start: Option<DateTime<Utc>>,
    pub end: Option<DateTime<Utc>>,
    /// A recurring window: its rule, first start (local) and length.
    pub rrule: Option<String>,
    pub dtstart: Option<String>,
    pub duration_minutes: Option<i32>,
    /// The org whose releases it holds; `null` holds the whole account's.
    pub org: Option<String>,
    pub created_at: DateTime<Utc>,
}

impl FreezeJson {
    fn of(f: FreezeWindow, orgs: &[Organization]) -> Self {
        FreezeJson {
            org: f.org_id.and_then(|id| orgs.iter().find(|o| o.id == id)).map(|o| o.slug.clone()),
            id: f.id,
            reason: f.reason,
            environments: f.environments,
            time_zone: f.time_zone,
            start: f.starts_at,
            end: f.ends_at,
            rrule: f.rrule,
            dtstart: f.dtstart.map(|d| d.format("%Y-%m-%dT%H:%M").to_string()),
            duration_minutes: f.duration_minutes,
            created_at: f.created_at,
        }
    }
}

pub async fn list(state: web::Data<AppState>, user: ApiUser) -> Result<HttpResponse, ApiError> {
    let mut conn = state.db().await?;
    let orgs = Organization::list(&mut conn, user.account_id).await?;
    let freezes: Vec<FreezeJson> = ops::list(&mut conn, user.account_id)
        .await?
        .into_iter()
        .filter(|f| user.may(Action::ViewCalendar, f.scope()))
        .map(|f| FreezeJson::of(f, &orgs))
        .collect();
    Ok(ok(&json!({ "freezes": freezes })))
}

pub async fn create(state: web::Data<AppState>, user: ApiUser, body: ApiJson<FreezeFields>) -> Result<HttpResponse, ApiError> {
    let mut conn = state.db().await?;
    let input = body.0.into_input(&user.time_zone);
    user.require(Action::ManageFreeze, ops::scope_of(&mut conn, user.account_id, &input).await?)?;
    let freeze = ops::create(&mut conn, &user.actor(), &input, state.now()).await?;
    let orgs = Organization::list(&mut conn, user.account_id).await?;
    Ok(created(&FreezeJson::of(freeze, &orgs)))
}

pub async fn delete(state: web::Data<AppState>, user: ApiUser, id: web::Path<i64>) -> Result<HttpResponse, ApiError> {
    let mut conn = state.db().await?;
    let freeze = ops::find(&mut conn, user.account_id, *id).await?;
    user.require(Action::ManageFreeze, freeze.scope())?;
    ops::delete(&mut conn, &user.actor(), freeze.id, state.now()).await?;
    Ok(HttpResponse::NoContent().finish())
}
