//! `/api/v1/me/tokens`: the caller's own API tokens (DESIGN §10).

use actix_web::{web, HttpResponse};
use chrono::{DateTime, Utc};
use serde::Serialize;

use super::ok;
use crate::db::models::api_tokens::ApiToken;
use crate::domain::rule::RuleCode;
use crate::ops::tokens;
use crate::web::error::{ApiError, AppError};
use crate::web::extractors::ApiUser;
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

pub async fn list(state: web::Data<AppState>, user: ApiUser) -> Result<HttpResponse, ApiError> {
    let mut conn = state.db().await?;
    let rows = tokens::list_own(&mut conn, &user.actor()).await?;
    let now = state.now();
    Ok(ok(&serde_json::json!({"tokens": rows.iter().map(|r| TokenJson::of(r, now)).collect::<Vec<_>>()})))
}

/// A token never makes a token (DESIGN §10): a leaked short-lived one could otherwise mint one
/// that never expires and outlives its revocation. New tokens come from the profile page or the
/// CLI.
pub async fn create(_user: ApiUser) -> Result<HttpResponse, ApiError> {
    Err(ApiError(AppError::Rule {
        code: RuleCode::TokenFromToken,
        field: None,
        message: "an API token cannot create API tokens; create one on your profile page or with `railyard token create`".into(),
    }))
}

pub async fn revoke(state: web::Data<AppState>, user: ApiUser, id: web::Path<i64>) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let mut conn = state.db().await?;
    tokens::revoke_own(&mut conn, &user.actor(), id, state.now()).await?;
    Ok(HttpResponse::NoContent().finish())
}
