//! The engine's statements: claiming due releases, and writing the status, hold and reason of a
//! release, its phases and its activities as the rules of `domain::engine` move them.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde_json::json;

use crate::db::models::releases::{activity_by_key, Release, ReleaseActivity};
use crate::db::schema::{release_activities, releases};
use crate::domain::engine::Node;
use crate::domain::process::definition::ActivityKind;
use crate::domain::release::{Hold, State, Status};

/// Claims (locks, skipping locked ones) up to `limit` active releases due by `now`, not set
/// aside and not among `seen`, oldest due first.
pub async fn claim_due(conn: &mut AsyncPgConnection, now: DateTime<Utc>, seen: &[i64], limit: usize) -> QueryResult<Vec<Release>> {
    releases::table
        .filter(releases::state.eq(State::Active))
        .filter(releases::hold.is_distinct_from(Hold::EngineError))
        .filter(releases::status.eq_any([Status::Running, Status::OnHold]))
        .filter(releases::next_eval_at.le(now))
        .filter(releases::id.ne_all(seen))
        .order(releases::next_eval_at)
        .limit(i64::try_from(limit).unwrap_or(i64::MAX))
        .for_update()
        .skip_locked()
        .select(Release::as_select())
        .load(conn)
        .await
}

/// A release by id alone: for the worker, which acts for every account.
pub async fn release(conn: &mut AsyncPgConnection, id: i64) -> QueryResult<Release> {
    releases::table.find(id).select(Release::as_select()).first(conn).await
}

/// `release`, locked for the rest of the caller's transaction.
pub async fn lock_release(conn: &mut AsyncPgConnection, id: i64) -> QueryResult<Release> {
    releases::table.find(id).select(Release::as_select()).for_update().first(conn).await
}

/// The whole release held (a freeze on an environment it targets) until `until`.
pub async fn hold_release(
    conn: &mut AsyncPgConnection,
    id: i64,
    hold: Hold,
    reason: &str,
    until: DateTime<Utc>,
    now: DateTime<Utc>,
) -> QueryResult<usize> {
    diesel::update(releases::table.find(id))
        .set((
            releases::status.eq(Status::OnHold),
            releases::hold.eq(hold),
            releases::status_reason.eq(reason),
            releases::next_eval_at.eq(until),
            releases::updated_at.eq(now),
        ))
        .execute(conn)
        .await
}

/// Where an advance left a release.
pub struct Settled<'a> {
    pub status: Status,
    pub hold: Option<Hold>,
    pub reason: Option<&'a str>,
    pub finished_at: Option<DateTime<Utc>>,
    pub next_eval_at: Option<DateTime<Utc>>,
}

pub async fn settle(conn: &mut AsyncPgConnection, id: i64, s: Settled<'_>, now: DateTime<Utc>) -> QueryResult<usize> {
    diesel::update(releases::table.find(id))
        .set((
            releases::status.eq(s.status),
            releases::hold.eq(s.hold),
            releases::status_reason.eq(s.reason),
            releases::finished_at.eq(s.finished_at),
            releases::next_eval_at.eq(s.next_eval_at),
            releases::updated_at.eq(now),
        ))
        .execute(conn)
        .await
}

pub async fn mark_failing(conn: &mut AsyncPgConnection, id: i64) -> QueryResult<usize> {
    diesel::update(releases::table.find(id)).set(releases::failing.eq(true)).execute(conn).await
}

/// The release looks again no later than `at` (a callback's deadline).
pub async fn due_by(conn: &mut AsyncPgConnection, r: &Release, at: DateTime<Utc>) -> QueryResult<usize> {
    let next = r.next_eval_at.map_or(at, |t| t.min(at));
    diesel::update(releases::table.find(r.id)).set(releases::next_eval_at.eq(next)).execute(conn).await
}

/// A phase's new status; a start or finish time not set by this change keeps its stored value.
pub async fn set_phase(
    conn: &mut AsyncPgConnection,
    release_id: i64,
    key: &str,
    to: Node,
    wake_at: Option<DateTime<Utc>>,
    (started, finished): (Option<DateTime<Utc>>, Option<DateTime<Utc>>),
) -> QueryResult<usize> {
    use diesel::sql_types::{BigInt, Nullable, Text, Timestamptz};
    crate::db::prepared::prepared(
        diesel::sql_query(
            "UPDATE release_phases SET status = $3, wake_at = $4, started_at = COALESCE($5, started_at), \
             finished_at = COALESCE($6, finished_at) WHERE release_id = $1 AND key = $2",
        )
        .bind::<BigInt, _>(release_id)
        .bind::<Text, _>(key)
        .bind::<Text, _>(to)
        .bind::<Nullable<Timestamptz>, _>(wake_at)
        .bind::<Nullable<Timestamptz>, _>(started)
        .bind::<Nullable<Timestamptz>, _>(finished),
    )
    .execute(conn)
    .await
}

/// An activity's new status set by the rules (no person waits on it any more).
pub async fn set_activity(
    conn: &mut AsyncPgConnection,
    release_id: i64,
    (phase, key): (&str, &str),
    to: Node,
    finished: Option<DateTime<Utc>>,
) -> QueryResult<usize> {
    diesel::update(activity_by_key(release_id, phase, key))
        .set((
            release_activities::status.eq(to),
            release_activities::hold.eq(None::<Hold>),
            release_activities::finished_at.eq(finished),
            release_activities::wake_at.eq(None::<DateTime<Utc>>),
        ))
        .execute(conn)
        .await
}

/// An activity held (a freeze, too few approvers, a decision) with the reason, looked at again
/// at `wake_at` if set.
pub async fn hold_activity(
    conn: &mut AsyncPgConnection,
    release_id: i64,
    (phase, key): (&str, &str),
    hold: Hold,
    reason: &str,
    wake_at: Option<DateTime<Utc>>,
) -> QueryResult<usize> {
    diesel::update(activity_by_key(release_id, phase, key))
        .set((
            release_activities::status.eq(Node::OnHold),
            release_activities::hold.eq(hold),
            release_activities::status_reason.eq(reason),
            release_activities::wake_at.eq(wake_at),
        ))
        .execute(conn)
        .await
}

/// How an activity starts a new run (a new attempt or approval round).
pub struct Start<'a> {
    pub status: Node,
    pub hold: Option<Hold>,
    pub reason: Option<&'a str>,
    pub eligible: &'a [i64],
    pub needed: i32,
    pub wake_at: Option<DateTime<Utc>>,
    pub deadline: Option<DateTime<Utc>>,
    /// The number of the run's first attempt.
    pub attempt: i32,
}

pub async fn start_activity(
    conn: &mut AsyncPgConnection,
    release_id: i64,
    (phase, key): (&str, &str),
    s: Start<'_>,
    now: DateTime<Utc>,
) -> QueryResult<usize> {
    diesel::update(activity_by_key(release_id, phase, key))
        .set((
            release_activities::status.eq(s.status),
            release_activities::hold.eq(s.hold),
            release_activities::attempts.eq(s.attempt),
            release_activities::started_at.eq(now),
            release_activities::finished_at.eq(None::<DateTime<Utc>>),
            release_activities::wake_at.eq(s.wake_at),
            release_activities::status_reason.eq(s.reason),
            release_activities::eligible.eq(s.eligible),
            release_activities::needed.eq(s.needed),
            release_activities::run_first_attempt.eq(s.attempt),
            release_activities::deadline.eq(s.deadline),
            release_activities::waiting_for.eq(None::<serde_json::Value>),
        ))
        .execute(conn)
        .await
}

/// A fan-out activity starts: its instances are written, and it runs as they do.
pub async fn start_fan_out(
    conn: &mut AsyncPgConnection,
    release_id: i64,
    (phase, key): (&str, &str),
    instances: &[ReleaseActivity],
    now: DateTime<Utc>,
) -> QueryResult<usize> {
    for chunk in instances.chunks(500) {
        diesel::insert_into(release_activities::table).values(chunk).execute(conn).await?;
    }
    diesel::update(activity_by_key(release_id, phase, key))
        .set((
            release_activities::status.eq(Node::Running),
            release_activities::hold.eq(None::<Hold>),
            release_activities::started_at.eq(now),
            release_activities::finished_at.eq(None::<DateTime<Utc>>),
            release_activities::status_reason.eq(None::<String>),
            release_activities::waiting_for.eq(None::<serde_json::Value>),
            release_activities::fanned.eq(true),
        ))
        .execute(conn)
        .await
}

/// An activity that cannot start: skipped (an empty fan-out) with the reason shown.
pub async fn skip_activity(
    conn: &mut AsyncPgConnection,
    release_id: i64,
    (phase, key): (&str, &str),
    reason: &str,
    now: DateTime<Utc>,
) -> QueryResult<usize> {
    diesel::update(activity_by_key(release_id, phase, key))
        .set((
            release_activities::status.eq(Node::Skipped),
            release_activities::hold.eq(None::<Hold>),
            release_activities::finished_at.eq(now),
            release_activities::status_reason.eq(reason),
            release_activities::waiting_for.eq(None::<serde_json::Value>),
        ))
        .execute(conn)
        .await
}

/// A deploying activity waits for a deploy lock (DESIGN §2): Waiting, with who holds it.
pub async fn wait_for_lock(
    conn: &mut AsyncPgConnection,
    release_id: i64,
    (phase, key): (&str, &str),
    reason: &str,
    waiting_for: &serde_json::Value,
) -> QueryResult<usize> {
    diesel::update(activity_by_key(release_id, phase, key))
        .set((
            release_activities::status.eq(Node::Waiting),
            release_activities::hold.eq(Hold::DeployLock),
            release_activities::status_reason.eq(reason),
            release_activities::waiting_for.eq(waiting_for),
            release_activities::wake_at.eq(None::<DateTime<Utc>>),
        ))
        .execute(conn)
        .await
}

/// A subprocess activity runs as release `child`.
pub async fn set_child(conn: &mut AsyncPgConnection, release_id: i64, (phase, key): (&str, &str), child: i64) -> QueryResult<usize> {
    diesel::update(activity_by_key(release_id, phase, key))
        .set((
            release_activities::outputs.eq(json!({"release_id": child})),
            release_activities::status_reason.eq(format!("runs as release #{child}")),
        ))
        .execute(conn)
        .await
}

pub async fn activity(conn: &mut AsyncPgConnection, release_id: i64, (phase, key): (&str, &str)) -> QueryResult<ReleaseActivity> {
    activity_by_key(release_id, phase, key).select(ReleaseActivity::as_select()).first(conn).await
}

pub async fn activity_status(conn: &mut AsyncPgConnection, release_id: i64, (phase, key): (&str, &str)) -> QueryResult<Node> {
    activity_by_key(release_id, phase, key).select(release_activities::status).first(conn).await
}

/// A webhook activity whose request was answered waits for its callback until `deadline`.
pub async fn await_callback(
    conn: &mut AsyncPgConnection,
    release_id: i64,
    (phase, key): (&str, &str),
    deadline: DateTime<Utc>,
) -> QueryResult<usize> {
    diesel::update(activity_by_key(release_id, phase, key))
        .set((release_activities::wake_at.eq(deadline), release_activities::status_reason.eq("waiting for the callback")))
        .execute(conn)
        .await
}

/// An activity a person or the engine waits on, as the release's reason names it.
#[derive(Debug, Queryable)]
pub struct Waiting {
    pub key: String,
    pub fan_of: Option<String>,
    pub name: String,
    pub kind: ActivityKind,
    pub hold: Option<Hold>,
    pub reason: Option<String>,
    pub owner: String,
}

/// The release's activities in progress that wait (Running or OnHold), in the order shown.
pub async fn waiting(conn: &mut AsyncPgConnection, release_id: i64) -> QueryResult<Vec<Waiting>> {
    release_activities::table
        .filter(release_activities::release_id.eq(release_id))
        .filter(release_activities::status.eq_any([Node::Running, Node::OnHold]))
        .order((release_activities::phase_key, release_activities::position, release_activities::key))
        .select((
            release_activities::key,
            release_activities::fan_of,
            release_activities::name,
            release_activities::kind,
            release_activities::hold,
            release_activities::status_reason,
            release_activities::owner,
        ))
        .load(conn)
        .await
}

/// The release's activities waiting for a deploy lock: (name, reason), in the order shown.
pub async fn lock_waits(conn: &mut AsyncPgConnection, release_id: i64) -> QueryResult<Vec<(String, Option<String>)>> {
    release_activities::table
        .filter(release_activities::release_id.eq(release_id))
        .filter(release_activities::status.eq(Node::Waiting))
        .filter(release_activities::hold.eq(Hold::DeployLock))
        .order((release_activities::phase_key, release_activities::position, release_activities::key))
        .select((release_activities::name, release_activities::status_reason))
        .load(conn)
        .await
}
