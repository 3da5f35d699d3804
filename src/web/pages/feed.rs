//! The per-user iCalendar feed (`/calendar.ics?token=…`): secret, revocable, honouring the
//! calendar's filters; one VEVENT per release with a stable UID.

use actix_session::Session;
use actix_web::{web, HttpResponse};
use chrono::{DateTime, TimeDelta, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use icalendar::{Calendar, Component, Event, EventLike, EventStatus};

use super::redirect;
use crate::db::models::users::principal_by_user_id;
use crate::db::schema::calendar_feeds;
use crate::ops::calendar;
use crate::security::{random_token, sha256_hex};
use crate::web::api::calendar::{filter_of, CalendarQuery};
use crate::web::error::{ApiError, AppError};
use crate::web::extractors::{ApiUser, CurrentUser, Htmx};
use crate::web::flash;
use crate::web::AppState;

/// A new secret feed URL for the user; the previous one stops working.
pub async fn new_feed(
    conn: &mut AsyncPgConnection,
    account_id: i64,
    user_id: i64,
    base_url: &str,
    now: DateTime<Utc>,
) -> QueryResult<String> {
    let token = random_token(32);
    conn.transaction(async |conn| {
        diesel::update(calendar_feeds::table.filter(calendar_feeds::user_id.eq(user_id)).filter(calendar_feeds::revoked_at.is_null()))
            .set(calendar_feeds::revoked_at.eq(now))
            .execute(conn)
            .await?;
        diesel::insert_into(calendar_feeds::table)
            .values((
                calendar_feeds::token_hash.eq(sha256_hex(&token)),
                calendar_feeds::account_id.eq(account_id),
                calendar_feeds::user_id.eq(user_id),
                calendar_feeds::created_at.eq(now),
            ))
            .execute(conn)
            .await?;
        Ok::<_, diesel::result::Error>(())
    })
    .await?;
    Ok(format!("{base_url}/calendar.ics?token={token}"))
}

pub async fn api_new_feed(state: web::Data<AppState>, user: ApiUser) -> Result<HttpResponse, ApiError> {
    let mut conn = state.db().await?;
    let url = new_feed(&mut conn, user.account_id, user.user_id, &state.settings.base_url, state.now()).await?;
    Ok(HttpResponse::Created().json(serde_json::json!({"url": url})))
}

pub async fn page_new_feed(state: web::Data<AppState>, user: CurrentUser, session: Session, htmx: Htmx) -> Result<HttpResponse, AppError> {
    let mut conn = state.db().await?;
    let url = new_feed(&mut conn, user.account_id, user.user_id, &state.settings.base_url, state.now()).await?;
    flash::success(&session, format!("Your calendar feed (keep it secret; add filters like &environment=PROD1): {url}"));
    Ok(redirect(htmx, "/profile"))
}

#[derive(Debug, serde::Deserialize, Default)]
#[serde(default)]
pub struct FeedQuery {
    pub token: String,
    pub org: String,
    pub environment: String,
    pub service: String,
    #[serde(rename = "type")]
    pub release_type: String,
    pub status: String,
}

pub async fn feed(state: web::Data<AppState>, query: web::Query<FeedQuery>) -> Result<HttpResponse, AppError> {
    let mut conn = state.db().await?;
    let owner: Option<i64> = calendar_feeds::table
        .filter(calendar_feeds::token_hash.eq(sha256_hex(&query.token)))
        .filter(calendar_feeds::revoked_at.is_null())
        .select(calendar_feeds::user_id)
        .first(&mut conn)
        .await
        .optional()?;
    let user_id = owner.ok_or(AppError::NotFound)?;
    let principal = principal_by_user_id(&mut conn, user_id).await?.ok_or(AppError::NotFound)?;
    let bindings = principal.bindings();
    let q = CalendarQuery {
        org: Some(query.org.clone()),
        environment: Some(query.environment.clone()),
        service: Some(query.service.clone()),
        release_type: Some(query.release_type.clone()),
        status: Some(query.status.clone()),
        ..Default::default()
    };
    let filter = filter_of(&mut conn, principal.account_id, &q).await?;
    let now = state.now();
    let entries =
        calendar::entries(&mut conn, principal.account_id, &bindings, now - TimeDelta::days(90), now + TimeDelta::days(400), &filter)
            .await?;
    let mut cal = Calendar::new();
    cal.name("Railyard releases");
    for e in &entries {
        let status = match (e.release.state.as_str(), e.release.status.as_str()) {
            ("draft", _) => EventStatus::Tentative,
            (_, "Aborted") => EventStatus::Cancelled,
            _ => EventStatus::Confirmed,
        };
        cal.push(
            Event::new()
                .uid(&format!("release-{}@railyard", e.release.id))
                .summary(&format!("{} [{}]", e.release.name, e.release.status))
                .starts(e.start)
                .ends(e.end)
                .url(&format!("{}/releases/{}", state.settings.base_url, e.release.id))
                .status(status)
                .timestamp(now)
                .done(),
        );
    }
    Ok(HttpResponse::Ok().content_type("text/calendar; charset=utf-8").body(cal.done().to_string()))
}
