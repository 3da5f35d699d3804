//! `/locks`: every deploy lock with a holder or a queue (DESIGN §2), linked from the calendar.

use actix_session::Session;
use actix_web::{web, HttpResponse};
use askama::Template;
use chrono::{DateTime, Utc};

use super::{render, Chrome};
use crate::web::error::AppError;
use crate::web::extractors::CurrentUser;
use crate::web::AppState;

/// A release's claim as the page shows it (times in the reader's zone).
pub struct ClaimRow {
    pub release_id: Option<i64>,
    pub name: String,
    pub phase: Option<String>,
    pub since: String,
    pub hotfix: bool,
}

pub struct LockRow {
    pub environment: String,
    pub service: String,
    pub held_by: Option<ClaimRow>,
    pub since: String,
    pub waiting: Vec<ClaimRow>,
}

#[derive(Template)]
#[template(path = "pages/locks.html")]
pub struct LocksPage {
    pub chrome: Chrome,
    pub zone: String,
    pub locks: Vec<LockRow>,
}

pub async fn locks(state: web::Data<AppState>, user: CurrentUser, session: Session) -> Result<HttpResponse, AppError> {
    let mut conn = state.db().await?;
    let tz: chrono_tz::Tz = user.time_zone.parse().unwrap_or(chrono_tz::UTC);
    let at = |t: DateTime<Utc>| t.with_timezone(&tz).format("%Y-%m-%d %H:%M").to_string();
    let claim = |c: crate::ops::locks::ClaimView| ClaimRow {
        release_id: c.release_id,
        name: c.name,
        phase: c.phase,
        since: at(c.since),
        hotfix: c.hotfix,
    };
    let locks = crate::ops::locks::list(&mut conn, user.account_id, &user.bindings)
        .await?
        .into_iter()
        .map(|l| LockRow {
            environment: l.environment,
            service: l.service.unwrap_or_else(|| "(whole environment)".into()),
            held_by: l.held_by.map(claim),
            since: l.since.map(at).unwrap_or_default(),
            waiting: l.waiting.into_iter().map(claim).collect(),
        })
        .collect();
    render(&LocksPage { chrome: Chrome::new(&user, &session, "Deploy locks", "/calendar"), zone: user.time_zone.clone(), locks })
}
