//! `GET /api/v1/locks`: every deploy lock with a holder or a queue (DESIGN §2, §10).

use actix_web::{web, HttpResponse};
use serde_json::json;

use super::ok;
use crate::web::error::ApiError;
use crate::web::extractors::ApiUser;
use crate::web::AppState;

pub async fn list(state: web::Data<AppState>, user: ApiUser) -> Result<HttpResponse, ApiError> {
    // Everyone in the account sees which locks are taken; names only of releases they may see.
    let mut conn = state.db().await?;
    let locks = crate::ops::locks::list(&mut conn, user.account_id, &user.bindings).await?;
    Ok(ok(&json!({ "locks": locks })))
}
