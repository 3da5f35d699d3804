//! `/work` (everything waiting for me, oldest first) and `/notifications` (in-app list).

use actix_session::Session;
use actix_web::{web, HttpResponse};
use askama::Template;
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use super::{redirect, render, Chrome};
use crate::db::models::releases::{Release, ReleaseActivity};
use crate::db::schema::{approval_votes, notifications, release_activities, releases};
use crate::ops::activities::{self as acts, may_act, Person, Verb};
use crate::web::error::AppError;
use crate::web::extractors::{CurrentUser, Htmx};
use crate::web::AppState;

pub struct WorkItem {
    pub release_id: i64,
    pub release_name: String,
    pub phase: String,
    pub key: String,
    pub name: String,
    pub what: &'static str,
    pub since: String,
    pub allowed: Vec<&'static str>,
    pub needs_reason: Vec<&'static str>,
}

#[derive(Template)]
#[template(path = "pages/work.html")]
pub struct WorkPage {
    pub chrome: Chrome,
    pub items: Vec<WorkItem>,
}

pub async fn work(state: web::Data<AppState>, user: CurrentUser, session: Session) -> Result<HttpResponse, AppError> {
    let mut conn = state.db().await?;
    let now = state.now();
    let person = Person {
        actor: user.actor(),
        user_id: user.user_id,
        email: &user.email,
        bindings: &user.bindings,
        groups: acts::groups_of(&mut conn, user.user_id).await?,
        delegating_for: acts::delegating_for(&mut conn, user.user_id, now).await?,
    };
    let waiting: Vec<(ReleaseActivity, Release)> = release_activities::table
        .inner_join(releases::table.on(releases::id.eq(release_activities::release_id)))
        .filter(releases::account_id.eq(user.account_id))
        .filter(releases::state.eq("active"))
        .filter(release_activities::status.eq_any(["Running", "OnHold"]))
        .filter(release_activities::kind.eq_any(["manual", "approval"]).or(release_activities::status.eq("OnHold")))
        .order(release_activities::started_at.asc())
        .select((ReleaseActivity::as_select(), Release::as_select()))
        .load(&mut conn)
        .await?;
    let mut items = Vec::new();
    for (a, r) in waiting {
        let mut allowed: Vec<&'static str> =
            Verb::ALL.iter().filter(|v| may_act(&person, &r, &a, **v).is_ok()).map(|v| v.as_str()).collect();
        // Release managers may complete anyone's task; "my work" lists what is assigned to me.
        let mine = |owner: &str| match owner.split_once(':') {
            Some(("user", e)) => e.eq_ignore_ascii_case(&user.email),
            Some(("group", g)) => person.groups.iter().any(|x| x == g),
            _ => false,
        };
        if a.kind == "manual" && a.status == "Running" && !mine(&a.owner) {
            allowed.retain(|v| *v != "complete" && *v != "fail");
        }
        if allowed.contains(&"approve") {
            let voted: i64 = approval_votes::table
                .filter(approval_votes::release_id.eq(r.id))
                .filter(approval_votes::phase_key.eq(&a.phase_key))
                .filter(approval_votes::activity_key.eq(&a.key))
                .filter(approval_votes::round.eq(a.attempts))
                .filter(approval_votes::cast_by.eq(user.user_id))
                .count()
                .get_result(&mut conn)
                .await?;
            if voted > 0 {
                allowed.retain(|v| *v != "approve" && *v != "reject");
            }
        }
        if allowed.is_empty() {
            continue;
        }
        let what = if allowed.contains(&"approve") {
            "approval"
        } else if allowed.contains(&"retry") {
            "failure decision"
        } else {
            "manual task"
        };
        items.push(WorkItem {
            release_id: r.id,
            release_name: r.name.clone(),
            phase: a.phase_key.clone(),
            key: a.key.clone(),
            name: a.name.clone(),
            what,
            since: a.started_at.map(|t| fmt(t, &user.time_zone)).unwrap_or_default(),
            needs_reason: allowed.iter().copied().filter(|v| matches!(*v, "fail" | "reject" | "retry" | "ignore" | "fix")).collect(),
            allowed,
        });
    }
    render(&WorkPage { chrome: Chrome::new(&user, &session, "My work", "/work"), items })
}

fn fmt(t: DateTime<Utc>, zone: &str) -> String {
    let tz: chrono_tz::Tz = zone.parse().unwrap_or(chrono_tz::UTC);
    t.with_timezone(&tz).format("%Y-%m-%d %H:%M %Z").to_string()
}

/// (subject, body, link, created at, read at)
type StoredNotification = (String, String, Option<String>, DateTime<Utc>, Option<DateTime<Utc>>);

pub struct NotificationRow {
    pub subject: String,
    pub body: String,
    pub link: String,
    pub at: String,
    pub unread: bool,
}

#[derive(Template)]
#[template(path = "pages/notifications.html")]
pub struct NotificationsPage {
    pub chrome: Chrome,
    pub rows: Vec<NotificationRow>,
}

pub async fn notifications_page(state: web::Data<AppState>, user: CurrentUser, session: Session) -> Result<HttpResponse, AppError> {
    let mut conn = state.db().await?;
    let found: Vec<StoredNotification> = notifications::table
        .filter(notifications::user_id.eq(user.user_id))
        .order(notifications::created_at.desc())
        .limit(200)
        .select((notifications::subject, notifications::body, notifications::link, notifications::created_at, notifications::read_at))
        .load(&mut conn)
        .await?;
    let rows = found
        .into_iter()
        .map(|(subject, body, link, at, read)| NotificationRow {
            subject,
            body,
            // Sign-off links are e-mailed only; the in-app entry points to My work.
            link: link.map(|l| if l.starts_with("/signoff/") { "/work".to_string() } else { l }).unwrap_or_default(),
            at: fmt(at, &user.time_zone),
            unread: read.is_none(),
        })
        .collect();
    render(&NotificationsPage { chrome: Chrome::new(&user, &session, "Notifications", "/notifications"), rows })
}

pub async fn mark_read(state: web::Data<AppState>, user: CurrentUser, htmx: Htmx) -> Result<HttpResponse, AppError> {
    let mut conn = state.db().await?;
    diesel::update(notifications::table.filter(notifications::user_id.eq(user.user_id)).filter(notifications::read_at.is_null()))
        .set(notifications::read_at.eq(state.now()))
        .execute(&mut conn)
        .await?;
    Ok(redirect(htmx, "/notifications"))
}
