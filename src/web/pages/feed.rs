//! The per-user iCalendar feed (`/calendar.ics?token=…`): secret, revocable, honouring the
//! calendar's filters; one VEVENT per release with a stable UID.

use actix_session::Session;
use actix_web::{web, HttpResponse};
use chrono::TimeDelta;
use icalendar::{Calendar, Component, Event, EventLike, EventStatus};

use super::redirect;
use crate::db::models::users::principal_by_user_id;
use crate::domain::release::{State, Status};
use crate::ops::calendar;
use crate::ops::calendar::{filter_of, CalendarQuery};
use crate::web::error::AppError;
use crate::web::extractors::{CurrentUser, Htmx};
use crate::web::flash;
use crate::web::AppState;

pub async fn page_new_feed(state: web::Data<AppState>, user: CurrentUser, session: Session, htmx: Htmx) -> Result<HttpResponse, AppError> {
    let mut conn = state.db().await?;
    let url = calendar::new_feed(&mut conn, user.account_id, user.user_id, &state.settings.base_url, state.now()).await?;
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
    pub owner: String,
    pub group: String,
}

pub async fn feed(state: web::Data<AppState>, query: web::Query<FeedQuery>) -> Result<HttpResponse, AppError> {
    let mut conn = state.db().await?;
    let user_id = calendar::feed_owner(&mut conn, &query.token).await?.ok_or(AppError::NotFound)?;
    let principal = principal_by_user_id(&mut conn, user_id).await?.ok_or(AppError::NotFound)?;
    let bindings = principal.bindings();
    let q = CalendarQuery {
        org: Some(query.org.clone()),
        environment: Some(query.environment.clone()),
        service: Some(query.service.clone()),
        release_type: Some(query.release_type.clone()),
        status: Some(query.status.clone()),
        owner: Some(query.owner.clone()),
        group: Some(query.group.clone()),
        ..Default::default()
    };
    let filter = filter_of(&mut conn, principal.account_id, &q).await?;
    let now = state.now();
    let entries = calendar::entries(
        &mut conn,
        principal.account_id,
        &bindings,
        (now - TimeDelta::days(90), now + TimeDelta::days(400)),
        now,
        &filter,
    )
    .await?;
    let mut cal = Calendar::new();
    cal.name("Railyard releases");
    for e in &entries {
        let status = match (e.release.state(), e.release.status()) {
            (State::Draft, _) => EventStatus::Tentative,
            (_, Status::Aborted) => EventStatus::Cancelled,
            _ => EventStatus::Confirmed,
        };
        // An on-demand release in flight ends, for a calendar client, at the next full hour.
        let end = if e.open { next_full_hour(now).max(e.end) } else { e.end };
        let summary = if e.scheduled {
            format!("{} [{}]", e.release.name, e.release.status)
        } else {
            format!("{} [{}, on demand]", e.release.name, e.release.status)
        };
        cal.push(
            Event::new()
                .uid(&format!("release-{}@railyard", e.release.id))
                .summary(&summary)
                .starts(e.start)
                .ends(end)
                .url(&format!("{}/releases/{}", state.settings.base_url, e.release.id))
                .status(status)
                .timestamp(now)
                .done(),
        );
    }
    Ok(HttpResponse::Ok().content_type("text/calendar; charset=utf-8").body(cal.done().to_string()))
}

/// The next full hour after `t` (DESIGN §6: an open entry's DTEND).
fn next_full_hour(t: chrono::DateTime<chrono::Utc>) -> chrono::DateTime<chrono::Utc> {
    use chrono::{DurationRound, TimeDelta};
    t.duration_trunc(TimeDelta::hours(1)).unwrap_or(t) + TimeDelta::hours(1)
}
