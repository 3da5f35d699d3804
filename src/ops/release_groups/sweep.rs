//! The sweep: every unpaused group's upcoming occurrences become releases, exactly once each.

use chrono::{DateTime, TimeDelta, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use super::ReleaseGroup;
use crate::db::models::processes::InputSet;
use crate::db::schema::{release_group_skips, release_groups, releases, users};
use crate::domain::release::LinkKind;
use crate::domain::schedule::{group_name, occurrences};
use crate::ops::{Actor, OpError};
use crate::security::SecretBox;

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
                Err(e) => tracing::warn!(group = g.id, error = ?e, "release group occurrence not created"),
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
    let input = crate::ops::releases::ReleaseInput {
        process_id: Some(g.process_id),
        name: Some(group_name(&g.name_template, local)),
        owner,
        input_set,
        release_type: Some(g.release_type.as_str().to_owned()),
        stakeholders: Some(g.stakeholders.clone()),
        schedule: Some(Some(crate::ops::releases::ScheduleInput {
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
    let mut prepared = crate::ops::releases::prepare(conn, &actor, &g.time_zone, secrets, &input, None, false).await?;
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
    match crate::ops::releases::create(conn, &actor, prepared, false, now).await {
        Ok(_) => Ok(true),
        Err(OpError::Db(diesel::result::Error::DatabaseError(diesel::result::DatabaseErrorKind::UniqueViolation, _))) => Ok(false),
        Err(e) => Err(e),
    }
}
