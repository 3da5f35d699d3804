//! Webhook activities exactly as DESIGN §9: starting one queues its first attempt; the send loop
//! (`dispatch`) claims it as `sending` with a lease and its idempotency key (`request`), sends
//! it outside any transaction (`transport`), then commits the result (`record`).

pub mod dispatch;
pub mod record;
pub mod request;
pub mod transport;

use chrono::{DateTime, TimeDelta, Utc};
use diesel_async::AsyncPgConnection;

use super::Start;
use crate::db::models::releases::{Release, ReleaseActivity};
use crate::domain::process::definition::{ActivityDef, DEFAULT_WEBHOOK_TIMEOUT};
use crate::domain::process::time::parse_duration;
use crate::ops::OpError;

pub use crate::db::models::webhook_attempts::idempotency_key;
pub use dispatch::{send_continuously, send_due, SENDS_PER_ACCOUNT, SENDS_PER_WORKER};
pub use request::{Claimed, HEARTBEAT_STALE_SECONDS};
pub use transport::{allowed, MAX_RESPONSE_BYTES};

/// A `completion: response` request gets at most this long (or its `timeout`, if shorter).
pub const MAX_REQUEST_SECONDS: i64 = 60;

/// How long a webhook waits: its request with `completion: response`, its callback otherwise.
pub fn timeout_of(def: &ActivityDef) -> TimeDelta {
    def.config
        .as_ref()
        .and_then(|c| c.timeout.as_deref())
        .and_then(|t| parse_duration(t).ok())
        .unwrap_or_else(|| parse_duration(DEFAULT_WEBHOOK_TIMEOUT).unwrap_or(TimeDelta::hours(1)))
}

/// A webhook starts by queueing its attempt; the send loop takes it from there.
pub fn start(row: &ReleaseActivity) -> Start {
    Start { reason: Some(format!("sending attempt {}", row.attempts + 1)), ..Start::running() }
}

/// After the start is written: the attempt, due now.
pub async fn queue(conn: &mut AsyncPgConnection, r: &Release, row: &ReleaseActivity, now: DateTime<Utc>) -> Result<(), OpError> {
    crate::db::models::webhook_attempts::enqueue(conn, r, &row.phase_key, &row.key, row.attempts + 1, now, now).await?;
    Ok(())
}
