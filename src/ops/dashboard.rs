//! What the dashboard shows besides "my work" (DESIGN §8): releases in flight with phase
//! progress, failures of the last 7 days, the next 7 days of the calendar, and freezes now or
//! within 7 days. A fixed number of statements, whatever the data size.

use chrono::{DateTime, TimeDelta, Utc};
use diesel_async::AsyncPgConnection;

use crate::db::dashboard;
use crate::db::models::releases::Release;
use crate::domain::engine::Node;
use crate::domain::policy::{Action, Visibility};
use crate::ops::calendar::{self, CalEntry, Filter};
use crate::ops::freezes::{self, FreezeWindow};
use crate::ops::{OpError, Requester};

/// Each list shows at most this many; the page links to the full list.
pub const SECTION_LIMIT: i64 = 20;
pub const HORIZON: TimeDelta = TimeDelta::days(7);

pub struct InFlight {
    pub release: Release,
    pub phases_done: usize,
    pub phases_total: usize,
    /// The phases running or on hold now.
    pub current: Vec<String>,
}

pub struct Overview {
    pub in_flight: Vec<InFlight>,
    pub failures: Vec<Release>,
    pub upcoming: Vec<CalEntry>,
    /// (freeze, start, end) of each window now or starting within the horizon.
    pub freezes: Vec<(FreezeWindow, DateTime<Utc>, DateTime<Utc>)>,
}

pub async fn overview(conn: &mut AsyncPgConnection, who: Requester<'_>, now: DateTime<Utc>) -> Result<Overview, OpError> {
    let account = who.actor.account_id;
    let vis = Visibility::of(who.bindings, Action::ViewRelease);
    if vis.nothing() {
        return Ok(Overview { in_flight: Vec::new(), failures: Vec::new(), upcoming: Vec::new(), freezes: Vec::new() });
    }
    let running = dashboard::in_flight(conn, account, &vis, SECTION_LIMIT).await?;
    let ids: Vec<i64> = running.iter().map(|r| r.id).collect();
    let phases = dashboard::phases_of(conn, &ids).await?;
    let in_flight = running
        .into_iter()
        .map(|release| {
            let mine: Vec<&(i64, String, Node)> = phases.iter().filter(|(id, _, _)| *id == release.id).collect();
            InFlight {
                phases_done: mine.iter().filter(|(_, _, s)| s.is_finished()).count(),
                phases_total: mine.len(),
                current: mine.iter().filter(|(_, _, s)| s.in_progress()).map(|(_, n, _)| n.clone()).collect(),
                release,
            }
        })
        .collect();
    let failures = dashboard::failed_since(conn, account, &vis, now - HORIZON, SECTION_LIMIT).await?;
    // What is coming: scheduled windows (releases on demand in flight are in `in_flight`).
    let mut upcoming = calendar::entries(conn, account, who.bindings, (now, now + HORIZON), now, &Filter::default()).await?;
    upcoming.retain(|e| e.scheduled);
    upcoming.truncate(SECTION_LIMIT as usize);
    let mut freezes: Vec<(FreezeWindow, DateTime<Utc>, DateTime<Utc>)> = freezes::visible(conn, account, who.bindings)
        .await?
        .into_iter()
        .flat_map(|f| f.windows(now, now + HORIZON).into_iter().map(move |(s, e)| (f.clone(), s, e)).collect::<Vec<_>>())
        .collect();
    freezes.sort_by_key(|(_, s, _)| *s);
    Ok(Overview { in_flight, failures, upcoming, freezes })
}
