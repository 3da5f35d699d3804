//! `/calendar`: day, week, month, quarter and agenda views in the viewer's time zone. htmx swaps
//! only `#calendar` and pushes the URL; the same URL without htmx renders the whole page.

use actix_session::Session;
use actix_web::{web, HttpResponse};
use askama::Template;
use chrono::{Datelike, NaiveDate, Timelike};

use super::{render, Chrome};
use crate::db::models::calendar::OrgChoice;
use crate::domain::policy::{Action, Scope};
use crate::domain::schedule::{range, start_of_day, step, View};
use crate::ops::calendar;
use crate::ops::calendar::CalendarQuery;
use crate::web::error::AppError;
use crate::web::extractors::CurrentUser;
use crate::web::AppState;

#[derive(Debug, serde::Deserialize, Default, Clone)]
#[serde(default)]
pub struct PageQuery {
    pub view: String,
    pub date: String,
    pub org: String,
    pub environment: String,
    pub service: String,
    #[serde(rename = "type")]
    pub release_type: String,
    pub status: String,
    pub owner: String,
    pub group: String,
}

pub struct Item {
    pub id: i64,
    pub name: String,
    pub release_type: String,
    pub status: String,
    pub time: String,
    pub classes: String,
    pub conflict_note: String,
}

pub struct Day {
    /// Freeze reasons covering this day (the day is shaded).
    pub frozen: Vec<String>,
    pub label: String,
    pub iso: String,
    pub today: bool,
    pub shown: Vec<Item>,
    /// How many more releases the day has than it shows, and the day view that lists them all.
    pub more: usize,
    pub more_link: String,
}

#[derive(Template)]
#[template(path = "pages/calendar.html")]
pub struct CalendarPage {
    pub chrome: Chrome,
    pub view: &'static str,
    pub title: String,
    pub days: Vec<Day>,
    /// Empty cells before the first day, so each day sits under its weekday (Monday first).
    pub pad: usize,
    pub agenda: Vec<Item>,
    pub filters: PageQuery,
    pub prev: String,
    pub next: String,
    pub today: String,
    pub view_links: Vec<(&'static str, String, bool)>,
    pub orgs: Vec<OrgChoice>,
    pub environments: Vec<String>,
    pub services: Vec<String>,
    pub types: Vec<&'static str>,
    pub statuses: Vec<&'static str>,
    pub groups: Vec<(i64, String)>,
    pub zone: String,
}

pub const PER_DAY: usize = 3;

fn link(q: &PageQuery, view: &str, date: NaiveDate) -> String {
    let pairs = [
        ("view", view.to_string()),
        ("date", date.format("%Y-%m-%d").to_string()),
        ("org", q.org.clone()),
        ("environment", q.environment.clone()),
        ("service", q.service.clone()),
        ("type", q.release_type.clone()),
        ("status", q.status.clone()),
        ("owner", q.owner.clone()),
        ("group", q.group.clone()),
    ];
    let kept: Vec<(&str, String)> = pairs.into_iter().filter(|(_, v)| !v.is_empty()).collect();
    format!("/calendar?{}", serde_urlencoded::to_string(kept).unwrap_or_default())
}

pub async fn show(
    state: web::Data<AppState>,
    user: CurrentUser,
    session: Session,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, AppError> {
    user.require(Action::ViewCalendar, Scope::Account)?;
    let q = query.into_inner();
    let zone: chrono_tz::Tz = user.time_zone.parse().unwrap_or(chrono_tz::UTC);
    let now = state.now();
    let today = now.with_timezone(&zone).date_naive();
    let view = View::parse(&q.view).unwrap_or(View::Month);
    let date = match q.date.as_str() {
        "" => today,
        d => NaiveDate::parse_from_str(d, "%Y-%m-%d")
            .map_err(|_| AppError::bad_request("date", format!("{d:?} is not a date (YYYY-MM-DD)")))?,
    };
    let (days, from, to) = range(view, date, zone);
    let mut conn = state.db().await?;
    let api_query = CalendarQuery {
        org: Some(q.org.clone()),
        environment: Some(q.environment.clone()),
        service: Some(q.service.clone()),
        release_type: Some(q.release_type.clone()),
        status: Some(q.status.clone()),
        owner: Some(q.owner.clone()),
        group: Some(q.group.clone()),
        ..Default::default()
    };
    let read =
        calendar::page(&mut conn, (&state.pages.calendar, user.reading(now)), user.account_id, &user.bindings, (from, to), &api_query, now)
            .await?;
    let calendar::CalendarPage { entries, freezes, choices, .. } = &*read;
    let fmt_time = |t: chrono::DateTime<chrono::Utc>| {
        let local = t.with_timezone(&zone);
        format!("{:02}:{:02}", local.hour(), local.minute())
    };
    let item = |e: &calendar::CalEntry| Item {
        id: e.release.id,
        name: e.release.name.clone(),
        release_type: e.release.release_type.as_str().to_owned(),
        status: e.release.status.as_str().to_owned(),
        time: match (e.scheduled, e.open) {
            (true, _) => format!("{}–{}", fmt_time(e.start), fmt_time(e.end)),
            (false, true) => format!("on demand, since {}", fmt_time(e.start)),
            (false, false) => format!("on demand, {}–{}", fmt_time(e.start), fmt_time(e.end)),
        },
        classes: format!(
            "entry status-{} type-{}{}{}",
            e.release.status,
            e.release.release_type,
            e.release.release_group_id.map(|g| format!(" group-{}", g % 8)).unwrap_or_default(),
            if e.conflicts.is_empty() { "" } else { " conflict" }
        ),
        conflict_note: if e.conflicts.is_empty() {
            String::new()
        } else {
            format!("conflicts with {}", e.conflicts.iter().map(|c| format!("#{c}")).collect::<Vec<_>>().join(", "))
        },
    };
    let bounds: Vec<_> = days.iter().map(|d| (start_of_day(*d, zone), start_of_day(*d + chrono::Duration::days(1), zone))).collect();
    // Only what a cell shows is formatted; the rest is a count and a link to the day. One pass
    // over the entries (in start order), each to the days its window meets.
    let limit = if view == View::Day { usize::MAX } else { PER_DAY };
    let mut cells: Vec<(Vec<&calendar::CalEntry>, usize)> = days.iter().map(|_| (Vec::new(), 0)).collect();
    if view != View::Agenda {
        for e in entries.iter() {
            let first = bounds.partition_point(|(_, end)| *end <= e.start);
            for (cell, _) in cells.iter_mut().zip(&bounds).skip(first).take_while(|(_, (start, _))| *start < e.end) {
                if cell.0.len() < limit {
                    cell.0.push(e);
                } else {
                    cell.1 += 1;
                }
            }
        }
    }
    let grid: Vec<Day> = days
        .iter()
        .zip(bounds)
        .zip(cells)
        .map(|((d, (start, end)), (shown, more))| {
            let items: Vec<Item> = shown.into_iter().map(item).collect();
            let frozen = freezes.iter().filter(|(_, s, e)| *s < end && *e > start).map(|(r, _, _)| r.clone()).collect();
            Day {
                frozen,
                label: d.format("%a %e %b").to_string(),
                iso: d.to_string(),
                today: *d == today,
                shown: items,
                more,
                more_link: if more > 0 { link(&q, View::Day.as_str(), *d) } else { String::new() },
            }
        })
        .collect();
    let (prev, next) = step(view, date);
    let title = match view {
        View::Day => date.format("%A %e %B %Y").to_string(),
        View::Week => format!("Week {} of {}", date.iso_week().week(), date.iso_week().year()),
        View::Month => date.format("%B %Y").to_string(),
        View::Quarter => format!("Q{} {}", date.month0() / 3 + 1, date.year()),
        View::Agenda => format!("From {}", date.format("%e %B %Y")),
    };
    let page = CalendarPage {
        chrome: Chrome::new(&user, &session, "Calendar", "/calendar"),
        view: view.as_str(),
        title,
        pad: match (view, days.first()) {
            (View::Month | View::Quarter | View::Week, Some(first)) => first.weekday().num_days_from_monday() as usize,
            _ => 0,
        },
        agenda: if view == View::Agenda { entries.iter().map(item).collect() } else { Vec::new() },
        days: if view == View::Agenda { Vec::new() } else { grid },
        prev: link(&q, view.as_str(), prev),
        next: link(&q, view.as_str(), next),
        today: link(&q, view.as_str(), today),
        view_links: View::ALL.iter().map(|v| (v.as_str(), link(&q, v.as_str(), date), *v == view)).collect(),
        orgs: choices.orgs(),
        groups: choices.groups(),
        environments: choices.environments.clone(),
        services: choices.services.clone(),
        types: crate::domain::release::ReleaseType::ALL.iter().map(|t| t.as_str()).collect(),
        statuses: crate::domain::release::Status::ALL.iter().map(|s| s.as_str()).collect(),
        zone: user.time_zone.clone(),
        filters: PageQuery { view: view.as_str().to_string(), date: date.format("%Y-%m-%d").to_string(), ..q },
    };
    render(&page)
}

/// The summary a click on a calendar entry opens beside the calendar (an htmx fragment).
#[derive(Template)]
#[template(path = "pages/calendar_entry.html")]
pub struct EntrySummary {
    pub id: i64,
    pub name: String,
    pub release_type: String,
    pub status: String,
    pub status_reason: String,
    pub window: String,
    pub environments: String,
    pub services: String,
    pub conflicts: Vec<(i64, String)>,
}

pub async fn entry(state: web::Data<AppState>, user: CurrentUser, id: web::Path<i64>) -> Result<HttpResponse, AppError> {
    let mut conn = state.db().await?;
    let r = crate::db::models::releases::Release::find(&mut conn, user.account_id, *id).await?;
    crate::ops::releases::require_visible(&mut conn, &r, &user.bindings, (user.user_id, &user.email)).await?;
    let zone: chrono_tz::Tz = user.time_zone.parse().unwrap_or(chrono_tz::UTC);
    let local = |t: chrono::DateTime<chrono::Utc>| t.with_timezone(&zone).format("%a %Y-%m-%d %H:%M %Z").to_string();
    let summary = EntrySummary {
        id: r.id,
        window: match (r.schedule_start, r.schedule_end, r.activated_at, r.finished_at) {
            (Some(s), Some(e), _, _) => format!("{} → {}", local(s), local(e)),
            (Some(s), None, _, _) => format!("from {}", local(s)),
            (None, _, Some(a), Some(f)) => format!("on demand: {} → {}", local(a), local(f)),
            (None, _, Some(a), None) => format!("on demand: since {}", local(a)),
            (None, _, None, _) => "unscheduled".into(),
        },
        conflicts: calendar::conflicting_with(&mut conn, &r, &user.bindings, state.now()).await?,
        environments: if r.environments.is_empty() { "none".into() } else { r.environments.join(", ") },
        services: if r.services.is_empty() { "none".into() } else { r.services.join(", ") },
        status_reason: r.status_reason.clone().unwrap_or_default(),
        name: r.name,
        release_type: r.release_type.as_str().to_owned(),
        status: r.status.as_str().to_owned(),
    };
    render(&summary)
}
