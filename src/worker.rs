//! The background worker: one loop per process that runs the sweeps, the engine, webhook sends
//! and reminders, and a separate loop that delivers notifications. It sits above `engine` and
//! `notify` so that neither needs the other.

use anyhow::Context;
use std::time::Duration;

use crate::db::models::webhook_attempts;
use crate::engine::{self, webhook};
use crate::state::Services;

/// Auto-activation of due drafts and the retention job; returns (activated, archived).
pub async fn run_sweeps(services: &Services) -> anyhow::Result<(usize, usize)> {
    let mut conn = services.pool.get().await?;
    let now = services.clock.now();
    let activated = crate::ops::releases::activation_sweep(&mut conn, now).await.context("activation sweep")?;
    let archived =
        crate::ops::releases::retention_sweep(&mut conn, services.settings.retention_days, now).await.context("retention sweep")?;
    Ok((activated, archived))
}

/// One round of all background work: release groups, auto-activation, the engine, retention,
/// webhook sends and reminders.
pub async fn tick(services: &Services, worker: &str) -> anyhow::Result<usize> {
    let now = services.clock.now();
    let generated = {
        let mut conn = services.pool.get().await?;
        beat(services, &mut conn, worker, now).await?;
        crate::ops::release_groups::sweep(&mut conn, &services.secrets, now).await.context("release groups")?
    };
    // Starting what is due comes first: a burst of due releases is activated and moved on, batch
    // by batch, before this worker sends anything, so the last release of a burst does not
    // wait behind the first ones' webhooks.
    let (mut activated, mut archived, mut moved) = (0, 0, 0);
    for _ in 0..20 {
        let (started, swept) = run_sweeps(services).await?;
        let mut conn = services.pool.get().await?;
        moved += engine::step(&mut conn, &services.definitions, || services.clock.now()).await.context("engine")?;
        (activated, archived) = (activated + started, archived + swept);
        if started < crate::ops::releases::ACTIVATION_BATCH {
            break;
        }
    }
    let sent = webhook::send_due(services, worker, 50).await?;
    let reminded = {
        let mut conn = services.pool.get().await?;
        crate::notify::reminders::sweep(&mut conn, now).await.context("reminders")?
    };
    Ok(generated + activated + moved + archived + sent + reminded)
}

/// How often a worker's heartbeat is written: well inside `HEARTBEAT_STALE_SECONDS`, and rarely
/// enough that an idle server does not write every second (each write is a new database
/// snapshot, which ends the hot pages' cached readings).
const BEAT_EVERY: chrono::TimeDelta = chrono::TimeDelta::seconds(5);

/// Whether the worker's heartbeat is due: not written in the last `BEAT_EVERY` (a clock that
/// went back, as a test's may, always makes it due).
fn beat_due(services: &Services, worker: &str, now: chrono::DateTime<chrono::Utc>) -> bool {
    let last = services.beats.lock().ok().and_then(|beats| beats.get(worker).copied());
    !last.is_some_and(|last| last <= now && now - last < BEAT_EVERY)
}

/// Writes the worker's heartbeat if it is due.
async fn beat(
    services: &Services,
    conn: &mut diesel_async::AsyncPgConnection,
    worker: &str,
    now: chrono::DateTime<chrono::Utc>,
) -> anyhow::Result<()> {
    if !beat_due(services, worker, now) {
        return Ok(());
    }
    webhook_attempts::heartbeat(conn, worker, now).await?;
    if let Ok(mut beats) = services.beats.lock() {
        beats.insert(worker.to_string(), now);
    }
    Ok(())
}

/// One round of everything, notifications included (tests step the worker with this).
pub async fn tick_all(services: &Services, worker: &str) -> anyhow::Result<usize> {
    let moved = tick(services, worker).await?;
    Ok(moved + deliver(services).await)
}

/// Notifications go out apart from the engine and never hold it up; failures are retried later.
async fn deliver(services: &Services) -> usize {
    crate::notify::deliver_due(services, 200).await.unwrap_or_else(|e| {
        tracing::warn!(error = %e, "notification delivery failed; will retry");
        0
    })
}

/// A name for this worker process, unique across servers and restarts.
pub fn worker_id() -> String {
    format!("{}-{}", std::process::id(), crate::security::random_token(6))
}

/// The worker loop: LISTEN on a dedicated connection, and poll every second as a fallback.
pub fn spawn_worker(services: Services) {
    tokio::spawn(async move {
        let worker = worker_id();
        // Notifications are delivered by their own loop, so mail never delays the engine.
        let mail_state = services.clone();
        tokio::spawn(async move {
            loop {
                if deliver(&mail_state).await == 0 {
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
            }
        });
        // The heartbeat runs apart from the work, so a long send never makes a live worker look dead.
        let beat_state = services.clone();
        let beat_worker = worker.clone();
        tokio::spawn(async move {
            let mut every = tokio::time::interval(Duration::from_secs(1));
            loop {
                every.tick().await;
                // A connection only when a beat is due, not every second.
                if !beat_due(&beat_state, &beat_worker, beat_state.clock.now()) {
                    continue;
                }
                if let Ok(mut conn) = beat_state.pool.get().await {
                    let _ = beat(&beat_state, &mut conn, &beat_worker, beat_state.clock.now()).await;
                }
            }
        });
        loop {
            if let Err(e) = worker_loop(&services, &worker).await {
                tracing::warn!(error = %e, "worker connection lost; reconnecting");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    });
}

async fn worker_loop(services: &Services, worker: &str) -> anyhow::Result<()> {
    use futures_util::StreamExt;
    let mut listener = crate::db::wake::listen(&services.settings.database_url).await?;
    let mut notifications = std::pin::pin!(listener.notifications_stream());
    let mut poll = tokio::time::interval(Duration::from_secs(1));
    poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            n = notifications.next() => {
                if n.is_none() { anyhow::bail!("notification stream ended"); }
            }
            _ = poll.tick() => {}
        }
        // Keep going while there is work, so a chain of changes does not wait for the poll.
        for _ in 0..50 {
            match tick(services, worker).await {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "worker tick failed");
                    break;
                }
            }
        }
    }
}
