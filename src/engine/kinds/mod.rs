//! Starting an activity, one file per kind: who owns it, who may approve it, when a wait ends,
//! what a webhook sends, which child release a subprocess runs. The run's start is written,
//! audited and followed by what the kind does next, the same way for every kind.

pub mod approval;
pub mod manual;
pub mod subprocess;
pub mod wait;
pub mod webhook;

use chrono::{DateTime, Utc};
use diesel_async::AsyncPgConnection;
use serde_json::json;

use crate::db::audit::{self, NewEvent};
use crate::db::engine as rows;
use crate::db::models::releases::{Release, ReleaseActivity};
use crate::domain::engine::Node;
use crate::domain::process::definition::{ActivityDef, ActivityKind};
use crate::domain::process::time::parse_duration;
use crate::domain::release::Hold;
use crate::ops::OpError;

/// How a kind starts its run.
pub struct Start {
    pub status: Node,
    pub hold: Option<Hold>,
    pub reason: Option<String>,
    /// Approvals: who may approve, and how many must.
    pub eligible: Vec<i64>,
    pub needed: usize,
    /// Waits: when the wait ends.
    pub wake_at: Option<DateTime<Utc>>,
}

impl Start {
    pub fn running() -> Start {
        Start { status: Node::Running, hold: None, reason: None, eligible: Vec::new(), needed: 0, wake_at: None }
    }

    /// Held at its start, for a person to decide or act.
    pub fn held(hold: Hold, reason: String) -> Start {
        Start { status: Node::OnHold, hold: Some(hold), reason: Some(reason), ..Start::running() }
    }
}

/// Where the activity stands once started, for the engine's tree.
pub struct Started {
    pub status: Node,
    pub wake_at: Option<DateTime<Utc>>,
    pub deadline: Option<DateTime<Utc>>,
}

/// Starts an activity's new run (a new attempt or approval round).
pub async fn start(
    conn: &mut AsyncPgConnection,
    r: &Release,
    row: &ReleaseActivity,
    def: &ActivityDef,
    now: DateTime<Utc>,
) -> Result<Started, OpError> {
    let start = match def.kind {
        ActivityKind::Manual => manual::start(conn, r, row, def, now).await?,
        ActivityKind::Approval => approval::start(conn, r, row, def, now).await?,
        ActivityKind::Wait => wait::start(r, def, now),
        ActivityKind::Webhook => webhook::start(row),
        ActivityKind::Subprocess => Start::running(),
    };
    // The timeout counts from this start and covers every automatic retry of this run.
    let deadline = def.timeout.as_deref().and_then(|t| parse_duration(t).ok()).map(|t| now + t);
    let attempt = row.attempts + 1;
    let written = rows::Start {
        status: start.status,
        hold: start.hold,
        reason: start.reason.as_deref(),
        eligible: &start.eligible,
        needed: i32::try_from(start.needed).unwrap_or(i32::MAX),
        wake_at: start.wake_at,
        deadline,
        attempt,
    };
    rows::start_activity(conn, r.id, (&row.phase_key, &row.key), written, now).await?;
    let details = json!({"attempt": attempt, "status": start.status.as_str(), "eligible": start.eligible, "needed": start.needed, "wake_at": start.wake_at, "deadline": deadline});
    let event = NewEvent { reason: start.reason.clone(), ..NewEvent::release(r, "system:engine", "activity.start") }
        .with_subject(format!("activity:{}.{}", row.phase_key, row.key))
        .with_details(details);
    audit::append(conn, event, now).await?;
    match def.kind {
        ActivityKind::Webhook => webhook::queue(conn, r, row, now).await?,
        ActivityKind::Subprocess => {
            if let Some(status) = subprocess::run(conn, r, row, def, now).await? {
                return Ok(Started { status, wake_at: None, deadline: None });
            }
        }
        _ => {}
    }
    Ok(Started { status: start.status, wake_at: start.wake_at, deadline })
}
