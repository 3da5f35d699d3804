//! Moving one claimed (locked) release as far as it can go now: time that ran out first, then a
//! freeze on the whole release, then the rules' changes one by one, and last the release's own
//! status, hold and reason, each written with its audit event and notifications.

use chrono::{DateTime, Utc};
use diesel_async::AsyncPgConnection;
use serde_json::json;
use tracing::Instrument;

use super::locks::{self, Taken};
use super::tree::{act_in, tree_of};
use super::{fan_out, freeze_gate, kinds, timeouts};
use crate::db::audit::{self, NewEvent};
use crate::db::engine::{self as rows, Settled};
use crate::db::models::processes::DefinitionCache;
use crate::db::models::releases::{Release, ReleaseActivity, ReleasePhase};
use crate::domain::engine::{next_changes, next_wake, rollup, Change, Node, Tree};
use crate::domain::process::definition::ActivityKind;
use crate::domain::process::Definition;
use crate::domain::release::{Hold, ReleaseType, Status};
use crate::ops::outbox::{self, NewNotification};
use crate::ops::OpError;

/// How many rounds of changes one advance applies at most (a guard, never reached by a valid
/// definition).
const MAX_ROUNDS: usize = 500;

/// Moves one claimed (locked) release as far as it can go now, in the span `advance{release_id}`.
/// Returns the number of changes.
pub async fn advance(conn: &mut AsyncPgConnection, defs: &DefinitionCache, r: Release, now: DateTime<Utc>) -> Result<usize, OpError> {
    let span = tracing::debug_span!("advance", release_id = r.id);
    let moved = advance_now(conn, defs, r, now).instrument(span.clone()).await;
    span.in_scope(|| match &moved {
        Ok(changes) => tracing::debug!(changes, "release advanced"),
        Err(e) => tracing::debug!(error = ?e, "advancing the release failed"),
    });
    moved
}

async fn advance_now(conn: &mut AsyncPgConnection, defs: &DefinitionCache, r: Release, now: DateTime<Utc>) -> Result<usize, OpError> {
    let def = defs.pinned(conn, &r).await?;
    let (mut phases, mut activities) = crate::db::models::releases::tree(conn, r.id).await?;
    if timeouts::expire(conn, &r, &def, &activities, now).await? {
        (phases, activities) = crate::db::models::releases::tree(conn, r.id).await?;
    }
    if let Some(changed) = hold_for_freeze(conn, &r, now).await? {
        return Ok(changed);
    }
    let mut tree = tree_of(&r, &def, &phases, &activities);
    let mut count = 0;
    for _ in 0..MAX_ROUNDS {
        let changes = next_changes(&tree, now);
        if changes.is_empty() {
            break;
        }
        for change in changes {
            count += 1;
            let stored = Stored { def: &def, phases: &phases, activities: &activities };
            let instances = apply(conn, &r, stored, &mut tree, &change, now).await?;
            activities.extend(instances);
        }
    }
    Ok(count + settle(conn, &r, &tree, now).await?)
}

/// What an advance read of the release: its definition and its tree as stored.
#[derive(Clone, Copy)]
struct Stored<'a> {
    def: &'a Definition,
    phases: &'a [ReleasePhase],
    activities: &'a [ReleaseActivity],
}

fn event(r: &Release, action: &str, subject: String, details: serde_json::Value) -> NewEvent {
    NewEvent::release(r, "system:engine", action).with_subject(subject).with_details(details)
}

/// A freeze on an environment the release targets holds it until the window ends, unless it is
/// a hotfix let through with an override. `Some`: held (1 if that changed anything).
async fn hold_for_freeze(conn: &mut AsyncPgConnection, r: &Release, now: DateTime<Utc>) -> Result<Option<usize>, OpError> {
    let Some((why, until)) = crate::ops::freezes::active_on(conn, r.account_id, r.org_id, &r.environments, now).await? else {
        return Ok(None);
    };
    if r.release_type == ReleaseType::Hotfix && crate::ops::freezes::has_override(conn, r.id).await? {
        return Ok(None);
    }
    let reason = format!("held by a freeze ({why}) until {}", until.with_timezone(&r.zone()).format("%Y-%m-%d %H:%M %Z"));
    let changed = r.status() != Status::OnHold || r.hold != Some(Hold::Freeze) || r.status_reason.as_deref() != Some(reason.as_str());
    rows::hold_release(conn, r.id, Hold::Freeze, &reason, until, now).await?;
    if changed {
        audit::append(conn, event(r, "release.frozen", format!("release:{}", r.id), json!({"reason": why, "until": until})), now).await?;
    }
    Ok(Some(usize::from(changed)))
}

/// Applies one change to the database and the tree; returns the instances a fan-out started.
async fn apply(
    conn: &mut AsyncPgConnection,
    r: &Release,
    stored: Stored<'_>,
    tree: &mut Tree,
    change: &Change,
    now: DateTime<Utc>,
) -> Result<Vec<ReleaseActivity>, OpError> {
    match change {
        Change::Phase { key, to, wake_at } => phase_moved(conn, (r, stored.def), stored.phases, key, (*to, *wake_at), now).await?,
        Change::Start { phase, key } => {
            tree.apply(change);
            return start_activity(conn, r, stored, tree, (phase, key), now).await;
        }
        Change::Activity { phase, key, to } => {
            rows::set_activity(conn, r.id, (phase, key), *to, to.is_finished().then_some(now)).await?;
            let action = format!("activity.{}", to.as_str().to_lowercase());
            audit::append(conn, event(r, &action, format!("activity:{phase}.{key}"), json!({})), now).await?;
        }
        Change::Failing => {
            rows::mark_failing(conn, r.id).await?;
            let details = json!({"rollback": stored.def.phases.iter().any(|p| p.rollback)});
            audit::append(conn, event(r, "release.failing", format!("release:{}", r.id), details), now).await?;
        }
    }
    tree.apply(change);
    Ok(Vec::new())
}

/// A phase starts, waits or finishes; its owner hears when it starts.
async fn phase_moved(
    conn: &mut AsyncPgConnection,
    (r, def): (&Release, &Definition),
    phases: &[ReleasePhase],
    key: &str,
    (to, wake_at): (Node, Option<DateTime<Utc>>),
    now: DateTime<Utc>,
) -> Result<(), OpError> {
    let times = ((to == Node::Running).then_some(now), to.is_finished().then_some(now));
    rows::set_phase(conn, r.id, key, to, wake_at, times).await?;
    if to.is_finished() {
        locks::phase_ended(conn, r, def, key, to == Node::Failed, now).await?;
    }
    let action = format!("phase.{}", to.as_str().to_lowercase());
    audit::append(conn, event(r, &action, format!("phase:{key}"), json!({"wake_at": wake_at})), now).await?;
    let Some(p) = phases.iter().find(|p| p.key == key).filter(|_| to == Node::Running) else { return Ok(()) };
    let owners = outbox::recipients(conn, r.account_id, std::slice::from_ref(&p.owner)).await?;
    let note = NewNotification {
        account_id: r.account_id,
        recipients: &owners,
        kind: "phase.started",
        subject: &format!("Phase \"{}\" of \"{}\" started", p.name, r.name),
        body: "",
        link: &format!("/releases/{}", r.id),
    };
    outbox::enqueue(conn, &note, now).await?;
    Ok(())
}

/// An activity's run starts by its kind (a fan-out as its instances), unless it would deploy
/// into a frozen environment now.
async fn start_activity(
    conn: &mut AsyncPgConnection,
    r: &Release,
    stored: Stored<'_>,
    tree: &mut Tree,
    (phase, key): (&str, &str),
    now: DateTime<Utc>,
) -> Result<Vec<ReleaseActivity>, OpError> {
    let row = stored.activities.iter().find(|a| a.phase_key == phase && a.key == key).ok_or(OpError::NotFound)?;
    let activity_def = stored.def.activity(phase, key).ok_or(OpError::NotFound)?;
    let frozen = freeze_gate::hold_if_frozen(conn, r, (stored.def, stored.activities), row, activity_def, now).await?;
    let mut instances = Vec::new();
    let (status, wake_at, deadline) = match frozen {
        Some(until) => (Node::OnHold, Some(until), None),
        None if activity_def.deploys.is_some() && !row.is_instance() && must_wait(conn, r, stored, row, now).await? => {
            (Node::Waiting, None, None)
        }
        None if activity_def.for_each.is_some() && !row.is_instance() => {
            let fanned = fan_out::start(conn, (r, stored.def), stored.activities, row, activity_def, now).await?;
            instances = fanned.instances;
            tree.activities.extend(instances.iter().map(|i| act_in(stored.def, i)));
            (fanned.status, None, None)
        }
        None => {
            let started = kinds::start(conn, r, row, activity_def, now).await?;
            (started.status, started.wake_at, started.deadline)
        }
    };
    if let Some(a) = tree.activities.iter_mut().find(|a| a.phase == phase && a.key == key) {
        a.status = status;
        a.wake_at = wake_at;
        if frozen.is_none() {
            a.deadline = deadline;
        }
    }
    Ok(instances)
}

/// Whether a deploying activity must wait for its phase's deploy locks; if so it is Waiting,
/// queued on every lock, with the first it cannot take named (audited when that changes).
async fn must_wait(
    conn: &mut AsyncPgConnection,
    r: &Release,
    stored: Stored<'_>,
    row: &ReleaseActivity,
    now: DateTime<Utc>,
) -> Result<bool, OpError> {
    match locks::take(conn, (r, stored.def), stored.activities, &row.phase_key, now).await? {
        Taken::Yes => Ok(false),
        Taken::Wait { reason, waiting_for } => {
            let current = rows::activity(conn, r.id, (&row.phase_key, &row.key)).await?;
            rows::wait_for_lock(conn, r.id, (&row.phase_key, &row.key), &reason, &waiting_for).await?;
            if current.status_reason.as_deref() != Some(reason.as_str()) || current.status != Node::Waiting {
                let event = NewEvent::release(r, "system:engine", "activity.waiting")
                    .with_subject(format!("activity:{}.{}", row.phase_key, row.key))
                    .with_details(json!({"waiting_for": waiting_for}))
                    .with_reason(reason);
                audit::append(conn, event, now).await?;
            }
            Ok(true)
        }
    }
}

/// The release's own status, hold and reason after the changes; people hear when it is held or
/// finished. Returns 1 if its status changed.
async fn settle(conn: &mut AsyncPgConnection, r: &Release, tree: &Tree, now: DateTime<Utc>) -> Result<usize, OpError> {
    let status = rollup(tree);
    let (hold, mut reason) = why_held(conn, r, status).await?;
    if status == Status::Running && tree.activities.iter().any(|a| a.status == Node::Waiting && a.wake_at.is_none()) {
        // Running, but a deploy waits for a lock: the release says so (page, calendar summary).
        let waits = rows::lock_waits(conn, r.id).await?;
        let parts: Vec<String> = waits.into_iter().map(|(name, why)| format!("\"{name}\" {}", why.unwrap_or_default())).collect();
        reason = (!parts.is_empty()).then(|| parts.join("; "));
    }
    let settled = Settled {
        status,
        hold,
        reason: reason.as_deref(),
        finished_at: status.is_finished().then_some(now),
        next_eval_at: if status.is_finished() { None } else { next_look(tree, now) },
    };
    rows::settle(conn, r.id, settled, now).await?;
    let previous = r.status();
    if status == previous {
        return Ok(0);
    }
    if status.is_finished() {
        crate::ops::outcomes::child_finished(conn, r, status, now).await?;
        let freed = crate::db::locks::release(conn, r.id, None).await?;
        crate::db::locks::wake_waiters(conn, &freed, now).await?;
    }
    let details = json!({"from": previous.as_str(), "to": status.as_str(), "reason": reason});
    audit::append(conn, event(r, "release.status", format!("release:{}", r.id), details), now).await?;
    if status == Status::OnHold || status.is_finished() {
        announce(conn, r, status, reason.as_deref(), now).await?;
    }
    Ok(1)
}

/// How often a release waiting for a deploy lock looks again by itself, besides being woken
/// when a lock it queues on comes free.
const LOCK_POLL_SECONDS: i64 = 30;

/// When to look at the release again: the earliest time it waits for, or soon while an activity
/// waits for a deploy lock.
fn next_look(tree: &Tree, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let lock_wait = tree.activities.iter().any(|a| a.status == Node::Waiting && a.wake_at.is_none());
    let poll = lock_wait.then(|| now + chrono::TimeDelta::seconds(LOCK_POLL_SECONDS));
    [next_wake(tree), poll].into_iter().flatten().min()
}

/// Why a release waits, as data and for people: the activities and who can move them.
async fn why_held(conn: &mut AsyncPgConnection, r: &Release, status: Status) -> Result<(Option<Hold>, Option<String>), OpError> {
    if status != Status::OnHold {
        return Ok((None, None));
    }
    let mut waiting = rows::waiting(conn, r.id).await?;
    // A fan-out activity waits through its instances, which name themselves.
    let fanned: Vec<String> = waiting.iter().filter_map(|w| w.fan_of.clone()).collect();
    waiting.retain(|w| !(w.fan_of.is_none() && fanned.contains(&w.key)));
    let first_kind = waiting.first().map(|w| w.kind);
    let hold = waiting.iter().find_map(|w| w.hold).unwrap_or(match first_kind {
        Some(ActivityKind::Approval) => Hold::Approval,
        _ => Hold::Manual,
    });
    let parts: Vec<String> = waiting
        .into_iter()
        .map(|w| match (w.kind, w.reason) {
            (_, Some(reason)) => format!("\"{}\": {reason}", w.name),
            (ActivityKind::Approval, None) => format!("\"{}\" waits for approvals", w.name),
            _ => format!("\"{}\" waits for {}", w.name, w.owner),
        })
        .collect();
    Ok((Some(hold), Some(parts.join("; "))))
}

/// The release is held or finished: its chat channel, owner and stakeholders hear it.
async fn announce(
    conn: &mut AsyncPgConnection,
    r: &Release,
    status: Status,
    reason: Option<&str>,
    now: DateTime<Utc>,
) -> Result<(), OpError> {
    let mut principals = r.stakeholders.clone();
    if let Some(owner) = r.owner_id {
        let email = crate::db::models::users::User::find(conn, r.account_id, owner).await?.email;
        principals.push(format!("user:{email}"));
    }
    let to_users = outbox::recipients(conn, r.account_id, &principals).await?;
    let subject = format!("Release \"{}\" is {}", r.name, status.as_str());
    let kind = format!("release.{}", status.as_str().to_lowercase());
    let link = format!("/releases/{}", r.id);
    outbox::enqueue_chat(conn, r.account_id, &kind, &subject, &link, now).await?;
    let note = NewNotification {
        account_id: r.account_id,
        recipients: &to_users,
        kind: &kind,
        subject: &subject,
        body: reason.unwrap_or(""),
        link: &link,
    };
    outbox::enqueue(conn, &note, now).await?;
    Ok(())
}
