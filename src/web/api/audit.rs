//! `GET /api/v1/audit` and `GET /api/v1/releases/{id}/audit` (DESIGN §10): one JSON page, or
//! every matching row as streamed CSV with `format=csv`.

use actix_web::{web, HttpResponse};
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;

use super::ok;
use crate::db::audit::AuditEvent;
use crate::ops::audit_trail::{self, AuditQuery, Trail};
use crate::web::error::ApiError;
use crate::web::exports::{audit_csv, wants_csv};
use crate::web::extractors::ApiUser;
use crate::web::AppState;

#[derive(Serialize, utoipa::ToSchema)]
pub struct EventJson<'a> {
    id: i64,
    chain: &'a str,
    seq: i64,
    at: DateTime<Utc>,
    actor: &'a str,
    action: &'a str,
    subject: &'a str,
    release_id: Option<i64>,
    reason: Option<&'a str>,
    details: &'a Value,
}

impl<'a> EventJson<'a> {
    fn of(e: &'a AuditEvent) -> Self {
        EventJson {
            id: e.id,
            chain: &e.chain,
            seq: e.seq,
            at: e.at,
            actor: &e.actor,
            action: &e.action,
            subject: &e.subject,
            release_id: e.release_id,
            reason: e.reason.as_deref(),
            details: &e.details,
        }
    }
}

async fn answer(state: &AppState, user: &ApiUser, query: &AuditQuery, trail: Trail, name: &str) -> Result<HttpResponse, ApiError> {
    let actor = user.actor();
    if wants_csv(&query.format)? {
        let batches = audit_trail::export(state.pool.clone(), user.requester(&actor), query, trail)?;
        return Ok(audit_csv(name, batches));
    }
    let mut conn = state.db().await?;
    let page = audit_trail::page(&mut conn, user.requester(&actor), query, trail).await?;
    let events: Vec<EventJson> = page.events.iter().map(EventJson::of).collect();
    Ok(ok(&serde_json::json!({ "events": events, "next": page.next.map(|n| n.to_string()) })))
}

pub async fn account(state: web::Data<AppState>, user: ApiUser, query: web::Query<AuditQuery>) -> Result<HttpResponse, ApiError> {
    answer(&state, &user, &query, Trail::Account, "audit").await
}

pub async fn release(
    state: web::Data<AppState>,
    user: ApiUser,
    id: web::Path<i64>,
    query: web::Query<AuditQuery>,
) -> Result<HttpResponse, ApiError> {
    let actor = user.actor();
    {
        let mut conn = state.db().await?;
        audit_trail::check_release(&mut conn, user.requester(&actor), &user.email, *id).await?;
    }
    answer(&state, &user, &query, Trail::Release(*id), &format!("release-{id}-audit")).await
}
