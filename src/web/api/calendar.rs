//! `GET /api/v1/calendar` (DESIGN §10 shape).

use actix_web::{web, HttpResponse};
use serde::Deserialize;
use serde_json::json;

use super::ok;
use crate::db::models::accounts::Organization;
use crate::domain::policy::{Action, Scope};
use crate::ops::calendar::{self, Filter};
use crate::ops::releases::parse_time;
use crate::web::error::{ApiError, AppError};
use crate::web::extractors::ApiUser;
use crate::web::AppState;

#[derive(Debug, Deserialize, Default, Clone)]
#[serde(default, deny_unknown_fields)]
pub struct CalendarQuery {
    pub from: Option<String>,
    pub to: Option<String>,
    pub org: Option<String>,
    pub environment: Option<String>,
    pub service: Option<String>,
    #[serde(rename = "type")]
    pub release_type: Option<String>,
    pub status: Option<String>,
}

/// The filter of a calendar query (shared by the page and the API), naming a bad parameter.
pub async fn filter_of(conn: &mut diesel_async::AsyncPgConnection, account_id: i64, q: &CalendarQuery) -> Result<Filter, AppError> {
    let nonempty = |v: &Option<String>| v.clone().filter(|s| !s.trim().is_empty());
    let org = match nonempty(&q.org).as_deref() {
        None => None,
        Some("account") => Some(None),
        Some(slug) => Some(Some(
            Organization::by_slug(conn, account_id, slug)
                .await
                .map_err(|_| AppError::bad_request("org", format!("there is no organization {slug:?}")))?
                .id,
        )),
    };
    if let Some(t) = nonempty(&q.release_type) {
        crate::domain::release::ReleaseType::parse(&t)
            .ok_or_else(|| AppError::bad_request("type", format!("{t:?} is not a release type")))?;
    }
    if let Some(s) = nonempty(&q.status) {
        crate::domain::release::Status::parse(&s).ok_or_else(|| AppError::bad_request("status", format!("{s:?} is not a status")))?;
    }
    Ok(Filter {
        org,
        environment: nonempty(&q.environment),
        service: nonempty(&q.service),
        release_type: nonempty(&q.release_type),
        status: nonempty(&q.status),
        owner_id: None,
    })
}

pub async fn get(state: web::Data<AppState>, user: ApiUser, query: web::Query<CalendarQuery>) -> Result<HttpResponse, ApiError> {
    user.require(Action::ViewCalendar, Scope::Account)?;
    let q = query.into_inner();
    let now = state.now();
    let from = match &q.from {
        Some(f) => parse_time(f, chrono_tz::UTC).map_err(|m| ApiError(AppError::bad_request("from", m)))?,
        None => now - chrono::TimeDelta::days(7),
    };
    let to = match &q.to {
        Some(t) => parse_time(t, chrono_tz::UTC).map_err(|m| ApiError(AppError::bad_request("to", m)))?,
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
    let found = calendar::entries(&mut conn, user.account_id, &user.bindings, from, to, &filter).await?;
    let freezes: Vec<serde_json::Value> = crate::ops::freezes::list(&mut conn, user.account_id)
        .await?
        .iter()
        .filter(|f| filter.environment.as_ref().is_none_or(|e| f.environments.contains(e)))
        .flat_map(|f| {
            f.windows(from, to)
                .into_iter()
                .map(move |(s, e)| json!({"id": f.id, "start": s, "end": e, "environments": f.environments, "reason": f.reason}))
        })
        .collect();
    Ok(ok(&json!({
        "entries": found.iter().map(|e| json!({
            "release_id": e.release.id,
            "name": e.release.name,
            "type": e.release.release_type,
            "status": e.release.status,
            "start": e.start,
            "end": e.end,
            "environments": e.release.environments,
            "services": e.release.services,
            "conflicts": e.conflicts,
        })).collect::<Vec<_>>(),
        "freezes": freezes,
    })))
}
