//! A group's life after its creation: pause and resume, skipped occurrences, the preview, and
//! deletion with its future drafts.

use chrono::{DateTime, NaiveDate, NaiveTime, TimeDelta, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use serde_json::json;

use super::{find, find_for_update, ReleaseGroup};
use crate::db::audit::{self, NewEvent};
use crate::db::schema::{release_group_skips, release_groups, releases};
use crate::domain::release::State;
use crate::domain::schedule::{group_name, occurrences};
use crate::ops::{Actor, OpError};

pub async fn set_paused(
    conn: &mut AsyncPgConnection,
    actor: &Actor,
    id: i64,
    paused: bool,
    now: DateTime<Utc>,
) -> Result<ReleaseGroup, OpError> {
    conn.transaction(async |conn| {
        let group = find_for_update(conn, actor.account_id, id).await?;
        let group: ReleaseGroup = diesel::update(release_groups::table.find(group.id))
            .set(release_groups::paused.eq(paused))
            .returning(ReleaseGroup::as_returning())
            .get_result(conn)
            .await?;
        audit::append(
            conn,
            NewEvent::account(
                actor.account_id,
                &actor.label,
                if paused { "release_group.pause" } else { "release_group.resume" },
                format!("release_group:{id}"),
            ),
            now,
        )
        .await?;
        Ok(group)
    })
    .await
}

/// What `skip` accepts: one occurrence (RFC 3339), or a local date whose occurrences all go.
pub fn occurrences_named(group: &ReleaseGroup, text: &str) -> Result<Vec<DateTime<Utc>>, OpError> {
    let text = text.trim();
    if let Ok(at) = DateTime::parse_from_rfc3339(text) {
        return Ok(vec![at.with_timezone(&Utc)]);
    }
    let Ok(day) = NaiveDate::parse_from_str(text, "%Y-%m-%d") else {
        return Err(OpError::invalid("date", format!("{text:?} is not a date (YYYY-MM-DD) or an occurrence time (RFC 3339)")));
    };
    let zone = group.zone();
    let local_midnight = |d: NaiveDate| {
        d.and_time(NaiveTime::MIN)
            .and_local_timezone(zone)
            .earliest()
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_else(|| d.and_time(NaiveTime::MIN).and_utc())
    };
    let (from, to) = (local_midnight(day), local_midnight(day + TimeDelta::days(1)));
    let found: Vec<DateTime<Utc>> = occurrences(&group.rrule, group.dtstart, zone, from, to)
        .unwrap_or_default()
        .into_iter()
        .filter(|t| *t >= from && *t < to)
        .collect();
    if found.is_empty() {
        return Err(OpError::invalid("date", format!("the group has no occurrence on {day}")));
    }
    Ok(found)
}

/// Skips occurrences (a holiday): they are never created, and a draft already made for one is
/// deleted. Returns the deleted drafts.
pub async fn skip(
    conn: &mut AsyncPgConnection,
    actor: &Actor,
    id: i64,
    skipped: &[DateTime<Utc>],
    now: DateTime<Utc>,
) -> Result<Vec<i64>, OpError> {
    conn.transaction(async |conn| {
        let group = find_for_update(conn, actor.account_id, id).await?;
        for occurrence in skipped {
            diesel::insert_into(release_group_skips::table)
                .values((release_group_skips::group_id.eq(group.id), release_group_skips::occurrence.eq(occurrence)))
                .on_conflict_do_nothing()
                .execute(conn)
                .await?;
        }
        let drafts: Vec<i64> = releases::table
            .filter(releases::release_group_id.eq(group.id))
            .filter(releases::occurrence.eq_any(skipped))
            .filter(releases::state.eq(State::Draft.as_str()))
            .select(releases::id)
            .load(conn)
            .await?;
        audit::append(
            conn,
            NewEvent::account(actor.account_id, &actor.label, "release_group.skip", format!("release_group:{id}"))
                .with_details(json!({"occurrences": skipped, "deleted_drafts": drafts})),
            now,
        )
        .await?;
        for draft in &drafts {
            crate::ops::releases::delete(conn, actor, *draft, 0, now).await?;
        }
        Ok(drafts)
    })
    .await
}

/// One upcoming occurrence as the preview shows it.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct Occurrence {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    /// The start in the group's time zone, e.g. `Mon 2026-12-07 09:00 CET`.
    pub local_start: String,
    pub name: String,
    pub skipped: bool,
    /// The release already made for it, if any.
    pub release_id: Option<i64>,
}

/// The next `n` occurrences from `now`, DST-correct in the group's zone.
pub async fn preview(conn: &mut AsyncPgConnection, group: &ReleaseGroup, n: usize, now: DateTime<Utc>) -> QueryResult<Vec<Occurrence>> {
    let starts = group.next(now, n);
    let skips: Vec<DateTime<Utc>> = release_group_skips::table
        .filter(release_group_skips::group_id.eq(group.id))
        .filter(release_group_skips::occurrence.eq_any(&starts))
        .select(release_group_skips::occurrence)
        .load(conn)
        .await?;
    let made: Vec<(DateTime<Utc>, i64)> = releases::table
        .filter(releases::release_group_id.eq(group.id))
        .filter(releases::occurrence.eq_any(&starts))
        .select((releases::occurrence.assume_not_null(), releases::id))
        .load(conn)
        .await?;
    let zone = group.zone();
    Ok(starts
        .into_iter()
        .map(|start| {
            let local = start.with_timezone(&zone);
            Occurrence {
                start,
                end: start + TimeDelta::minutes(i64::from(group.duration_minutes)),
                local_start: local.format("%a %Y-%m-%d %H:%M %Z").to_string(),
                name: group_name(&group.name_template, local.naive_local()),
                skipped: skips.contains(&start),
                release_id: made.iter().find(|(at, _)| *at == start).map(|(_, id)| *id),
            }
        })
        .collect())
}

/// The drafts a deletion of the group deletes with it (the page lists them before).
pub async fn drafts_of(conn: &mut AsyncPgConnection, group_id: i64) -> QueryResult<Vec<(i64, String)>> {
    releases::table
        .filter(releases::release_group_id.eq(group_id))
        .filter(releases::state.eq(State::Draft.as_str()))
        .order(releases::occurrence)
        .select((releases::id, releases::name))
        .load(conn)
        .await
}

/// Deletes a group and its drafts; its active and finished releases stay, no longer grouped.
/// Returns the deleted drafts.
pub async fn delete(conn: &mut AsyncPgConnection, actor: &Actor, id: i64, now: DateTime<Utc>) -> Result<Vec<i64>, OpError> {
    conn.transaction(async |conn| {
        let group = find_for_update(conn, actor.account_id, id).await?;
        let drafts: Vec<i64> = drafts_of(conn, group.id).await?.into_iter().map(|(id, _)| id).collect();
        for draft in &drafts {
            crate::ops::releases::delete(conn, actor, *draft, 0, now).await?;
        }
        let kept: Vec<i64> = diesel::update(releases::table.filter(releases::release_group_id.eq(group.id)))
            .set(releases::release_group_id.eq(None::<i64>))
            .returning(releases::id)
            .get_results(conn)
            .await?;
        diesel::delete(release_groups::table.find(group.id)).execute(conn).await?;
        audit::append(
            conn,
            NewEvent::account(actor.account_id, &actor.label, "release_group.delete", format!("release_group:{id}"))
                .with_details(json!({"name": group.name, "deleted_drafts": drafts, "kept_releases": kept})),
            now,
        )
        .await?;
        Ok(drafts)
    })
    .await
}

/// The group, if it exists in the account.
pub async fn get(conn: &mut AsyncPgConnection, account_id: i64, id: i64) -> Result<ReleaseGroup, OpError> {
    Ok(find(conn, account_id, id).await?)
}
