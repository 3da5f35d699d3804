//! Calendar entries: scheduled releases in a range, filtered, with their conflicts (DESIGN §6).

use std::sync::Arc;

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use serde::Deserialize;

use crate::db::models::accounts::Organization;
use crate::db::models::calendar::{CalendarRow, FilterChoices};
use crate::db::models::releases::Release;
use crate::db::schema::calendar_feeds;
use crate::domain::policy::{self, Action, Binding};
use crate::domain::schedule::{conflicts, Entry};
use crate::ops::read_cache::{ReadCache, Reading};
use crate::ops::OpError;
use crate::security::{random_token, sha256_hex};

#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// `Some(None)` = account level only.
    pub org: Option<Option<i64>>,
    pub environment: Option<String>,
    pub service: Option<String>,
    pub release_type: Option<String>,
    pub status: Option<String>,
    pub owner_id: Option<i64>,
    pub group_id: Option<i64>,
}

#[derive(Debug, Deserialize, Default, Clone, PartialEq, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
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
    /// The release manager's e-mail.
    pub owner: Option<String>,
    /// A release group's id.
    pub group: Option<String>,
}

/// The filter of a calendar query (shared by the page and the API), naming a bad parameter.
pub async fn filter_of(conn: &mut AsyncPgConnection, account_id: i64, q: &CalendarQuery) -> Result<Filter, OpError> {
    let nonempty = |v: &Option<String>| v.clone().filter(|s| !s.trim().is_empty());
    let org = match nonempty(&q.org).as_deref() {
        None => None,
        Some("account") => Some(None),
        Some(slug) => Some(Some(
            Organization::by_slug(conn, account_id, slug)
                .await
                .map_err(|_| OpError::parse("org", format!("there is no organization {slug:?}")))?
                .id,
        )),
    };
    if let Some(t) = nonempty(&q.release_type) {
        crate::domain::release::ReleaseType::parse(&t).ok_or_else(|| OpError::parse("type", format!("{t:?} is not a release type")))?;
    }
    if let Some(s) = nonempty(&q.status) {
        crate::domain::release::Status::parse(&s).ok_or_else(|| OpError::parse("status", format!("{s:?} is not a status")))?;
    }
    let owner_id = match nonempty(&q.owner) {
        None => None,
        Some(email) => match crate::db::models::users::User::by_email(conn, &email).await? {
            Some(u) if u.account_id == account_id => Some(u.id),
            _ => return Err(OpError::parse("owner", format!("there is no user {:?}", email.trim()))),
        },
    };
    let group_id = match nonempty(&q.group) {
        None => None,
        Some(g) => Some(g.trim().parse::<i64>().map_err(|_| OpError::parse("group", format!("{g:?} is not a release group id")))?),
    };
    Ok(Filter {
        org,
        environment: nonempty(&q.environment),
        service: nonempty(&q.service),
        release_type: nonempty(&q.release_type),
        status: nonempty(&q.status),
        owner_id,
        group_id,
    })
}

#[derive(Debug, Clone)]
pub struct CalEntry {
    pub release: CalendarRow,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    /// It has a scheduled window (else it runs on demand, from its activation).
    pub scheduled: bool,
    /// On demand and still in flight: its window ends now.
    pub open: bool,
    pub conflicts: Vec<i64>,
}

/// Releases whose calendar window meets [from, to) (scheduled ones by their window, on-demand
/// ones from activation to finish or to `now`), visible to these bindings, with conflicts
/// computed over every release in the range (a conflict with a filtered-out release still shows).
pub async fn entries(
    conn: &mut AsyncPgConnection,
    account_id: i64,
    bindings: &[Binding],
    (from, to): (DateTime<Utc>, DateTime<Utc>),
    now: DateTime<Utc>,
    f: &Filter,
) -> QueryResult<Vec<CalEntry>> {
    let all = crate::db::models::calendar::in_window(conn, account_id, (from, to), now).await?;
    let window = |r: &CalendarRow| r.window(now).unwrap_or((from, to));
    let input: Vec<Entry> = all
        .iter()
        .map(|(r, hotfix_for)| Entry {
            id: r.id,
            start: window(r).0,
            end: window(r).1,
            environments: r.environments.clone(),
            services: r.services.clone(),
            group: r.release_group_id,
            hotfix_for: *hotfix_for,
        })
        .collect();
    let found = conflicts(&input);
    Ok(all
        .into_iter()
        .map(|(r, _)| r)
        .filter(|r| policy::allows(bindings, Action::ViewCalendar, r.scope()) && policy::allows(bindings, Action::ViewRelease, r.scope()))
        .filter(|r| match f.org {
            Some(None) => r.org_id.is_none(),
            Some(Some(o)) => r.org_id == Some(o),
            None => true,
        })
        .filter(|r| f.environment.as_ref().is_none_or(|e| r.environments.contains(e)))
        .filter(|r| f.service.as_ref().is_none_or(|s| r.services.contains(s)))
        .filter(|r| f.release_type.as_ref().is_none_or(|t| r.release_type.as_str() == t))
        .filter(|r| f.status.as_ref().is_none_or(|s| r.status.as_str() == s))
        .filter(|r| f.owner_id.is_none_or(|o| r.owner_id == Some(o)))
        .filter(|r| f.group_id.is_none_or(|g| r.release_group_id == Some(g)))
        .map(|r| CalEntry {
            start: window(&r).0,
            end: window(&r).1,
            scheduled: r.schedule_start.is_some(),
            open: r.schedule_start.is_none() && r.finished_at.is_none(),
            conflicts: found.get(&r.id).cloned().unwrap_or_default(),
            release: r,
        })
        .collect())
}

/// What the calendar page shows: the entries, the freeze windows in the range (reason with its
/// environments, start, end), and the choices of its filters. Three statements whatever the
/// number of releases (DESIGN §11).
pub struct CalendarPage {
    pub filter: Filter,
    pub entries: Vec<CalEntry>,
    pub freezes: Vec<(String, DateTime<Utc>, DateTime<Utc>)>,
    pub choices: FilterChoices,
}

/// What one calendar page depends on besides the data: who reads (their roles), the range and
/// the query.
#[derive(Debug, PartialEq)]
pub struct PageKey {
    account_id: i64,
    bindings: Vec<Binding>,
    range: (DateTime<Utc>, DateTime<Utc>),
    query: CalendarQuery,
}

/// The calendar page, read once per database snapshot for everyone with the same roles
/// (`ops::read_cache`): viewers of one account share it until something changes.
pub async fn page(
    conn: &mut AsyncPgConnection,
    (cache, reading): (&ReadCache<PageKey, CalendarPage>, Reading<'_>),
    account_id: i64,
    bindings: &[Binding],
    range: (DateTime<Utc>, DateTime<Utc>),
    q: &CalendarQuery,
    now: DateTime<Utc>,
) -> Result<Arc<CalendarPage>, OpError> {
    let key = PageKey { account_id, bindings: bindings.to_vec(), range, query: q.clone() };
    cache.get_or_load(key, reading, || read_page(conn, account_id, bindings, (range, q), now)).await
}

async fn read_page(
    conn: &mut AsyncPgConnection,
    account_id: i64,
    bindings: &[Binding],
    ((from, to), q): ((DateTime<Utc>, DateTime<Utc>), &CalendarQuery),
    now: DateTime<Utc>,
) -> Result<CalendarPage, OpError> {
    let filter = filter_of(conn, account_id, q).await?;
    let entries = entries(conn, account_id, bindings, (from, to), now, &filter).await?;
    let freezes = crate::ops::freezes::visible(conn, account_id, bindings)
        .await?
        .iter()
        .filter(|f| filter.environment.as_ref().is_none_or(|e| f.environments.contains(e)))
        .flat_map(|f| f.windows(from, to).into_iter().map(move |(s, e)| (format!("{} ({})", f.reason, f.environments.join(", ")), s, e)))
        .collect();
    let choices = crate::db::models::calendar::filter_choices(conn, account_id).await?;
    Ok(CalendarPage { filter, entries, freezes, choices })
}

/// Releases that conflict with this one's calendar window (for warnings when scheduling, and its
/// page); none for a release without a time.
pub async fn conflicting_with(
    conn: &mut AsyncPgConnection,
    candidate: &Release,
    bindings: &[Binding],
    now: DateTime<Utc>,
) -> QueryResult<Vec<(i64, String)>> {
    let window = crate::domain::schedule::calendar_window(
        (candidate.schedule_start, candidate.schedule_end),
        (candidate.activated_at, candidate.finished_at),
        now,
    );
    let Some((start, end)) = window else { return Ok(Vec::new()) };
    // An instant window (a release that starts and ends at once) still meets others at its time.
    let end = end.max(start + chrono::TimeDelta::seconds(1));
    let found = entries(conn, candidate.account_id, bindings, (start, end), now, &Filter::default()).await?;
    Ok(found
        .iter()
        .find(|e| e.release.id == candidate.id)
        .map(|me| found.iter().filter(|e| me.conflicts.contains(&e.release.id)).map(|e| (e.release.id, e.release.name.clone())).collect())
        .unwrap_or_default())
}

/// Warnings (and an audit record) when a release's window conflicts with others: scheduling
/// into a conflict is allowed, but never silent.
pub async fn warn_conflicts(
    conn: &mut AsyncPgConnection,
    release: &Release,
    bindings: &[Binding],
    actor: &str,
    now: DateTime<Utc>,
) -> QueryResult<Vec<String>> {
    let others = conflicting_with(conn, release, bindings, now).await?;
    if others.is_empty() {
        return Ok(Vec::new());
    }
    crate::db::audit::append(
        conn,
        crate::db::audit::NewEvent::release(release, actor, "release.conflict_warning")
            .with_details(serde_json::json!({"conflicts_with": others.iter().map(|(id, _)| id).collect::<Vec<_>>()})),
        now,
    )
    .await?;
    Ok(others
        .into_iter()
        .map(|(id, name)| format!("This window conflicts with release #{id} \"{name}\" on a shared environment."))
        .collect())
}

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

/// The user whose (unrevoked) feed this token opens.
pub async fn feed_owner(conn: &mut AsyncPgConnection, token: &str) -> QueryResult<Option<i64>> {
    calendar_feeds::table
        .filter(calendar_feeds::token_hash.eq(sha256_hex(token)))
        .filter(calendar_feeds::revoked_at.is_null())
        .select(calendar_feeds::user_id)
        .first(conn)
        .await
        .optional()
}
