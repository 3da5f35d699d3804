//! Releases, their links and their per-release phase and activity copies.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde_json::Value;

use crate::db::schema::{release_activities, release_links, release_phases, releases};
use crate::domain::engine::Node;
use crate::domain::policy::Scope;
use crate::domain::process::definition::{ActivityKind, OnFailure};
use crate::domain::release::LinkKind;
use crate::domain::release::{Hold, ReleaseType, State, Status};

#[derive(Debug, Clone, Queryable, Selectable, Identifiable)]
#[diesel(table_name = releases)]
pub struct Release {
    pub id: i64,
    pub account_id: i64,
    pub org_id: Option<i64>,
    pub name: String,
    pub release_type: ReleaseType,
    pub process_id: i64,
    pub process_version: i32,
    pub inputs: Value,
    pub variables: Value,
    pub schedule_start: Option<DateTime<Utc>>,
    pub schedule_end: Option<DateTime<Utc>>,
    pub time_zone: String,
    pub owner_id: Option<i64>,
    pub stakeholders: Vec<String>,
    pub environments: Vec<String>,
    pub services: Vec<String>,
    pub state: State,
    pub status: Status,
    pub status_reason: Option<String>,
    pub lock_version: i32,
    pub created_by: Option<i64>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub activated_at: Option<DateTime<Utc>>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub archived_at: Option<DateTime<Utc>>,
    pub next_eval_at: Option<DateTime<Utc>>,
    pub failing: bool,
    pub artifacts: Value,
    pub release_group_id: Option<i64>,
    pub occurrence: Option<DateTime<Utc>>,
    /// Why it waits, when it is OnHold (the reason's text is for people).
    pub hold: Option<Hold>,
    /// Consecutive advances that failed in the database (DESIGN §9).
    pub engine_failures: i32,
    /// When the activation sweep last found that this due draft cannot start.
    pub refused_at: Option<DateTime<Utc>>,
}

/// How any row of a release reads its level.
pub fn scope_of(org_id: Option<i64>) -> Scope {
    org_id.map_or(Scope::Account, Scope::Org)
}

/// The editable fields of a release (a draft's whole content).
#[derive(Debug, Clone, Insertable, AsChangeset)]
#[diesel(table_name = releases, treat_none_as_null = true)]
pub struct ReleaseFields {
    pub org_id: Option<i64>,
    pub name: String,
    pub release_type: ReleaseType,
    pub process_id: i64,
    pub process_version: i32,
    pub inputs: Value,
    pub variables: Value,
    pub schedule_start: Option<DateTime<Utc>>,
    pub schedule_end: Option<DateTime<Utc>>,
    pub time_zone: String,
    pub owner_id: Option<i64>,
    pub stakeholders: Vec<String>,
    pub environments: Vec<String>,
    pub services: Vec<String>,
    pub release_group_id: Option<i64>,
    pub occurrence: Option<DateTime<Utc>>,
}

/// Where a release ended up: its state, status and when it finished.
#[derive(Debug, Clone, Copy)]
pub struct Outcome {
    pub state: State,
    pub status: Status,
    pub finished_at: Option<DateTime<Utc>>,
}

impl Release {
    /// The release's start: its scheduled start, or its activation time when it has none.
    pub fn start(&self) -> DateTime<Utc> {
        self.schedule_start.or(self.activated_at).unwrap_or(self.created_at)
    }

    pub fn zone(&self) -> chrono_tz::Tz {
        self.time_zone.parse().unwrap_or(chrono_tz::UTC)
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

    pub fn fields(&self) -> ReleaseFields {
        ReleaseFields {
            org_id: self.org_id,
            name: self.name.clone(),
            release_type: self.release_type,
            process_id: self.process_id,
            process_version: self.process_version,
            inputs: self.inputs.clone(),
            variables: self.variables.clone(),
            schedule_start: self.schedule_start,
            schedule_end: self.schedule_end,
            time_zone: self.time_zone.clone(),
            owner_id: self.owner_id,
            stakeholders: self.stakeholders.clone(),
            environments: self.environments.clone(),
            services: self.services.clone(),
            release_group_id: self.release_group_id,
            occurrence: self.occurrence,
        }
    }

    pub async fn insert(
        conn: &mut AsyncPgConnection,
        account_id: i64,
        fields: &ReleaseFields,
        created_by: Option<i64>,
        now: DateTime<Utc>,
    ) -> QueryResult<Release> {
        diesel::insert_into(releases::table)
            .values((
                fields,
                releases::account_id.eq(account_id),
                releases::created_by.eq(created_by),
                releases::created_at.eq(now),
                releases::updated_at.eq(now),
            ))
            .returning(Release::as_returning())
            .get_result(conn)
            .await
    }

    pub async fn find(conn: &mut AsyncPgConnection, account_id: i64, id: i64) -> QueryResult<Release> {
        releases::table
            .filter(releases::account_id.eq(account_id))
            .filter(releases::id.eq(id))
            .select(Release::as_select())
            .first(conn)
            .await
    }

    pub async fn lock(conn: &mut AsyncPgConnection, account_id: i64, id: i64) -> QueryResult<Release> {
        releases::table
            .filter(releases::account_id.eq(account_id))
            .filter(releases::id.eq(id))
            .select(Release::as_select())
            .for_update()
            .first(conn)
            .await
    }

    /// Marks these drafts active and running from `now`, in one statement; returns them.
    pub async fn mark_active(conn: &mut AsyncPgConnection, ids: &[i64], now: DateTime<Utc>) -> QueryResult<Vec<Release>> {
        diesel::update(releases::table.filter(releases::id.eq_any(ids)))
            .set((
                releases::state.eq(State::Active.as_str()),
                releases::status.eq(Status::Running.as_str()),
                releases::status_reason.eq(None::<String>),
                releases::refused_at.eq(None::<DateTime<Utc>>),
                releases::hold.eq(None::<Hold>),
                releases::activated_at.eq(now),
                releases::started_at.eq(now),
                releases::next_eval_at.eq(now),
                releases::lock_version.eq(releases::lock_version + 1),
                releases::updated_at.eq(now),
            ))
            .returning(Release::as_returning())
            .get_results(conn)
            .await
    }

    /// Moves a release's schedule (Run now makes now its start).
    pub async fn set_schedule(
        conn: &mut AsyncPgConnection,
        id: i64,
        start: Option<DateTime<Utc>>,
        end: Option<DateTime<Utc>>,
    ) -> QueryResult<Release> {
        diesel::update(releases::table.find(id))
            .set((releases::schedule_start.eq(start), releases::schedule_end.eq(end)))
            .returning(Release::as_returning())
            .get_result(conn)
            .await
    }

    /// Sets the outcome of a release (recorded history; see `ops::releases::record_outcome`).
    pub async fn set_outcome(conn: &mut AsyncPgConnection, id: i64, outcome: Outcome, activated_at: DateTime<Utc>) -> QueryResult<Release> {
        diesel::update(releases::table.find(id))
            .set((
                releases::state.eq(outcome.state.as_str()),
                releases::status.eq(outcome.status.as_str()),
                releases::finished_at.eq(outcome.finished_at),
                releases::activated_at.eq(activated_at),
            ))
            .returning(Release::as_returning())
            .get_result(conn)
            .await
    }

    /// Writes new content if the stored lock_version is still `expected`; `None` = someone else won.
    pub async fn update_if_version(
        conn: &mut AsyncPgConnection,
        id: i64,
        expected: i32,
        fields: &ReleaseFields,
        now: DateTime<Utc>,
    ) -> QueryResult<Option<Release>> {
        diesel::update(releases::table.filter(releases::id.eq(id)).filter(releases::lock_version.eq(expected)))
            .set((fields, releases::lock_version.eq(expected + 1), releases::updated_at.eq(now)))
            .returning(Release::as_returning())
            .get_result(conn)
            .await
            .optional()
    }

    pub async fn set_lifecycle(
        conn: &mut AsyncPgConnection,
        id: i64,
        state: State,
        status: Status,
        reason: Option<&str>,
        now: DateTime<Utc>,
    ) -> QueryResult<Release> {
        diesel::update(releases::table.find(id))
            .set((
                releases::state.eq(state),
                releases::status.eq(status),
                releases::status_reason.eq(reason),
                releases::hold.eq(None::<Hold>),
                releases::lock_version.eq(releases::lock_version + 1),
                releases::updated_at.eq(now),
            ))
            .returning(Release::as_returning())
            .get_result(conn)
            .await
    }
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = release_phases)]
pub struct ReleasePhase {
    pub release_id: i64,
    pub key: String,
    pub account_id: i64,
    pub position: i32,
    pub name: String,
    pub owner: String,
    pub depends_on: Vec<String>,
    pub rollback: bool,
    pub status: Node,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub wake_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = release_activities)]
pub struct ReleaseActivity {
    pub release_id: i64,
    pub phase_key: String,
    pub key: String,
    pub account_id: i64,
    pub position: i32,
    pub name: String,
    pub kind: ActivityKind,
    pub owner: String,
    pub depends_on: Vec<String>,
    pub critical: bool,
    pub status: Node,
    pub attempts: i32,
    pub outputs: Value,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub on_failure: OnFailure,
    pub wake_at: Option<DateTime<Utc>>,
    pub status_reason: Option<String>,
    pub eligible: Vec<i64>,
    pub needed: i32,
    pub last_actor: Option<String>,
    pub note: Option<String>,
    pub run_first_attempt: i32,
    pub last_reminded_at: Option<DateTime<Utc>>,
    pub escalation_level: i32,
    /// When the activity's `timeout` runs out, for the run that started last.
    pub deadline: Option<DateTime<Utc>>,
    /// Why it waits, when it is OnHold.
    pub hold: Option<Hold>,
    /// A fan-out instance: the activity it is an instance of, its item (as text) and value.
    pub fan_of: Option<String>,
    pub item: Option<String>,
    pub item_value: Option<Value>,
    /// A fan-out activity whose instances exist: it moves only through them.
    pub fanned: bool,
    /// The deploy lock it waits for, as DESIGN §10 shows it.
    pub waiting_for: Option<Value>,
}

impl ReleaseActivity {
    /// A fan-out instance, rather than an activity of the definition.
    pub fn is_instance(&self) -> bool {
        self.fan_of.is_some()
    }

    /// The key of its activity in the definition (its own key unless it is an instance).
    pub fn activity_key(&self) -> &str {
        self.fan_of.as_deref().unwrap_or(&self.key)
    }

    pub fn node(&self) -> Node {
        self.status
    }

    pub fn is_kind(&self, kind: ActivityKind) -> bool {
        self.kind == kind
    }
}

/// One activity of a release, by (phase key, activity key).
pub type ActivityByKey<'a> = diesel::dsl::Filter<
    diesel::dsl::Filter<
        diesel::dsl::Filter<release_activities::table, diesel::dsl::Eq<release_activities::release_id, i64>>,
        diesel::dsl::Eq<release_activities::phase_key, &'a str>,
    >,
    diesel::dsl::Eq<release_activities::key, &'a str>,
>;

/// The query of one activity of a release (to read or update it).
pub fn activity_by_key<'a>(release_id: i64, phase: &'a str, key: &'a str) -> ActivityByKey<'a> {
    release_activities::table
        .filter(release_activities::release_id.eq(release_id))
        .filter(release_activities::phase_key.eq(phase))
        .filter(release_activities::key.eq(key))
}

/// Replaces a release's phase and activity copies (at creation, owner change, rebase).
pub async fn replace_tree(
    conn: &mut AsyncPgConnection,
    release_id: i64,
    phases: &[ReleasePhase],
    activities: &[ReleaseActivity],
) -> QueryResult<()> {
    diesel::delete(release_phases::table.filter(release_phases::release_id.eq(release_id))).execute(conn).await?;
    diesel::insert_into(release_phases::table).values(phases).execute(conn).await?;
    if !activities.is_empty() {
        diesel::insert_into(release_activities::table).values(activities).execute(conn).await?;
    }
    Ok(())
}

pub async fn tree(conn: &mut AsyncPgConnection, release_id: i64) -> QueryResult<(Vec<ReleasePhase>, Vec<ReleaseActivity>)> {
    // One statement (the engine and the release page read a tree on every step): each phase
    // with each of its activities, or once with none.
    let rows: Vec<(ReleasePhase, Option<ReleaseActivity>)> = release_phases::table
        .left_join(
            release_activities::table.on(release_activities::release_id
                .eq(release_phases::release_id)
                .and(release_activities::phase_key.eq(release_phases::key))),
        )
        .filter(release_phases::release_id.eq(release_id))
        .order((release_phases::position, release_phases::key, release_activities::position.nullable(), release_activities::key.nullable()))
        .select((ReleasePhase::as_select(), Option::<ReleaseActivity>::as_select()))
        .load(conn)
        .await?;
    let mut phases: Vec<ReleasePhase> = Vec::new();
    let mut activities = Vec::with_capacity(rows.len());
    for (phase, activity) in rows {
        if phases.last().is_none_or(|p| p.key != phase.key) {
            phases.push(phase);
        }
        activities.extend(activity);
    }
    activities.sort_by(|a, b| (&a.phase_key, a.position).cmp(&(&b.phase_key, b.position)));
    Ok((phases, activities))
}

/// Marks every unfinished phase and activity Aborted.
pub async fn abort_tree(conn: &mut AsyncPgConnection, release_id: i64, now: DateTime<Utc>) -> QueryResult<()> {
    let open = ["NotStarted", "Waiting", "Running", "OnHold"];
    diesel::update(
        release_activities::table.filter(release_activities::release_id.eq(release_id)).filter(release_activities::status.eq_any(open)),
    )
    .set((release_activities::status.eq(Node::Aborted), release_activities::finished_at.eq(now)))
    .execute(conn)
    .await?;
    diesel::update(release_phases::table.filter(release_phases::release_id.eq(release_id)).filter(release_phases::status.eq_any(open)))
        .set((release_phases::status.eq(Node::Aborted), release_phases::finished_at.eq(now)))
        .execute(conn)
        .await?;
    Ok(())
}

#[derive(Debug, Clone, Queryable, Selectable, serde::Deserialize)]
#[diesel(table_name = release_links)]
pub struct ReleaseLink {
    pub account_id: i64,
    pub release_id: i64,
    pub kind: LinkKind,
    pub target_id: i64,
}

impl ReleaseLink {
    pub fn is(&self, kind: LinkKind) -> bool {
        self.kind == kind
    }
}

pub async fn add_link(
    conn: &mut AsyncPgConnection,
    account_id: i64,
    release_id: i64,
    kind: LinkKind,
    target_id: i64,
) -> QueryResult<usize> {
    diesel::insert_into(release_links::table)
        .values((
            release_links::account_id.eq(account_id),
            release_links::release_id.eq(release_id),
            release_links::kind.eq(kind),
            release_links::target_id.eq(target_id),
        ))
        .on_conflict_do_nothing()
        .execute(conn)
        .await
}

pub async fn links_from(conn: &mut AsyncPgConnection, release_id: i64) -> QueryResult<Vec<ReleaseLink>> {
    release_links::table.filter(release_links::release_id.eq(release_id)).select(ReleaseLink::as_select()).load(conn).await
}

/// The links from each of these releases, in one statement.
pub async fn links_from_each(conn: &mut AsyncPgConnection, release_ids: &[i64]) -> QueryResult<Vec<ReleaseLink>> {
    release_links::table.filter(release_links::release_id.eq_any(release_ids)).select(ReleaseLink::as_select()).load(conn).await
}

/// Every phase and activity owner of these releases, as (release id, principal).
pub async fn owners_of(conn: &mut AsyncPgConnection, release_ids: &[i64]) -> QueryResult<Vec<(i64, String)>> {
    let phases = release_phases::table
        .filter(release_phases::release_id.eq_any(release_ids))
        .select((release_phases::release_id, release_phases::owner));
    let activities = release_activities::table
        .filter(release_activities::release_id.eq_any(release_ids))
        .select((release_activities::release_id, release_activities::owner));
    phases.union_all(activities).load(conn).await
}

/// Links pointing at this release, with the linking release's name.
pub async fn links_to(conn: &mut AsyncPgConnection, release_id: i64) -> QueryResult<Vec<(i64, String, String)>> {
    release_links::table
        .inner_join(releases::table.on(releases::id.eq(release_links::release_id)))
        .filter(release_links::target_id.eq(release_id))
        .select((release_links::release_id, releases::name, release_links::kind))
        .load(conn)
        .await
}

pub async fn remove_links(conn: &mut AsyncPgConnection, release_id: i64, kinds: &[&str]) -> QueryResult<usize> {
    diesel::delete(release_links::table.filter(release_links::release_id.eq(release_id)).filter(release_links::kind.eq_any(kinds)))
        .execute(conn)
        .await
}

pub async fn remove_links_to(conn: &mut AsyncPgConnection, target_id: i64) -> QueryResult<usize> {
    diesel::delete(release_links::table.filter(release_links::target_id.eq(target_id))).execute(conn).await
}

pub async fn count_in_account(conn: &mut AsyncPgConnection, account_id: i64) -> QueryResult<i64> {
    releases::table.filter(releases::account_id.eq(account_id)).count().get_result(conn).await
}

pub type BoxedReleases<'a> = releases::BoxedQuery<'a, diesel::pg::Pg>;

/// Only the releases these rights may see (account level, every org, or the named orgs).
pub fn visible<'a>(mut q: BoxedReleases<'a>, vis: &crate::domain::policy::Visibility) -> BoxedReleases<'a> {
    if vis.all_orgs && !vis.account_level {
        q = q.filter(releases::org_id.is_not_null());
    } else if !vis.all_orgs {
        let orgs = vis.orgs.clone();
        q = if vis.account_level {
            q.filter(releases::org_id.is_null().or(releases::org_id.eq_any(orgs)))
        } else {
            q.filter(releases::org_id.eq_any(orgs))
        };
    }
    q
}

/// Filters of the release list (all optional).
#[derive(Debug, Clone, Default)]
pub struct ListFilter {
    pub state: Option<String>,
    pub status: Option<String>,
    pub release_type: Option<String>,
    /// `Some(None)` = account level only; `Some(Some(id))` = one org.
    pub org: Option<Option<i64>>,
    pub process_id: Option<i64>,
    pub owner_id: Option<i64>,
    pub text: Option<String>,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    pub include_archived: bool,
    /// Whose rights bound the list (and its total); `None` lists the whole account.
    pub visible_to: Option<crate::domain::policy::Visibility>,
}

pub const PAGE_SIZE: i64 = 50;

pub async fn list(conn: &mut AsyncPgConnection, account_id: i64, f: &ListFilter, page: i64) -> QueryResult<(Vec<Release>, i64)> {
    let build = || {
        let mut q = releases::table.filter(releases::account_id.eq(account_id)).into_boxed();
        match &f.state {
            Some(s) => q = q.filter(releases::state.eq(s.clone())),
            None if !f.include_archived => q = q.filter(releases::state.ne(State::Archived)),
            None => {}
        }
        if let Some(s) = &f.status {
            q = q.filter(releases::status.eq(s.clone()));
        }
        if let Some(t) = &f.release_type {
            q = q.filter(releases::release_type.eq(t.clone()));
        }
        match f.org {
            Some(None) => q = q.filter(releases::org_id.is_null()),
            Some(Some(id)) => q = q.filter(releases::org_id.eq(id)),
            None => {}
        }
        if let Some(p) = f.process_id {
            q = q.filter(releases::process_id.eq(p));
        }
        if let Some(o) = f.owner_id {
            q = q.filter(releases::owner_id.eq(o));
        }
        if let Some(t) = &f.text {
            q = q.filter(releases::name.ilike(format!("%{}%", t.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_"))));
        }
        if let Some(from) = f.from {
            q = q.filter(releases::schedule_end.ge(from).or(releases::schedule_end.is_null()));
        }
        if let Some(to) = f.to {
            q = q.filter(releases::schedule_start.lt(to).or(releases::schedule_start.is_null()));
        }
        match &f.visible_to {
            Some(vis) => visible(q, vis),
            None => q,
        }
    };
    let total: i64 = build().count().get_result(conn).await?;
    let rows = build()
        .order(releases::id.desc())
        .limit(PAGE_SIZE)
        .offset(page.clamp(0, i64::MAX / PAGE_SIZE) * PAGE_SIZE)
        .select(Release::as_select())
        .load(conn)
        .await?;
    Ok((rows, total))
}
