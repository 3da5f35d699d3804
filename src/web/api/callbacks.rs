//! `POST /api/v1/callbacks/{token}`: the token is the only credential.

use actix_web::{web, HttpResponse};
use serde_json::json;

use super::ok;
use crate::ops::outcomes::{self, CallbackBody};
use crate::web::error::{ApiError, AppError};
use crate::web::extractors::ApiJson;
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
