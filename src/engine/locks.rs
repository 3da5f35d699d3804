//! Deploy locks at a phase's first deploy (DESIGN §2): every lock its deploying activities and
//! their instances need, taken all at once, or none and the activity waits in every queue.

use chrono::{DateTime, Utc};
use diesel_async::AsyncPgConnection;
use serde_json::{json, Value};
use std::collections::BTreeMap;

use crate::db::audit::{self, NewEvent};
use crate::db::locks::{self as rows, Claimant};
use crate::db::models::catalog::Environment;
use crate::db::models::releases::{Release, ReleaseActivity};
use crate::domain::engine::fan_out_items;
use crate::domain::locks::{may_take, needed, Blocked, Claim, EnvironmentLock, LockKey};
use crate::domain::process::template::{render, to_text};
use crate::domain::process::Definition;
use crate::domain::release::ReleaseType;
use crate::ops::context::{lookup_in, with_item, Secrets};
use crate::ops::OpError;

/// The phase may deploy, or waits for a lock: the reason for people and `waiting_for` as data.
pub enum Taken {
    Yes,
    Wait { reason: String, waiting_for: Value },
}

/// Where a phase deploys: (environment, service) for each deploying activity, one per instance
/// of a fan-out (an activity that names no service deploys into the whole environment).
fn targets(r: &Release, def: &Definition, activities: &[ReleaseActivity], phase: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let Some(p) = def.phase(phase) else { return out };
    let list = |v: Option<Value>| -> Vec<String> {
        match v {
            Some(Value::Array(items)) => items.iter().map(to_text).filter(|s| !s.is_empty()).collect(),
            Some(v) => Some(to_text(&v)).filter(|s| !s.is_empty()).into_iter().collect(),
            None => Vec::new(),
        }
    };
    for a in p.activities.iter().filter(|a| a.deploys.is_some()) {
        let Some(d) = &a.deploys else { continue };
        let base = lookup_in(r, activities, def, (phase, &a.key), Secrets::Masked, None);
        let items = match &a.for_each {
            Some(t) => render(&Value::String(t.clone()), &base).ok().and_then(|v| fan_out_items(&v).ok()).unwrap_or_default(),
            None => Vec::new(),
        };
        let lookups: Vec<_> = if a.for_each.is_some() {
            items
                .iter()
                .map(|i| {
                    let mut l = base.clone();
                    with_item(&mut l, &i.text, i.value.as_ref());
                    l
                })
                .collect()
        } else {
            vec![base]
        };
        for lookup in &lookups {
            let resolve = |t: &Option<String>| t.as_ref().and_then(|t| render(&Value::String(t.clone()), lookup).ok());
            let mut environments = list(resolve(&d.environment));
            if environments.is_empty() {
                environments = r.environments.clone();
            }
            let services = list(resolve(&d.service));
            for e in &environments {
                if services.is_empty() {
                    out.push((e.clone(), String::new()));
                }
                for s in &services {
                    out.push((e.clone(), s.clone()));
                }
            }
        }
    }
    out
}

/// Takes every lock the phase needs, or queues it on each and says why it waits.
pub async fn take(
    conn: &mut AsyncPgConnection,
    (r, def): (&Release, &Definition),
    activities: &[ReleaseActivity],
    phase: &str,
    now: DateTime<Utc>,
) -> Result<Taken, OpError> {
    let targets = targets(r, def, activities, phase);
    if targets.is_empty() {
        return Ok(Taken::Yes);
    }
    let environments: BTreeMap<String, EnvironmentLock> = Environment::list(conn, r.account_id)
        .await?
        .into_iter()
        .map(|e| (e.name, EnvironmentLock { mode: e.deploy_lock, position: e.position }))
        .collect();
    let needed = needed(&targets, &environments);
    if needed.is_empty() {
        return Ok(Taken::Yes);
    }
    rows::serialize(conn, r.account_id).await?;
    let names: Vec<String> = needed.iter().map(|k| k.environment.clone()).collect();
    let stored = rows::rows_in(conn, r.account_id, &names).await?;
    let me = Claim { release_id: r.id, phase: phase.to_string() };
    let mine = |k: &LockKey| stored.iter().any(|s| s.held && s.release_id == r.id && s.phase_key == phase && &s.key() == k);
    if needed.iter().all(mine) {
        return Ok(Taken::Yes);
    }
    let ancestors = rows::ancestors(conn, r.id).await?;
    let states = rows::states(&stored);
    let who = Claimant { account_id: r.account_id, release_id: r.id, phase, hotfix: r.release_type == ReleaseType::Hotfix };
    match may_take(&me, &ancestors, &needed, &states) {
        Ok(()) => {
            // What an enclosing release holds is used under its hold, not taken again.
            let to_take: Vec<LockKey> = needed
                .iter()
                .filter(|k| states.get(*k).and_then(|s| s.holder.as_ref()).is_none_or(|h| h.release_id == r.id))
                .cloned()
                .collect();
            rows::grant(conn, &who, &to_take, now).await?;
            let shown: Vec<String> = needed.iter().map(ToString::to_string).collect();
            let event = NewEvent::release(r, "system:engine", "phase.locks_taken")
                .with_subject(format!("phase:{phase}"))
                .with_details(json!({"locks": shown}));
            audit::append(conn, event, now).await?;
            Ok(Taken::Yes)
        }
        Err((key, blocked)) => {
            rows::enqueue(conn, &who, &needed, now).await?;
            Ok(waiting(conn, r, &key, &blocked, now).await?)
        }
    }
}

/// Why the phase waits, naming the release in the way only where its readers may see it: a
/// release of another organisation reads "a release you cannot see".
async fn waiting(
    conn: &mut AsyncPgConnection,
    r: &Release,
    key: &LockKey,
    blocked: &Blocked,
    now: DateTime<Utc>,
) -> Result<Taken, OpError> {
    let (claim, ahead) = match blocked {
        Blocked::HeldBy(c) => (c, false),
        Blocked::Behind(c) => (c, true),
    };
    let other = rows::shown(conn, claim, key).await?;
    let visible = other.as_ref().is_some_and(|o| o.org_id.is_none() || o.org_id == r.org_id);
    let who = match (&other, visible) {
        (Some(o), true) => format!("#{} \"{}\" ({})", o.row.release_id, o.release_name, o.phase_name),
        _ => "a release you cannot see".to_string(),
    };
    let since = other.as_ref().map_or(now, |o| o.row.since);
    let at = since.with_timezone(&r.zone()).format("%Y-%m-%d %H:%M %Z");
    let reason = if ahead {
        format!("waiting for {key}: {who} is ahead in the queue (since {at})")
    } else {
        format!("waiting for {key}: held by {who} since {at}")
    };
    let release =
        other.as_ref().filter(|_| visible).map(|o| json!({"release_id": o.row.release_id, "name": o.release_name, "phase": o.phase_name}));
    let held_by = match (ahead, release) {
        (true, _) => Value::Null,
        (false, Some(v)) => v,
        (false, None) => json!({"release_id": null, "name": "a release you cannot see", "phase": null}),
    };
    let mut waiting_for = json!({"environment": key.environment, "held_by": held_by, "since": since});
    if !key.service.is_empty() {
        waiting_for["service"] = json!(key.service);
    }
    Ok(Taken::Wait { reason, waiting_for })
}

/// A phase ended: its locks pass to the rollback phase when it failed and the release rolls
/// back, else they are freed and their queues looked at again.
pub async fn phase_ended(
    conn: &mut AsyncPgConnection,
    r: &Release,
    def: &Definition,
    phase: &str,
    failed: bool,
    now: DateTime<Utc>,
) -> Result<(), OpError> {
    let rollback = def.phases.iter().find(|p| p.rollback).map(|p| p.key.as_str());
    if let Some(to) = rollback.filter(|to| failed && *to != phase) {
        rows::pass(conn, r.id, phase, to).await?;
    }
    let freed = rows::release(conn, r.id, Some(phase)).await?;
    rows::wake_waiters(conn, &freed, now).await?;
    Ok(())
}

/// The release finished or was aborted: everything it held or waited for is let go.
pub async fn release_all(conn: &mut AsyncPgConnection, release_id: i64, now: DateTime<Utc>) -> Result<(), OpError> {
    let freed = rows::release(conn, release_id, None).await?;
    rows::wake_waiters(conn, &freed, now).await?;
    Ok(())
}
