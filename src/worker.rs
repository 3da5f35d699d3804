//! The background worker: one loop per process that runs the sweeps, the engine and reminders,
//! a loop beside it that sends webhooks, and one that delivers notifications. It sits above `engine` and
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

/// How many lanes a worker starts a burst of due releases on, each with its own connection:
/// a start mostly waits for PostgreSQL, so a few at once use both cores (measured: 2, 3 and 4
/// lanes, 4 best).
const START_LANES: usize = 4;

/// One lane of starting what is due: activates due drafts a batch at a time and moves every
/// release that needs it, until a batch comes back short. Returns (activated, moved, whether
/// more may be due).
async fn start_due(services: &Services, batches: usize) -> anyhow::Result<(usize, usize, bool)> {
    let (mut activated, mut moved, mut more) = (0, 0, false);
    for _ in 0..batches {
        let swept = {
            let mut conn = services.pool.get().await?;
            crate::ops::releases::sweep_due(&mut conn, services.clock.now()).await.context("activation sweep")?
        };
        let mut conn = services.pool.get().await?;
        let stepped = engine::step(&mut conn, &services.definitions, || services.clock.now()).await.context("engine")?;
        (activated, moved) = (activated + swept.activated, moved + stepped);
        // A full batch that started something: more may be due. (A batch of drafts that all
        // stay drafts is no burst.)
        more = swept.claimed == crate::ops::releases::ACTIVATION_BATCH && swept.activated > 0;
        if !more {
            break;
        }
    }
    Ok((activated, moved, more))
}

/// One round of all background work: release groups, auto-activation, the engine, retention,
/// webhook sends and reminders.
pub async fn tick(services: &Services, worker: &str) -> anyhow::Result<usize> {
    round(services, worker, Round { housekeeping: true, sends: true }).await
}

/// A round starting what is due, for the send loop to see (it claims nothing new meanwhile);
/// ended on drop, errors included, and the send loop is woken then.
struct Starting<'a>(&'a Services);

impl<'a> Starting<'a> {
    fn begin(services: &'a Services) -> Self {
        services.starting.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Starting(services)
    }
}

impl Drop for Starting<'_> {
    fn drop(&mut self) {
        self.0.starting.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
        self.0.send_wake.notify_one();
    }
}

/// What a round does besides starting what is due and moving the engine.
#[derive(Debug, Clone, Copy)]
struct Round {
    /// The housekeeping sweeps (release groups, retention, reminders).
    housekeeping: bool,
    /// Webhook sends, waiting for them: only a test's tick; the worker sends in its own loop.
    sends: bool,
}

/// How often the worker loop runs the housekeeping sweeps (release groups, retention,
/// reminders): none of them is urgent to the second, and during a burst the loop goes round
/// hundreds of times a second.
const HOUSEKEEPING_EVERY: Duration = Duration::from_secs(1);

/// One round; the housekeeping sweeps only when asked.
#[tracing::instrument(level = "debug", name = "round", skip(services, what))]
async fn round(services: &Services, worker: &str, what: Round) -> anyhow::Result<usize> {
    let Round { housekeeping, sends } = what;
    let now = services.clock.now();
    let generated = if housekeeping {
        let mut conn = services.pool.get().await?;
        beat(services, &mut conn, worker, now).await?;
        crate::ops::release_groups::sweep(&mut conn, &services.secrets, now).await.context("release groups")?
    } else {
        0
    };
    // Starting what is due comes first: a burst of due releases is activated and moved on, batch
    // by batch, before this worker sends anything, so the last release of a burst does not
    // wait behind the first ones' webhooks.
    let (activated, moved) = {
        let _starting = Starting::begin(services);
        let (mut activated, mut moved, burst) = start_due(services, 1).await?;
        if burst {
            // A burst: the rest of it is started on several connections at once.
            let lanes = (0..START_LANES).map(|_| start_due(services, 20));
            for (started, stepped, _) in futures_util::future::try_join_all(lanes).await? {
                (activated, moved) = (activated + started, moved + stepped);
            }
        }
        (activated, moved)
    };
    let archived = if housekeeping {
        let mut conn = services.pool.get().await?;
        crate::ops::releases::retention_sweep(&mut conn, services.settings.retention_days, now).await.context("retention sweep")?
    } else {
        0
    };
    let sent = if sends { webhook::send_due(services, worker, 50).await? } else { 0 };
    let reminded = if housekeeping {
        let mut conn = services.pool.get().await?;
        crate::notify::reminders::sweep(&mut conn, now).await.context("reminders")?
    } else {
        0
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
        tracing::warn!(error = ?e, "notification delivery failed; will retry");
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
        // Webhooks are sent by their own loop, beside the engine's: a slow endpoint never holds
        // up scheduled starts, engine steps, timeouts or another tenant's sends.
        let send_state = services.clone();
        let send_worker = worker.clone();
        tokio::spawn(async move {
            loop {
                if let Err(e) = webhook::send_continuously(&send_state, &send_worker).await {
                    tracing::warn!(error = ?e, "the send loop failed; starting it again");
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
                tracing::warn!(error = ?e, "worker connection lost; reconnecting");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    });
}

/// How long the worker may sleep: until the next scheduled start or timed look, so a release
/// starts at its time rather than at the next poll, and never more than `POLL`, the fallback
/// for anything no wake-up announces.
async fn until_next_due(services: &Services) -> Duration {
    let now = services.clock.now();
    let next = match services.pool.get().await {
        Ok(mut conn) => crate::db::wake::next_due(&mut conn, now).await.ok().flatten(),
        Err(_) => None,
    };
    next.and_then(|at| (at - now).to_std().ok())
        // A timer may fire a little early; the sweep compares with the clock, so aim just after.
        .map(|wait| wait + Duration::from_millis(1))
        .map_or(POLL, |wait| wait.min(POLL))
}

/// The fallback poll: anything no wake-up announces is looked at within this.
const POLL: Duration = Duration::from_secs(1);

async fn worker_loop(services: &Services, worker: &str) -> anyhow::Result<()> {
    use futures_util::StreamExt;
    let mut listener = crate::db::wake::listen(&services.settings.database_url).await?;
    let mut notifications = std::pin::pin!(listener.notifications_stream());
    let mut housekept: Option<std::time::Instant> = None;
    loop {
        let pause = until_next_due(services).await;
        tokio::select! {
            n = notifications.next() => {
                if n.is_none() { anyhow::bail!("notification stream ended"); }
            }
            _ = tokio::time::sleep(pause) => {}
        }
        // One look answers every wake-up sent so far: a burst of commits sends hundreds.
        loop {
            match futures_util::FutureExt::now_or_never(notifications.next()) {
                Some(Some(_)) => {}
                Some(None) => anyhow::bail!("notification stream ended"),
                None => break,
            }
        }
        // Keep going while there is work, so a chain of changes does not wait for the poll.
        for _ in 0..50 {
            let housekeeping = housekept.is_none_or(|at| at.elapsed() >= HOUSEKEEPING_EVERY);
            if housekeeping {
                housekept = Some(std::time::Instant::now());
            }
            match round(services, worker, Round { housekeeping, sends: false }).await {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(error = ?e, "worker tick failed");
                    break;
                }
            }
        }
    }
}
