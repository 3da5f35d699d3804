//! The engine: claims releases that need attention (`FOR UPDATE SKIP LOCKED`), applies the pure
//! rules of `domain::engine` to their stored tree, and writes every change with its audit event
//! and notifications in the same transaction. `crate::worker` runs it, woken by LISTEN/NOTIFY
//! with polling as a fallback.

mod freeze_gate;
pub mod kinds;
mod timeouts;
pub mod webhook;

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use serde_json::json;
use tracing::Instrument;

use crate::db::audit::{self, NewEvent};
use crate::db::models::processes::DefinitionCache;
use crate::db::models::releases::activity_by_key;
use crate::db::models::releases::{self as rows, Release, ReleaseActivity, ReleasePhase};
use crate::db::prepared::prepared;
use crate::db::schema::{release_activities, releases};
use crate::domain::engine::{next_changes, next_wake, rollup, Act, Change, Node, Phase, Tree};
use crate::domain::process::definition::{ActivityKind, OnFailure};
use crate::domain::process::time::{parse_offset, parse_point};
use crate::domain::process::Definition;
use crate::domain::release::State;
use crate::domain::release::Status;
use crate::ops::outbox::NewNotification;
use crate::ops::{outbox, OpError};

/// A `not_before` or `until`: an offset from the release's start, or an RFC 3339 time.
pub fn resolve_point(text: &str, r: &Release) -> Option<DateTime<Utc>> {
    parse_point(text).ok()?;
    match parse_offset(text) {
        Ok(offset) => Some(offset.resolve(r.start(), r.zone())),
        Err(_) => DateTime::parse_from_rfc3339(text.trim()).ok().map(|t| t.with_timezone(&Utc)),
    }
}

fn on_failure(s: &str) -> OnFailure {
    match s {
        "fail" => OnFailure::Fail,
        "ignore" => OnFailure::Ignore,
        _ => OnFailure::Manual,
    }
}

pub fn tree_of(r: &Release, def: &Definition, phases: &[ReleasePhase], activities: &[ReleaseActivity]) -> Tree {
    Tree {
        phases: phases
            .iter()
            .map(|p| Phase {
                key: p.key.clone(),
                status: Node::parse(&p.status),
                depends_on: p.depends_on.clone(),
                rollback: p.rollback,
                not_before: def.phase(&p.key).and_then(|d| d.not_before.as_deref()).and_then(|nb| resolve_point(nb, r)),
            })
            .collect(),
        activities: activities.iter().map(act_of).collect(),
        failing: r.failing,
    }
}

/// An activity row as the engine's rules see it.
pub fn act_of(a: &ReleaseActivity) -> Act {
    Act {
        phase: a.phase_key.clone(),
        key: a.key.clone(),
        kind: ActivityKind::parse(&a.kind).unwrap_or(ActivityKind::Manual),
        status: Node::parse(&a.status),
        depends_on: a.depends_on.clone(),
        critical: a.critical,
        on_failure: on_failure(&a.on_failure),
        wake_at: a.wake_at,
        deadline: a.deadline,
    }
}

fn event(r: &Release, action: &str, subject: String, details: serde_json::Value) -> NewEvent {
    NewEvent::release(r, "system:engine", action).with_subject(subject).with_details(details)
}

async fn set_activity(conn: &mut AsyncPgConnection, r: &Release, phase: &str, key: &str, to: Node, now: DateTime<Utc>) -> QueryResult<()> {
    let finished = to.is_finished().then_some(now);
    diesel::update(activity_by_key(r.id, phase, key))
        .set((
            release_activities::status.eq(to.as_str()),
            release_activities::finished_at.eq(finished),
            release_activities::wake_at.eq(None::<DateTime<Utc>>),
        ))
        .execute(conn)
        .await?;
    audit::append(conn, event(r, &format!("activity.{}", to.as_str().to_lowercase()), format!("activity:{phase}.{key}"), json!({})), now)
        .await?;
    Ok(())
}

/// A phase's new status in one statement; a start or finish time not set by this change keeps
/// its stored value.
async fn set_phase(
    conn: &mut AsyncPgConnection,
    release_id: i64,
    key: &str,
    to: Node,
    wake_at: Option<DateTime<Utc>>,
    started: Option<DateTime<Utc>>,
    finished: Option<DateTime<Utc>>,
) -> QueryResult<usize> {
    use diesel::sql_types::{BigInt, Nullable, Text, Timestamptz};
    prepared(
        diesel::sql_query(
            "UPDATE release_phases SET status = $3, wake_at = $4, started_at = COALESCE($5, started_at), \
         finished_at = COALESCE($6, finished_at) WHERE release_id = $1 AND key = $2",
        )
        .bind::<BigInt, _>(release_id)
        .bind::<Text, _>(key)
        .bind::<Text, _>(to.as_str())
        .bind::<Nullable<Timestamptz>, _>(wake_at)
        .bind::<Nullable<Timestamptz>, _>(started)
        .bind::<Nullable<Timestamptz>, _>(finished),
    )
    .execute(conn)
    .await
}

/// Moves one claimed (locked) release as far as it can go now. Returns the number of changes.
pub async fn advance(conn: &mut AsyncPgConnection, defs: &DefinitionCache, r: Release, now: DateTime<Utc>) -> Result<usize, OpError> {
    let def = defs.pinned(conn, &r).await?;
    let (mut phases, mut activities) = rows::tree(conn, r.id).await?;
    if timeouts::expire(conn, &r, &def, &activities, now).await? {
        (phases, activities) = rows::tree(conn, r.id).await?;
    }
    // A freeze on an environment the release targets holds it until the window ends, unless
    // it is a hotfix let through with an override.
    if let Some((reason, until)) = crate::ops::freezes::active_on(conn, r.account_id, r.org_id, &r.environments, now).await? {
        let overridden = r.release_type == "hotfix" && crate::ops::freezes::has_override(conn, r.id).await?;
        if !overridden {
            let zone = r.zone();
            let message =
                format!("{} ({reason}) until {}", crate::ops::freezes::HELD_PREFIX, until.with_timezone(&zone).format("%Y-%m-%d %H:%M %Z"));
            let changed = r.status() != Status::OnHold || r.status_reason.as_deref() != Some(message.as_str());
            diesel::update(releases::table.find(r.id))
                .set((
                    releases::status.eq(Status::OnHold.as_str()),
                    releases::status_reason.eq(&message),
                    releases::next_eval_at.eq(until),
                    releases::updated_at.eq(now),
                ))
                .execute(conn)
                .await?;
            if changed {
                audit::append(
                    conn,
                    event(&r, "release.frozen", format!("release:{}", r.id), json!({"reason": reason, "until": until})),
                    now,
                )
                .await?;
            }
            return Ok(usize::from(changed));
        }
    }
    let mut tree = tree_of(&r, &def, &phases, &activities);
    let mut count = 0;
    for _ in 0..500 {
        let changes = next_changes(&tree, now);
        if changes.is_empty() {
            break;
        }
        for change in changes {
            count += 1;
            match &change {
                Change::Phase { key, to, wake_at } => {
                    let started = (*to == Node::Running).then_some(now);
                    let finished = to.is_finished().then_some(now);

                    set_phase(conn, r.id, key, *to, *wake_at, started, finished).await?;
                    audit::append(
                        conn,
                        event(&r, &format!("phase.{}", to.as_str().to_lowercase()), format!("phase:{key}"), json!({"wake_at": wake_at})),
                        now,
                    )
                    .await?;
                    if *to == Node::Running {
                        if let Some(p) = phases.iter().find(|p| &p.key == key) {
                            let to_users = outbox::recipients(conn, r.account_id, std::slice::from_ref(&p.owner)).await?;
                            outbox::enqueue(
                                conn,
                                &NewNotification {
                                    account_id: r.account_id,
                                    recipients: &to_users,
                                    kind: "phase.started",
                                    subject: &format!("Phase \"{}\" of \"{}\" started", p.name, r.name),
                                    body: "",
                                    link: &format!("/releases/{}", r.id),
                                },
                                now,
                            )
                            .await?;
                        }
                    }
                    tree.apply(&change);
                }
                Change::Start { phase, key } => {
                    tree.apply(&change);
                    let row = activities.iter().find(|a| &a.phase_key == phase && &a.key == key).ok_or(OpError::NotFound)?;
                    let activity_def =
                        def.phase(phase).and_then(|p| p.activities.iter().find(|a| &a.key == key)).ok_or(OpError::NotFound)?;
                    if let Some(until) = freeze_gate::hold_if_frozen(conn, &r, (&def, &activities), row, activity_def, now).await? {
                        if let Some(a) = tree.activities.iter_mut().find(|a| &a.phase == phase && &a.key == key) {
                            a.status = Node::OnHold;
                            a.wake_at = Some(until);
                        }
                        continue;
                    }
                    let started = kinds::start(conn, &r, row, activity_def, now).await?;
                    if let Some(a) = tree.activities.iter_mut().find(|a| &a.phase == phase && &a.key == key) {
                        a.status = started.status;
                        a.wake_at = started.wake_at;
                        a.deadline = started.deadline;
                    }
                }
                Change::Activity { phase, key, to } => {
                    set_activity(conn, &r, phase, key, *to, now).await?;
                    tree.apply(&change);
                }
                Change::Failing => {
                    diesel::update(releases::table.find(r.id)).set(releases::failing.eq(true)).execute(conn).await?;
                    audit::append(
                        conn,
                        event(
                            &r,
                            "release.failing",
                            format!("release:{}", r.id),
                            json!({"rollback": def.phases.iter().any(|p| p.rollback)}),
                        ),
                        now,
                    )
                    .await?;
                    tree.apply(&change);
                }
            }
        }
    }
    let status = rollup(&tree);
    let reason = hold_reason(conn, &r, status).await?;
    let previous = r.status();
    let finished_at = status.is_finished().then_some(now);
    diesel::update(releases::table.find(r.id))
        .set((
            releases::status.eq(status.as_str()),
            releases::status_reason.eq(&reason),
            releases::finished_at.eq(finished_at),
            releases::next_eval_at.eq(if status.is_finished() { None } else { next_wake(&tree) }),
            releases::updated_at.eq(now),
        ))
        .execute(conn)
        .await?;
    if status != previous && status.is_finished() {
        crate::ops::outcomes::child_finished(conn, &r, status, now).await?;
    }
    if status != previous {
        count += 1;
        audit::append(
            conn,
            event(
                &r,
                "release.status",
                format!("release:{}", r.id),
                json!({"from": previous.as_str(), "to": status.as_str(), "reason": reason}),
            ),
            now,
        )
        .await?;
        if matches!(status, Status::OnHold) || status.is_finished() {
            let mut principals = r.stakeholders.clone();
            if let Some(owner) = r.owner_id {
                let email = crate::db::models::users::User::find(conn, r.account_id, owner).await?.email;
                principals.push(format!("user:{email}"));
            }
            let to_users = outbox::recipients(conn, r.account_id, &principals).await?;
            let subject = format!("Release \"{}\" is {}", r.name, status.as_str());
            outbox::enqueue_chat(
                conn,
                r.account_id,
                &format!("release.{}", status.as_str().to_lowercase()),
                &subject,
                &format!("/releases/{}", r.id),
                now,
            )
            .await?;
            outbox::enqueue(
                conn,
                &NewNotification {
                    account_id: r.account_id,
                    recipients: &to_users,
                    kind: &format!("release.{}", status.as_str().to_lowercase()),
                    subject: &subject,
                    body: reason.as_deref().unwrap_or(""),
                    link: &format!("/releases/{}", r.id),
                },
                now,
            )
            .await?;
        }
    }
    Ok(count)
}

/// Why a release waits for people: the activities and who can move them.
async fn hold_reason(conn: &mut AsyncPgConnection, r: &Release, status: Status) -> QueryResult<Option<String>> {
    if status != Status::OnHold {
        return Ok(None);
    }
    let waiting: Vec<(String, String, Option<String>, String)> = release_activities::table
        .filter(release_activities::release_id.eq(r.id))
        .filter(release_activities::status.eq_any([Status::Running.as_str(), Status::OnHold.as_str()]))
        .order((release_activities::phase_key, release_activities::position))
        .select((release_activities::name, release_activities::kind, release_activities::status_reason, release_activities::owner))
        .load(conn)
        .await?;
    let parts: Vec<String> = waiting
        .into_iter()
        .map(|(name, kind, reason, owner)| match (kind.as_str(), reason) {
            (_, Some(reason)) => format!("\"{name}\": {reason}"),
            ("approval", None) => format!("\"{name}\" waits for approvals"),
            _ => format!("\"{name}\" waits for {owner}"),
        })
        .collect();
    Ok(Some(parts.join("; ")))
}

/// An advance failed in the database: counted; at the limit the release is set aside (OnHold,
/// hold `engine_error`) with the reason, on its trail and in the log with its cause.
async fn poisoned(conn: &mut AsyncPgConnection, release_id: i64, error: &OpError, now: DateTime<Utc>) -> Result<(), OpError> {
    use crate::db::engine_holds;
    use crate::domain::release::MAX_ENGINE_FAILURES;
    let failures = conn.transaction(async |conn| engine_holds::count_failure(conn, release_id).await).await?;
    tracing::error!(release_id, failures, error = ?error, "advancing a release failed in the database");
    if failures < MAX_ENGINE_FAILURES {
        return Ok(());
    }
    let reason = format!("engine error: {error}");
    conn.transaction(async |conn| {
        engine_holds::set_aside(conn, release_id, &reason, now).await?;
        let r: Release = releases::table.find(release_id).select(Release::as_select()).first(conn).await?;
        let event = NewEvent { reason: Some(reason.clone()), ..NewEvent::release(&r, "system:engine", "release.set_aside") }
            .with_details(json!({"failures": failures}));
        audit::append(conn, event, now).await?;
        Ok::<_, OpError>(())
    })
    .await?;
    tracing::error!(release_id, failures, "release set aside after repeated engine errors; retry it once the cause is fixed");
    Ok(())
}

/// How many due releases one engine transaction claims and advances: a burst needs fewer
/// claims and commits, and a claimed release waits at most for seven others.
const STEP_BATCH: usize = 8;

/// One pass: claims due releases a few at a time (SKIP LOCKED) and advances each. The time is
/// read afresh for each release, so what is recorded as started or finished is when it
/// happened, not when the pass began.
pub async fn step(
    conn: &mut AsyncPgConnection,
    defs: &DefinitionCache,
    clock: impl Fn() -> DateTime<Utc> + Sync,
) -> Result<usize, OpError> {
    let mut total = 0;
    let mut seen: Vec<i64> = Vec::new();
    for _ in 0..200 / STEP_BATCH {
        let now = clock();
        let done = conn
            .transaction(async |conn| {
                let claimed: Vec<Release> = releases::table
                    .filter(releases::state.eq(State::Active.as_str()))
                    .filter(diesel::dsl::sql::<diesel::sql_types::Bool>("hold IS DISTINCT FROM 'engine_error'"))
                    .filter(releases::status.eq_any([Status::Running.as_str(), Status::OnHold.as_str()]))
                    .filter(releases::next_eval_at.le(now))
                    .filter(releases::id.ne_all(&seen))
                    .order(releases::next_eval_at)
                    .limit(STEP_BATCH as i64)
                    .for_update()
                    .skip_locked()
                    .select(Release::as_select())
                    .load(conn)
                    .await?;
                let ids: Vec<i64> = claimed.iter().map(|r| r.id).collect();
                let mut moved = 0;
                let mut advanced = Vec::new();
                for (i, r) in claimed.into_iter().enumerate() {
                    // Each is read again just before its advance: an earlier one in this batch
                    // may have changed it (a child that finishes moves its parent on; a parent's
                    // timeout aborts its child).
                    let r = if i == 0 { r } else { releases::table.find(r.id).select(Release::as_select()).first(conn).await? };
                    let id = r.id;
                    // In its own savepoint: one release that fails in the database never undoes
                    // or holds back the others of its batch (DESIGN §9).
                    let span = tracing::debug_span!("advance", release_id = id);
                    let advanced_now = conn.transaction(async |conn| advance(conn, defs, r, clock()).await).instrument(span.clone()).await;
                    span.in_scope(|| tracing::debug!(moved = ?advanced_now.as_ref().ok(), "release advanced"));
                    match advanced_now {
                        Ok(n) => {
                            moved += n;
                            advanced.push(id);
                        }
                        Err(e) => poisoned(conn, id, &e, clock()).await?,
                    }
                }
                crate::db::engine_holds::clear_failures(conn, &advanced).await?;
                Ok::<_, OpError>((ids, moved))
            })
            .await?;
        match done {
            (ids, _) if ids.is_empty() => break,
            (ids, n) => {
                seen.extend(ids);
                total += n;
            }
        }
    }
    Ok(total)
}
