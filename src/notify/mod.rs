//! Delivery of the outbox (in-app, e-mail over SMTP, chat webhook), reminders and escalation.
//! `ops::outbox` writes the outbox inside each change's transaction; this module delivers it
//! later. A delivery failure never blocks or rolls back a release: it is retried.

pub mod mail;
pub mod reminders;

use chrono::{DateTime, TimeDelta, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde_json::Value;

use crate::db::prepared::prepared;
use crate::db::schema::{account_settings, notification_outbox, notifications, user_mutes};
use crate::state::Services;
use mail::DeliveryError;

#[derive(Debug, Clone, Queryable, QueryableByName, Selectable)]
#[diesel(table_name = notification_outbox)]
pub struct OutboxRow {
    pub id: i64,
    pub account_id: i64,
    pub user_id: Option<i64>,
    pub channel: String,
    pub kind: String,
    pub payload: Value,
    pub created_at: DateTime<Utc>,
    pub attempts: i32,
    pub next_attempt_at: DateTime<Utc>,
    pub delivered_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
}

/// Messages claimed together: each send is bounded (SMTP: 10 s), so a batch ends well inside
/// its two-minute lease.
const CLAIM_BATCH: usize = 8;

/// Claims up to `limit` due messages in one statement (a short lease via `next_attempt_at`), so
/// several workers never send the same message at once; each is marked delivered after it went out.
async fn claim(conn: &mut AsyncPgConnection, now: DateTime<Utc>, limit: i64) -> QueryResult<Vec<OutboxRow>> {
    use diesel::sql_types::{BigInt, Timestamptz};
    prepared(
        diesel::sql_query(
            "UPDATE notification_outbox o SET next_attempt_at = $2, attempts = o.attempts + 1 \
         WHERE o.id IN (SELECT id FROM notification_outbox WHERE delivered_at IS NULL AND next_attempt_at <= $1 \
                        ORDER BY id LIMIT $3 FOR UPDATE SKIP LOCKED) \
         RETURNING o.id, o.account_id, o.user_id, o.channel, o.kind, o.payload, o.created_at, o.attempts - 1 AS attempts, \
                   o.next_attempt_at, o.delivered_at, o.last_error",
        )
        .bind::<Timestamptz, _>(now)
        .bind::<Timestamptz, _>(now + TimeDelta::minutes(2))
        .bind::<BigInt, _>(limit),
    )
    .load::<OutboxRow>(conn)
    .await
    .map(|mut rows| {
        rows.sort_by_key(|r| r.id);
        rows
    })
}

async fn mark(
    conn: &mut AsyncPgConnection,
    id: i64,
    outcome: Result<(), DeliveryError>,
    attempts: i32,
    now: DateTime<Utc>,
) -> QueryResult<usize> {
    match outcome {
        Ok(()) => {
            // Once sent, the sign-off link's plaintext token has no reason to stay in the outbox.
            prepared(diesel::sql_query(
                "UPDATE notification_outbox SET delivered_at = $2, last_error = NULL, \
                 payload = CASE WHEN starts_with(payload->>'link', $4) THEN jsonb_set(payload, '{link}', to_jsonb($3::text)) ELSE payload END \
                 WHERE id = $1",
            )
            .bind::<diesel::sql_types::BigInt, _>(id)
            .bind::<diesel::sql_types::Timestamptz, _>(now)
            .bind::<diesel::sql_types::Text, _>(crate::ops::outbox::WORK_LINK)
            .bind::<diesel::sql_types::Text, _>(crate::ops::outbox::SIGNOFF_PREFIX))
            .execute(conn)
            .await
        }
        Err(e) => {
            // Backoff: 30 s, 1 min, 2 min, … up to an hour.
            let wait = TimeDelta::seconds(30 * 2i64.pow(attempts.clamp(0, 7) as u32)).min(TimeDelta::hours(1));
            diesel::update(notification_outbox::table.find(id))
                .set((notification_outbox::next_attempt_at.eq(now + wait), notification_outbox::last_error.eq(e.to_string())))
                .execute(conn)
                .await
        }
    }
}

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
            let batch = claim(&mut conn, services.clock.now(), CLAIM_BATCH.min(left) as i64).await?;
            left -= batch.len();
            claimed.extend(batch);
        }
        let Some(row) = claimed.pop_front() else { break };
        tracing::debug!(notification_id = row.id, channel = %row.channel, kind = %row.kind, "delivering a notification");
        let mut conn = services.pool.get().await?;
        let outcome: Result<(), DeliveryError> = match row.channel.as_str() {
            "in_app" => match row.user_id {
                Some(user_id) => diesel::insert_into(notifications::table)
                    .values((
                        notifications::account_id.eq(row.account_id),
                        notifications::user_id.eq(user_id),
                        notifications::kind.eq(&row.kind),
                        notifications::subject.eq(mail::single_line(&text(&row.payload, "subject"))),
                        notifications::body.eq(text(&row.payload, "body")),
                        notifications::link.eq(Some(text(&row.payload, "link")).filter(|l| !l.is_empty())),
                        notifications::created_at.eq(row.created_at),
                    ))
                    .execute(&mut conn)
                    .await
                    .map(|_| ())
                    .map_err(DeliveryError::Store),
                None => Ok(()),
            },
            "email" => {
                let muted = match row.user_id {
                    Some(u) => {
                        user_mutes::table
                            .filter(user_mutes::user_id.eq(u))
                            .filter(user_mutes::kind.eq(&row.kind))
                            .count()
                            .get_result::<i64>(&mut conn)
                            .await
                            .unwrap_or(0)
                            > 0
                    }
                    None => false,
                };
                drop(conn);
                match (&services.settings.smtp_url, muted) {
                    (_, true) => Ok(()),
                    (None, false) => Ok(()),
                    (Some(url), false) => mail::send(url, &services.settings, &row.payload).await,
                }
            }
            "chat" => {
                let hook: Option<Option<String>> = account_settings::table
                    .find(row.account_id)
                    .select(account_settings::chat_webhook_url)
                    .first(&mut conn)
                    .await
                    .optional()?;
                let slug = crate::db::models::accounts::slug_of(&mut conn, row.account_id).await?;
                drop(conn);
                match hook.flatten() {
                    Some(url) => mail::post_chat(&url, &services.settings.base_url, &row.payload, &services.private_allow, &slug).await,
                    None => Ok(()),
                }
            }
            other => Err(DeliveryError::UnknownChannel(other.to_string())),
        };
        let ok = outcome.is_ok();
        let mut conn = services.pool.get().await?;
        mark(&mut conn, row.id, outcome, row.attempts + 1, services.clock.now()).await?;
        if ok {
            delivered += 1;
        }
    }
    Ok(delivered)
}
