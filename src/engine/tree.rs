//! The stored tree of a release as the engine's pure rules see it.

use chrono::{DateTime, Utc};

use crate::db::models::releases::{Release, ReleaseActivity, ReleasePhase};
use crate::domain::engine::{Act, Node, Phase, Tree};
use crate::domain::process::time::{parse_offset, parse_point};
use crate::domain::process::Definition;
use crate::domain::release::Hold;

/// A `not_before` or `until`: an offset from the release's start, or an RFC 3339 time.
pub fn resolve_point(text: &str, r: &Release) -> Option<DateTime<Utc>> {
    parse_point(text).ok()?;
    match parse_offset(text) {
        Ok(offset) => Some(offset.resolve(r.start(), r.zone())),
        Err(_) => DateTime::parse_from_rfc3339(text.trim()).ok().map(|t| t.with_timezone(&Utc)),
    }
}

pub fn tree_of(r: &Release, def: &Definition, phases: &[ReleasePhase], activities: &[ReleaseActivity]) -> Tree {
    let act_of = |a: &ReleaseActivity| act_in(def, a);
    Tree {
        phases: phases
            .iter()
            .map(|p| Phase {
                key: p.key.clone(),
                status: p.status,
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
pub fn act_in(def: &Definition, a: &ReleaseActivity) -> Act {
    let fan_out = def.activity(&a.phase_key, &a.key).filter(|d| d.for_each.is_some() && !a.is_instance());
    Act {
        fan_of: a.fan_of.clone(),
        max_parallel: fan_out.map(|d| d.parallelism()),
        retry_start: a.status == Node::Waiting && a.hold == Some(Hold::DeployLock),
        phase: a.phase_key.clone(),
        key: a.key.clone(),
        kind: a.kind,
        status: a.status,
        depends_on: a.depends_on.clone(),
        critical: a.critical,
        on_failure: a.on_failure,
        wake_at: a.wake_at,
        deadline: a.deadline,
    }
}
