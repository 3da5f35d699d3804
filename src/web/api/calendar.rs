//! `GET /api/v1/calendar` (DESIGN §10 shape).

use actix_web::{web, HttpResponse};
use chrono::{DateTime, Utc};
use serde::Serialize;

use super::ok;
use crate::domain::policy::{Action, Scope};
use crate::domain::schedule::parse_bound;
use crate::ops::calendar::{self, filter_of, CalendarQuery};
use crate::web::error::{ApiError, AppError};
use crate::web::extractors::ApiUser;
use crate::web::AppState;

#[derive(Serialize, utoipa::ToSchema)]
pub struct CalendarJson<'a> {
    pub entries: Vec<EntryJson<'a>>,
    pub freezes: Vec<FreezeJson<'a>>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct EntryJson<'a> {
    pub release_id: i64,
    pub name: &'a str,
    #[serde(rename = "type")]
    pub release_type: &'a str,
    pub status: &'a str,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    /// It has a scheduled window; `false`: on demand, from its activation.
    pub scheduled: bool,
    /// On demand and in flight: `end` is now.
    pub open: bool,
    pub environments: &'a [String],
    pub services: &'a [String],
    pub conflicts: &'a [i64],
}

/// One occurrence of a freeze window within the asked range.
#[derive(Serialize, utoipa::ToSchema)]
pub struct FreezeJson<'a> {
    pub id: i64,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub environments: &'a [String],
    pub reason: &'a str,
}

pub async fn get(state: web::Data<AppState>, user: ApiUser, query: web::Query<CalendarQuery>) -> Result<HttpResponse, ApiError> {
    user.require(Action::ViewCalendar, Scope::Account)?;
    let q = query.into_inner();
    let now = state.now();
    // A date is a day in the caller's time zone; `to` names the last day (DESIGN §10).
    let zone = user.zone();
    let from = match &q.from {
        Some(f) => parse_bound(f, zone, false).map_err(|m| ApiError(AppError::bad_request("from", m)))?,
        None => now - chrono::TimeDelta::days(7),
    };
    let to = match &q.to {
        Some(t) => parse_bound(t, zone, true).map_err(|m| ApiError(AppError::bad_request("to", m)))?,
        None => from + chrono::TimeDelta::days(42),
    };
    if to <= from {
        return Err(ApiError(AppError::bad_request("to", "must be after from")));
    }
    if to - from > chrono::TimeDelta::days(400) {
        return Err(ApiError(AppError::bad_request("to", "the range may span at most 400 days")));
    }
    let mut conn = state.db().await?;
    let filter = filter_of(&mut conn, user.account_id, &q).await?;
    let found = calendar::entries(&mut conn, user.account_id, &user.bindings, (from, to), state.now(), &filter).await?;
    let windows = crate::ops::freezes::visible(&mut conn, user.account_id, &user.bindings).await?;
    let freezes: Vec<FreezeJson> = windows
        .iter()
        .filter(|f| filter.environment.as_ref().is_none_or(|e| f.environments.contains(e)))
        .flat_map(|f| {
            f.windows(from, to).into_iter().map(move |(start, end)| FreezeJson {
                id: f.id,
                start,
                end,
                environments: &f.environments,
                reason: &f.reason,
            })
        })
        .collect();
    let entries = found
        .iter()
        .map(|e| EntryJson {
            release_id: e.release.id,
            name: &e.release.name,
            release_type: e.release.release_type.as_str(),
            status: e.release.status.as_str(),
            start: e.start,
            end: e.end,
            scheduled: e.scheduled,
            open: e.open,
            environments: &e.release.environments,
            services: &e.release.services,
            conflicts: &e.conflicts,
        })
        .collect();
    Ok(ok(&CalendarJson { entries, freezes }))
}

pub async fn api_new_feed(state: web::Data<AppState>, user: ApiUser) -> Result<HttpResponse, ApiError> {
    let mut conn = state.db().await?;
    let url = calendar::new_feed(&mut conn, user.account_id, user.user_id, &state.settings.base_url, state.now()).await?;
    Ok(HttpResponse::Created().json(serde_json::json!({"url": url})))
}
