//! What the calendar, the feed and the dashboard read of releases: the narrow row of a release in
//! a time window (no inputs, variables or history), with the release it is a hotfix for, in one
//! statement; and the names the calendar's filters offer, in another.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{Array, Jsonb, Text, Timestamptz};
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use super::releases::scope_of;
use crate::db::prepared::prepared;
use crate::db::schema::{release_links, releases};
use crate::domain::policy::Scope;
use crate::domain::release::{LinkKind, ReleaseType, State, Status};

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = releases)]
pub struct CalendarRow {
    pub id: i64,
    pub org_id: Option<i64>,
    pub name: String,
    pub release_type: ReleaseType,
    pub state: State,
    pub status: Status,
    pub schedule_start: Option<DateTime<Utc>>,
    pub schedule_end: Option<DateTime<Utc>>,
    pub owner_id: Option<i64>,
    pub environments: Vec<String>,
    pub services: Vec<String>,
    pub release_group_id: Option<i64>,
    pub activated_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
}

impl CalendarRow {
    /// Its calendar window (DESIGN §6): the scheduled window, or for a release without one,
    /// from its activation to its finish, or to `now` while it is in flight. `None`: no time
    /// (an unscheduled draft).
    pub fn window(&self, now: DateTime<Utc>) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
        crate::domain::schedule::calendar_window((self.schedule_start, self.schedule_end), (self.activated_at, self.finished_at), now)
    }

    pub fn scope(&self) -> Scope {
        scope_of(self.org_id)
    }

    pub fn state(&self) -> State {
        self.state
    }

    pub fn status(&self) -> Status {
        self.status
    }
}

/// Releases (not archived) whose calendar window meets [from, to), in start order, each with
/// the release it is a hotfix for: scheduled ones by their window, unscheduled ones from their
/// activation to their finish, or to `now` while in flight.
pub async fn in_window(
    conn: &mut AsyncPgConnection,
    account_id: i64,
    (from, to): (DateTime<Utc>, DateTime<Utc>),
    now: DateTime<Utc>,
) -> QueryResult<Vec<(CalendarRow, Option<i64>)>> {
    // An unscheduled release's window ends at `now` at the latest: it meets [from, to) when its
    // [activation, finish) meets [from, min(to, now)] (now included: one activated this instant
    // is on the calendar; an empty range once `from` is past now).
    let (unscheduled_to, bounds) = if now < from {
        (from, "'[)')))")
    } else if now < to {
        (now, "'[]')))")
    } else {
        (to, "'[)')))")
    };
    let hotfix_for = release_links::table
        .filter(release_links::release_id.eq(releases::id))
        .filter(release_links::kind.eq(LinkKind::HotfixFor))
        .select(release_links::target_id)
        .limit(1)
        .single_value();
    releases::table
        .filter(releases::account_id.eq(account_id))
        .filter(releases::state.ne(State::Archived))
        // In the forms the GiST indexes `releases_window` and `releases_unscheduled_window` answer.
        .filter(
            diesel::dsl::sql::<diesel::sql_types::Bool>(
                "((schedule_start IS NOT NULL AND schedule_end IS NOT NULL AND tstzrange(schedule_start, schedule_end, '[)') && tstzrange(",
            )
            .bind::<Timestamptz, _>(from)
            .sql(", ")
            .bind::<Timestamptz, _>(to)
            .sql(
                ", '[)')) OR (schedule_start IS NULL AND activated_at IS NOT NULL \
                 AND tstzrange(activated_at, CASE WHEN finished_at < activated_at THEN activated_at ELSE finished_at END, '[)') \
                 && tstzrange(",
            )
            .bind::<Timestamptz, _>(from)
            .sql(", ")
            .bind::<Timestamptz, _>(unscheduled_to)
            .sql(", ")
            .sql(bounds),
        )
        .order((diesel::dsl::sql::<diesel::sql_types::Nullable<Timestamptz>>("COALESCE(schedule_start, activated_at)"), releases::id))
        .select((CalendarRow::as_select(), hotfix_for))
        .load(conn)
        .await
}

/// The choices of the calendar's filters: organizations (slug, name), environments in their
/// order, services by name.
#[derive(Debug, Clone, Default, QueryableByName)]
pub struct FilterChoices {
    #[diesel(sql_type = Jsonb)]
    pub orgs: serde_json::Value,
    #[diesel(sql_type = Array<Text>)]
    pub environments: Vec<String>,
    #[diesel(sql_type = Array<Text>)]
    pub services: Vec<String>,
    /// (id, name) of the account's release groups.
    #[diesel(sql_type = Jsonb)]
    pub groups: serde_json::Value,
}

#[derive(Debug, Clone, serde::Deserialize)]
pub struct OrgChoice {
    pub slug: String,
    pub name: String,
}

impl FilterChoices {
    pub fn orgs(&self) -> Vec<OrgChoice> {
        serde_json::from_value(self.orgs.clone()).unwrap_or_default()
    }

    /// (id, name) of the release groups.
    pub fn groups(&self) -> Vec<(i64, String)> {
        serde_json::from_value(self.groups.clone()).unwrap_or_default()
    }
}

pub async fn filter_choices(conn: &mut AsyncPgConnection, account_id: i64) -> QueryResult<FilterChoices> {
    prepared(diesel::sql_query(
        "SELECT COALESCE((SELECT jsonb_agg(jsonb_build_object('slug', slug, 'name', name) ORDER BY slug) FROM organizations WHERE account_id = $1), '[]') AS orgs, \
                ARRAY(SELECT name FROM environments WHERE account_id = $1 ORDER BY position, name) AS environments, \
                ARRAY(SELECT name FROM services WHERE account_id = $1 ORDER BY name) AS services, \
                COALESCE((SELECT jsonb_agg(jsonb_build_array(id, name) ORDER BY name) FROM release_groups WHERE account_id = $1), '[]') AS groups",
    )
    .bind::<diesel::sql_types::BigInt, _>(account_id))
    .get_result(conn)
    .await
}
