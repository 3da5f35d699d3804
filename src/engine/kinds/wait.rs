//! A wait: for a duration from its start, or until a point in the release's schedule.

use chrono::{DateTime, Utc};

use super::Start;
use crate::db::models::releases::Release;
use crate::domain::engine::Node;
use crate::domain::process::definition::ActivityDef;
use crate::domain::process::time::parse_duration;
use crate::domain::release::Hold;

pub fn start(r: &Release, def: &ActivityDef, now: DateTime<Utc>) -> Start {
    let wake_at = match (&def.wait_for, &def.until) {
        (Some(d), _) => parse_duration(d).ok().map(|d| now + d),
        (None, Some(u)) => crate::engine::tree::resolve_point(u, r),
        _ => None,
    };
    match wake_at {
        Some(at) => Start { status: Node::Waiting, wake_at: Some(at), ..Start::running() },
        None => Start::held(Hold::Decision, "the wait's time could not be resolved; a release manager decides".into()),
    }
}
