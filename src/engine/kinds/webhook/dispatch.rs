//! The worker's send loop, beside the engine loop: claims due attempts whenever a slot frees up
//! (bounded per worker and per account), sends each on a task of its own, and commits each
//! result as soon as it arrives, so one slow tenant never holds up another (DESIGN §9).

use anyhow::Context;
use std::time::Duration;

use super::record::complete;
use super::request::{claim, Senders};
use super::transport::{send, Outcome};
use crate::state::Services;

fn senders(services: &Services) -> Senders<'_> {
    (&services.secrets, &services.settings.base_url, &services.definitions)
}

/// Sends at most this many requests at once per worker, and per account within that, so one
/// tenant's slow endpoint never holds up the others (DESIGN §9).
pub const SENDS_PER_WORKER: usize = 32;
pub const SENDS_PER_ACCOUNT: usize = 16;

/// Claims and sends due attempts concurrently (bounded per worker and per account); each send
/// commits its own result as soon as it arrives, on its own connection, so one release's result
/// never waits for another's. Claiming is unchanged (one attempt per claim, leased to this
/// worker), so the exactly-once and crash rules stay as they were.
pub async fn send_due(services: &Services, worker: &str, limit: usize) -> anyhow::Result<usize> {
    sends(services, worker, Some(limit)).await
}

/// The worker's send loop, beside the engine loop (which never waits for a send): claims
/// whenever a slot is free and something is due, woken by the engine (`send_wake`) or at the
/// latest every `SEND_POLL`, while slow sends go on. Returns only on an error.
pub async fn send_continuously(services: &Services, worker: &str) -> anyhow::Result<usize> {
    sends(services, worker, None).await
}

/// How often the send loop looks for due attempts when nothing wakes it.
const SEND_POLL: Duration = Duration::from_millis(200);

/// `limit`: stop after about this many sends (a test's tick); `None`: go on for ever.
async fn sends(services: &Services, worker: &str, limit: Option<usize>) -> anyhow::Result<usize> {
    use futures_util::stream::{FuturesUnordered, StreamExt};
    use std::sync::atomic::{AtomicIsize, Ordering};
    use tracing::Instrument;
    let continuous = limit.is_none();
    let limit = limit.unwrap_or(usize::MAX / 2);
    let mut in_flight = FuturesUnordered::new();
    let mut per_account: std::collections::HashMap<i64, usize> = std::collections::HashMap::new();
    let mut sent = 0;
    // Claims left in this round, shared with the tasks that take their account's next attempt,
    // so a round ends after about `limit` sends and the worker goes back to starting what is due.
    let left = std::sync::Arc::new(AtomicIsize::new(isize::try_from(limit).unwrap_or(isize::MAX)));
    let mut first_error: Option<anyhow::Error> = None;
    loop {
        // Fill up to the bounds; after each result, try again (an account may have room now).
        // After an error nothing new is claimed, but what is in flight still commits: a
        // result dropped half-way would only be sent again.
        // While a round starts what is due, the loop claims nothing new: a burst's starts come
        // before its sends (in-flight sends go on).
        let starting = continuous && std::sync::atomic::AtomicUsize::load(&services.starting, Ordering::SeqCst) > 0;
        while !starting && first_error.is_none() && in_flight.len() < SENDS_PER_WORKER && AtomicIsize::load(&left, Ordering::SeqCst) > 0 {
            let busy: Vec<i64> = per_account.iter().filter(|(_, n)| **n >= SENDS_PER_ACCOUNT).map(|(a, _)| *a).collect();
            let claimed = async {
                let mut conn = services.pool.get().await?;
                claim(&mut conn, worker, senders(services), &busy, services.clock.now()).await.context("claim")
            }
            .await;
            let claimed = match claimed {
                Ok(Some(claimed)) => claimed,
                Ok(None) => break,
                Err(e) => {
                    first_error = Some(e);
                    break;
                }
            };
            left.fetch_sub(1, Ordering::SeqCst);
            *per_account.entry(claimed.account_id).or_default() += 1;
            // A task of its own: it makes progress (and gives its connection back) while this
            // loop waits for a connection to claim the next one.
            let (services, worker, account_id, left) = (services.clone(), worker.to_string(), claimed.account_id, left.clone());
            // The task goes on with what its account has due next, in the same slot.
            let task = tokio::spawn(async move {
                let (mut claimed, mut sent) = (claimed, 0);
                loop {
                    let span = tracing::debug_span!("send", attempt_id = claimed.attempt_id, release_id = claimed.release_id);
                    let next = async {
                        let outcome = match &claimed.request {
                            Ok(request) => send(request, &services.private_allow, &claimed.secrets).await,
                            Err(why) => Outcome::refused(why.clone()),
                        };
                        tracing::debug!(status = ?outcome.status, error = ?outcome.error, duration_ms = ?outcome.duration_ms, "webhook sent");
                        let mut conn = services.pool.get().await?;
                        let take_next = left.fetch_sub(1, Ordering::SeqCst) > 0;
                        let next =
                            complete(&mut conn, senders(&services), claimed.attempt_id, &worker, outcome, take_next, services.clock.now())
                                .await
                                .context("complete")?;
                        tracing::debug!("webhook result recorded");
                        // Recording may have started successors (of any account): look again.
                        services.send_wake.notify_one();
                        Ok::<_, anyhow::Error>(next)
                    }
                    .instrument(span)
                    .await?;
                    sent += 1;
                    match next {
                        Some(next) => claimed = next,
                        None => {
                            left.fetch_add(1, Ordering::SeqCst);
                            return Ok::<usize, anyhow::Error>(sent);
                        }
                    }
                }
            });
            in_flight.push(async move { (account_id, task.await.map_err(anyhow::Error::from).and_then(|committed| committed)) });
        }
        let finished = if continuous {
            // Sends in flight must not keep newly due attempts (another tenant's) waiting.
            tokio::select! {
                finished = in_flight.next() => finished,
                _ = services.send_wake.notified() => continue,
                _ = tokio::time::sleep(SEND_POLL) => continue,
            }
        } else {
            in_flight.next().await
        };
        let Some((account_id, committed)) = finished else {
            if continuous && first_error.is_none() {
                tokio::select! {
                    _ = services.send_wake.notified() => {}
                    _ = tokio::time::sleep(SEND_POLL) => {}
                }
                continue;
            }
            break;
        };
        if let Some(n) = per_account.get_mut(&account_id) {
            *n = n.saturating_sub(1);
        }
        match committed {
            Ok(n) => sent += n,
            Err(e) if first_error.is_none() => first_error = Some(e),
            Err(e) => tracing::warn!(error = ?e, "committing a webhook result failed; its lease will run out and it is sent again"),
        }
    }
    match first_error {
        Some(e) => Err(e),
        None => Ok(sent),
    }
}
