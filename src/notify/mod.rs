//! Delivery of the outbox (in-app, e-mail over SMTP, chat webhook), reminders and escalation.
//! `ops::outbox` writes the outbox inside each change's transaction; this module delivers it
//! later. A delivery failure never blocks or rolls back a release: it is retried.

pub mod mail;
pub mod reminders;

use serde_json::Value;
use tracing::Instrument;

use crate::db::models::outbox::{self, OutboxRow};
use crate::domain::notification::Channel;
use crate::state::Services;
use mail::DeliveryError;

/// Messages claimed together: each send is bounded (SMTP: 10 s), so a batch ends well inside
/// its two-minute lease.
const CLAIM_BATCH: usize = 8;

fn text(payload: &Value, key: &str) -> String {
    payload.get(key).and_then(Value::as_str).unwrap_or_default().to_string()
}

/// Delivers due outbox messages; returns how many went out.
pub async fn deliver_due(services: &Services, limit: usize) -> anyhow::Result<usize> {
    let mut delivered = 0;
    let mut claimed = std::collections::VecDeque::new();
    let mut left = limit;
    loop {
        if claimed.is_empty() && left > 0 {
            let mut conn = services.pool.get().await?;
            let batch = outbox::claim(&mut conn, services.clock.now(), CLAIM_BATCH.min(left) as i64).await?;
            left -= batch.len();
            claimed.extend(batch);
        }
        let Some(row) = claimed.pop_front() else { break };
        let span = tracing::debug_span!("deliver", notification_id = row.id);
        if deliver(services, row).instrument(span).await? {
            delivered += 1;
        }
    }
    Ok(delivered)
}

/// Delivers one claimed message and records how that went; returns whether it went out.
async fn deliver(services: &Services, row: OutboxRow) -> anyhow::Result<bool> {
    tracing::debug!(channel = %row.channel, kind = %row.kind, "delivering a notification");
    let outcome: Result<(), DeliveryError> = match row.channel {
        Channel::InApp => match row.user_id {
            Some(user_id) => {
                let mut conn = services.pool.get().await?;
                let subject = mail::single_line(&text(&row.payload, "subject"));
                let link = Some(text(&row.payload, "link")).filter(|l| !l.is_empty());
                outbox::add_in_app(&mut conn, &row, user_id, (&subject, &text(&row.payload, "body"), link.as_deref()))
                    .await
                    .map(|_| ())
                    .map_err(DeliveryError::Store)
            }
            None => Ok(()),
        },
        Channel::Email => {
            let muted = match row.user_id {
                Some(u) => {
                    let mut conn = services.pool.get().await?;
                    outbox::muted(&mut conn, u, &row.kind).await?
                }
                None => false,
            };
            match (&services.settings.smtp_url, muted) {
                (Some(url), false) => mail::send(url, &services.settings, &row.payload).await,
                _ => Ok(()),
            }
        }
        Channel::Chat => {
            let (hook, slug) = {
                let mut conn = services.pool.get().await?;
                (
                    outbox::chat_webhook(&mut conn, row.account_id).await?,
                    crate::db::models::accounts::slug_of(&mut conn, row.account_id).await?,
                )
            };
            match hook {
                Some(url) => mail::post_chat(&url, &services.settings.base_url, &row.payload, &services.private_allow, &slug).await,
                None => Ok(()),
            }
        }
    };
    let ok = outcome.is_ok();
    if let Err(e) = &outcome {
        tracing::debug!(error = ?e, "the notification was not delivered; it is retried");
    }
    let mut conn = services.pool.get().await?;
    let links = (crate::ops::outbox::SIGNOFF_PREFIX, crate::ops::outbox::WORK_LINK);
    outbox::mark(&mut conn, row.id, outcome.map_err(|e| e.to_string()), row.attempts + 1, links, services.clock.now()).await?;
    Ok(ok)
}
