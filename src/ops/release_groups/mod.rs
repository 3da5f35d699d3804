//! Release groups (DESIGN §5): a process, an input set and an RRULE make one release per
//! occurrence within the horizon — exactly once each, even with several servers sweeping.

use std::collections::HashMap;

use chrono::{DateTime, NaiveDateTime, TimeDelta, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use serde::Deserialize;
use serde_json::json;

use super::{duplicate, Actor, OpError};
use crate::db::audit::{self, NewEvent};
use crate::db::models::processes::{InputSet, Process};
use crate::db::models::releases::Release;
use crate::db::schema::{release_group_skips, release_groups, releases, users};
use crate::domain::process::time::parse_duration;
use crate::domain::release::LinkKind;
use crate::domain::schedule::{group_name, occurrences};
use crate::domain::validate::{self as fields, FieldErrors};
use crate::security::SecretBox;

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = release_groups)]
pub struct ReleaseGroup {
    pub id: i64,
    pub account_id: i64,
    pub org_id: Option<i64>,
    pub name: String,
    pub process_id: i64,
    pub input_set_id: Option<i64>,
    pub rrule: String,
    pub dtstart: NaiveDateTime,
    pub time_zone: String,
    pub duration_minutes: i32,
    pub name_template: String,
    pub horizon_days: i32,
    pub paused: bool,
    pub require_previous_finished: bool,
    pub owner_id: Option<i64>,
    pub created_at: DateTime<Utc>,
}

impl ReleaseGroup {
    pub fn zone(&self) -> chrono_tz::Tz {
        self.time_zone.parse().unwrap_or(chrono_tz::UTC)
    }

    /// The next `n` occurrences from `from` (for the preview).
    pub fn next(&self, from: DateTime<Utc>, n: usize) -> Vec<DateTime<Utc>> {
        occurrences(&self.rrule, self.dtstart, self.zone(), from, from + TimeDelta::days(3660))
            .map(|v| v.into_iter().take(n).collect())
            .unwrap_or_default()
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct ReleaseGroupInput {
    pub name: String,
    pub process_id: String,
    pub input_set: String,
    pub rrule: String,
    pub dtstart: String,
    pub time_zone: String,
    pub duration: String,
    pub name_template: String,
    pub horizon_days: String,
    pub require_previous_finished: Option<String>,
}

pub const MAX_HORIZON_DAYS: i64 = 366;

pub async fn create(
    conn: &mut AsyncPgConnection,
    actor: &Actor,
    input: &ReleaseGroupInput,
    now: DateTime<Utc>,
) -> Result<ReleaseGroup, OpError> {
    let mut errors = FieldErrors::new();
    let name = errors.check("name", fields::name(&input.name));
    let process = match input.process_id.trim().parse::<i64>() {
        Ok(id) => match Process::find(conn, actor.account_id, id).await {
            Ok(p) if p.latest_version > 0 => Some(p),
            _ => {
                errors.add("process_id", format!("there is no saved process {id}"));
                None
            }
        },
        Err(_) => {
            errors.add("process_id", "is required");
            None
        }
    };
    let input_set = match (&process, input.input_set.trim()) {
        (_, "") => None,
        (Some(p), set) => match InputSet::by_name(conn, actor.account_id, p.id, set).await {
            Ok(s) => Some(s.id),
            Err(_) => {
                errors.add("input_set", format!("the process has no input set {set:?}"));
                None
            }
        },
        (None, _) => None,
    };
    let zone = errors.check("time_zone", fields::time_zone(&input.time_zone));
    let dtstart = match NaiveDateTime::parse_from_str(input.dtstart.trim(), "%Y-%m-%dT%H:%M") {
        Ok(d) => Some(d),
        Err(_) => {
            errors.add("dtstart", format!("{:?} is not a local date and time (YYYY-MM-DDTHH:MM)", input.dtstart.trim()));
            None
        }
    };
    if let (Some(d), Some(z)) = (dtstart, &zone) {
        let tz: chrono_tz::Tz = z.parse().unwrap_or(chrono_tz::UTC);
        if let Err(m) = occurrences(&input.rrule, d, tz, now, now + TimeDelta::days(1)) {
            errors.add("rrule", m);
        }
    } else if input.rrule.trim().is_empty() {
        errors.add("rrule", "is required, e.g. FREQ=WEEKLY;BYDAY=MO");
    }
    let duration = match parse_duration(&input.duration) {
        Ok(d) if d.num_minutes() >= 1 => Some(d.num_minutes() as i32),
        _ => {
            errors.add("duration", format!("{:?} is not a duration (e.g. 4h, 22d)", input.duration.trim()));
            None
        }
    };
    let template = errors.check("name_template", fields::name(&input.name_template));
    let horizon = match input.horizon_days.trim().parse::<i64>() {
        Ok(h) if (1..=MAX_HORIZON_DAYS).contains(&h) => Some(h as i32),
        _ => {
            errors.add("horizon_days", format!("must be a number of days from 1 to {MAX_HORIZON_DAYS}"));
            None
        }
    };
    let (Some(name), Some(process), Some(zone), Some(dtstart), Some(duration), Some(template), Some(horizon)) =
        (name, process, zone, dtstart, duration, template, horizon)
    else {
        return Err(OpError::Invalid(errors));
    };
    errors.into_result()?;
    conn.transaction(async |conn| {
        let group: ReleaseGroup = diesel::insert_into(release_groups::table)
            .values((
                release_groups::account_id.eq(actor.account_id),
                release_groups::org_id.eq(process.org_id),
                release_groups::name.eq(&name),
                release_groups::process_id.eq(process.id),
                release_groups::input_set_id.eq(input_set),
                release_groups::rrule.eq(input.rrule.trim().trim_start_matches("RRULE:")),
                release_groups::dtstart.eq(dtstart),
                release_groups::time_zone.eq(&zone),
                release_groups::duration_minutes.eq(duration),
                release_groups::name_template.eq(&template),
                release_groups::horizon_days.eq(horizon),
                release_groups::require_previous_finished.eq(input.require_previous_finished.is_some()),
                release_groups::owner_id.eq(actor.user_id),
                release_groups::created_at.eq(now),
            ))
            .returning(ReleaseGroup::as_returning())
            .get_result(conn)
            .await
            .map_err(|e| duplicate(e, "name", || format!("a release group {name:?} already exists")))?;
        audit::append(
            conn,
            NewEvent::account(actor.account_id, &actor.label, "release_group.create", format!("release_group:{}", group.id))
                .with_details(json!({"name": name, "rrule": group.rrule})),
            now,
        )
        .await?;
        Ok(group)
    })
    .await
}

pub async fn list(conn: &mut AsyncPgConnection, account_id: i64) -> QueryResult<Vec<ReleaseGroup>> {
    release_groups::table
        .filter(release_groups::account_id.eq(account_id))
        .order(release_groups::name)
        .select(ReleaseGroup::as_select())
        .load(conn)
        .await
}

pub async fn find(conn: &mut AsyncPgConnection, account_id: i64, id: i64) -> QueryResult<ReleaseGroup> {
    release_groups::table
        .filter(release_groups::account_id.eq(account_id))
        .filter(release_groups::id.eq(id))
        .select(ReleaseGroup::as_select())
        .first(conn)
        .await
}

pub async fn set_paused(conn: &mut AsyncPgConnection, actor: &Actor, id: i64, paused: bool, now: DateTime<Utc>) -> Result<(), OpError> {
    let group = find(conn, actor.account_id, id).await?;
    diesel::update(release_groups::table.find(group.id)).set(release_groups::paused.eq(paused)).execute(conn).await?;
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
    Ok(())
}

/// Skips one occurrence (a holiday): it is never created.
pub async fn skip(
    conn: &mut AsyncPgConnection,
    actor: &Actor,
    id: i64,
    occurrence: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<(), OpError> {
    let group = find(conn, actor.account_id, id).await?;
    diesel::insert_into(release_group_skips::table)
        .values((release_group_skips::group_id.eq(group.id), release_group_skips::occurrence.eq(occurrence)))
        .on_conflict_do_nothing()
        .execute(conn)
        .await?;
    audit::append(
        conn,
        NewEvent::account(actor.account_id, &actor.label, "release_group.skip", format!("release_group:{id}"))
            .with_details(json!({"occurrence": occurrence})),
        now,
    )
    .await?;
    Ok(())
}

/// Creates the releases of every group's upcoming occurrences (exactly once each: a unique key
/// on group + occurrence); returns how many it created.
pub async fn sweep(conn: &mut AsyncPgConnection, secrets: &SecretBox, now: DateTime<Utc>) -> Result<usize, OpError> {
    let groups: Vec<ReleaseGroup> =
        release_groups::table.filter(release_groups::paused.eq(false)).select(ReleaseGroup::as_select()).load(conn).await?;
    let mut created = 0;
    for g in groups {
        let upcoming =
            occurrences(&g.rrule, g.dtstart, g.zone(), now, now + TimeDelta::days(i64::from(g.horizon_days))).unwrap_or_default();
        let skipped: Vec<DateTime<Utc>> = release_group_skips::table
            .filter(release_group_skips::group_id.eq(g.id))
            .select(release_group_skips::occurrence)
            .load(conn)
            .await?;
        let existing: Vec<DateTime<Utc>> = releases::table
            .filter(releases::release_group_id.eq(g.id))
            .filter(releases::occurrence.is_not_null())
            .select(releases::occurrence.assume_not_null())
            .load(conn)
            .await?;
        for occurrence in upcoming.into_iter().filter(|o| !skipped.contains(o) && !existing.contains(o)) {
            match create_occurrence(conn, secrets, &g, occurrence, now).await {
                Ok(true) => created += 1,
                Ok(false) => {}
                Err(e) => tracing::warn!(group = g.id, error = %e, "release group occurrence not created"),
            }
        }
    }
    Ok(created)
}

/// One occurrence's release; `false` when another server created it first.
async fn create_occurrence(
    conn: &mut AsyncPgConnection,
    secrets: &SecretBox,
    g: &ReleaseGroup,
    occurrence: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<bool, OpError> {
    let owner = match g.owner_id {
        Some(id) => Some(format!("user:{}", users::table.find(id).select(users::email).first::<String>(conn).await?)),
        None => None,
    };
    let input_set = match g.input_set_id {
        Some(id) => Some(InputSet::find(conn, g.account_id, g.process_id, id).await?.name),
        None => None,
    };
    let local = occurrence.with_timezone(&g.zone()).naive_local();
    let input = super::releases::ReleaseInput {
        process_id: Some(g.process_id),
        name: Some(group_name(&g.name_template, local)),
        owner,
        input_set,
        release_type: Some("system".into()),
        schedule: Some(Some(super::releases::ScheduleInput {
            start: occurrence.to_rfc3339(),
            end: (occurrence + TimeDelta::minutes(i64::from(g.duration_minutes))).to_rfc3339(),
            time_zone: Some(g.time_zone.clone()),
        })),
        org: Some(match g.org_id {
            Some(id) => Some(crate::db::models::accounts::Organization::find(conn, g.account_id, id).await?.slug),
            None => None,
        }),
        ..Default::default()
    };
    let actor = Actor { user_id: g.owner_id, account_id: g.account_id, label: format!("system:release_group:{}", g.id) };
    let mut prepared = super::releases::prepare(conn, &actor, &g.time_zone, secrets, &input, None, false).await?;
    prepared.fields.release_group_id = Some(g.id);
    prepared.fields.occurrence = Some(occurrence);
    if g.require_previous_finished {
        let previous: Option<i64> = releases::table
            .filter(releases::release_group_id.eq(g.id))
            .filter(releases::occurrence.lt(occurrence))
            .order(releases::occurrence.desc())
            .select(releases::id)
            .first(conn)
            .await
            .optional()?;
        if let Some(p) = previous {
            prepared.links.push((LinkKind::DependsOn, p));
        }
    }
    match super::releases::create(conn, &actor, prepared, false, now).await {
        Ok(_) => Ok(true),
        Err(OpError::Db(diesel::result::Error::DatabaseError(diesel::result::DatabaseErrorKind::UniqueViolation, _))) => Ok(false),
        Err(e) => Err(e),
    }
}

/// The releases each group made, oldest occurrence first: one query for a whole page of groups.
pub async fn releases_of(conn: &mut AsyncPgConnection, group_ids: &[i64]) -> QueryResult<HashMap<i64, Vec<Release>>> {
    let rows: Vec<Release> = releases::table
        .filter(releases::release_group_id.eq_any(group_ids))
        .order((releases::release_group_id, releases::occurrence))
        .select(Release::as_select())
        .load(conn)
        .await?;
    let mut by_group: HashMap<i64, Vec<Release>> = HashMap::new();
    for release in rows {
        if let Some(group_id) = release.release_group_id {
            by_group.entry(group_id).or_default().push(release);
        }
    }
    Ok(by_group)
}
