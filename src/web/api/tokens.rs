//! `/api/v1/me/tokens`: the caller's own API tokens (DESIGN §10).

use actix_web::{web, HttpResponse};
use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{created, ok};
use crate::db::models::api_tokens::ApiToken;
use crate::ops::tokens::{self, TokenInput};
use crate::web::error::ApiError;
use crate::web::extractors::{ApiJson, ApiUser};
use crate::web::AppState;

#[derive(Serialize, utoipa::ToSchema)]
pub struct TokenJson<'a> {
    pub id: i64,
    pub name: &'a str,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub active: bool,
}

impl<'a> TokenJson<'a> {
    fn of(row: &'a ApiToken, now: DateTime<Utc>) -> Self {
        TokenJson {
            id: row.id,
            name: &row.name,
            created_at: row.created_at,
            expires_at: row.expires_at,
            revoked_at: row.revoked_at,
            active: row.is_active(now),
        }
    }
}

/// The answer to a create: the plain token, shown this once.
#[derive(Serialize, utoipa::ToSchema)]
pub struct CreatedJson<'a> {
    pub id: i64,
    pub name: &'a str,
    pub token: &'a str,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
}

pub async fn list(state: web::Data<AppState>, user: ApiUser) -> Result<HttpResponse, ApiError> {
    let mut conn = state.db().await?;
    let rows = tokens::list_own(&mut conn, &user.actor()).await?;
    let now = state.now();
    Ok(ok(&serde_json::json!({"tokens": rows.iter().map(|r| TokenJson::of(r, now)).collect::<Vec<_>>()})))
}

pub async fn create(state: web::Data<AppState>, user: ApiUser, body: ApiJson<TokenInput>) -> Result<HttpResponse, ApiError> {
    let mut conn = state.db().await?;
    let made = tokens::create_own(&mut conn, &user.actor(), &user.time_zone, &body.0, state.now()).await?;
    Ok(created(&CreatedJson {
        id: made.row.id,
        name: &made.row.name,
        token: &made.token,
        created_at: made.row.created_at,
        expires_at: made.row.expires_at,
    }))
}

pub async fn revoke(state: web::Data<AppState>, user: ApiUser, id: web::Path<i64>) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let mut conn = state.db().await?;
    tokens::revoke_own(&mut conn, &user.actor(), id, state.now()).await?;
    Ok(HttpResponse::NoContent().finish())
}
