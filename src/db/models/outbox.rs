//! The notification outbox: rows written inside each change's transaction (`ops::outbox`),
//! claimed and marked by the worker's delivery (`notify`).

use chrono::{DateTime, TimeDelta, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde_json::Value;

use crate::db::prepared::prepared;
use crate::db::schema::{account_settings, notification_outbox, notifications, user_mutes};
use crate::domain::notification::Channel;

#[derive(Debug, Clone, Queryable, QueryableByName, Selectable)]
#[diesel(table_name = notification_outbox)]
pub struct OutboxRow {
    pub id: i64,
    pub account_id: i64,
    pub user_id: Option<i64>,
    pub channel: Channel,
    pub kind: String,
    pub payload: Value,
    pub created_at: DateTime<Utc>,
    pub attempts: i32,
    pub next_attempt_at: DateTime<Utc>,
    pub delivered_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
}

/// Claims up to `limit` due messages in one statement (a short lease via `next_attempt_at`), so
/// several workers never send the same message at once; each is marked delivered after it went out.
pub async fn claim(conn: &mut AsyncPgConnection, now: DateTime<Utc>, limit: i64) -> QueryResult<Vec<OutboxRow>> {
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

pub async fn mark(
    conn: &mut AsyncPgConnection,
    id: i64,
    outcome: Result<(), String>,
    attempts: i32,
    (signoff_prefix, work_link): (&str, &str),
    now: DateTime<Utc>,
) -> QueryResult<usize> {
    match outcome {
        Ok(()) => {
            // Once sent, the sign-off link's plaintext token has no reason to stay in the outbox:
            // a link starting with `signoff_prefix` becomes `work_link`.
            prepared(diesel::sql_query(
                "UPDATE notification_outbox SET delivered_at = $2, last_error = NULL, \
                 payload = CASE WHEN starts_with(payload->>'link', $4) THEN jsonb_set(payload, '{link}', to_jsonb($3::text)) ELSE payload END \
                 WHERE id = $1",
            )
            .bind::<diesel::sql_types::BigInt, _>(id)
            .bind::<diesel::sql_types::Timestamptz, _>(now)
            .bind::<diesel::sql_types::Text, _>(work_link)
            .bind::<diesel::sql_types::Text, _>(signoff_prefix))
            .execute(conn)
            .await
        }
        Err(e) => {
            // Backoff: 30 s, 1 min, 2 min, … up to an hour.
            let wait = TimeDelta::seconds(30 * 2i64.pow(attempts.clamp(0, 7) as u32)).min(TimeDelta::hours(1));
            diesel::update(notification_outbox::table.find(id))
                .set((notification_outbox::next_attempt_at.eq(now + wait), notification_outbox::last_error.eq(e)))
                .execute(conn)
                .await
        }
    }
}

/// An in-app notification for `user_id`, from an outbox row.
pub async fn add_in_app(
    conn: &mut AsyncPgConnection,
    row: &OutboxRow,
    user_id: i64,
    (subject, body, link): (&str, &str, Option<&str>),
) -> QueryResult<usize> {
    diesel::insert_into(notifications::table)
        .values((
            notifications::account_id.eq(row.account_id),
            notifications::user_id.eq(user_id),
            notifications::kind.eq(&row.kind),
            notifications::subject.eq(subject),
            notifications::body.eq(body),
            notifications::link.eq(link),
            notifications::created_at.eq(row.created_at),
        ))
        .execute(conn)
        .await
}

/// Whether the user muted e-mail of this kind.
pub async fn muted(conn: &mut AsyncPgConnection, user_id: i64, kind: &str) -> QueryResult<bool> {
    let n: i64 =
        user_mutes::table.filter(user_mutes::user_id.eq(user_id)).filter(user_mutes::kind.eq(kind)).count().get_result(conn).await?;
    Ok(n > 0)
}

/// The account's chat webhook, if it set one.
pub async fn chat_webhook(conn: &mut AsyncPgConnection, account_id: i64) -> QueryResult<Option<String>> {
    let hook: Option<Option<String>> =
        account_settings::table.find(account_id).select(account_settings::chat_webhook_url).first(conn).await.optional()?;
    Ok(hook.flatten())
}
