//! Notifications written to the outbox in the transaction of the change (delivered later).

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde_json::json;

use crate::db::schema::{group_members, groups, notification_outbox, users};
use crate::domain::notification::Channel;

/// Active users named by `user:<email>` / `group:<name>` principals, without duplicates.
pub async fn recipients(conn: &mut AsyncPgConnection, account_id: i64, principals: &[String]) -> QueryResult<Vec<(i64, String)>> {
    let mut each = recipients_each(conn, account_id, std::slice::from_ref(&principals.to_vec())).await?;
    Ok(each.pop().unwrap_or_default())
}

/// [`recipients`] for several lists of principals at once (one or two statements in all).
pub async fn recipients_each(conn: &mut AsyncPgConnection, account_id: i64, lists: &[Vec<String>]) -> QueryResult<Vec<Vec<(i64, String)>>> {
    let named = |list: &[String], kind: &str| -> Vec<String> {
        list.iter()
            .filter_map(|p| p.split_once(':'))
            .filter(|(k, _)| *k == kind)
            .map(|(_, name)| if kind == "user" { name.trim().to_ascii_lowercase() } else { name.trim().to_string() })
            .collect()
    };
    let mut emails: Vec<String> = lists.iter().flat_map(|l| named(l, "user")).collect();
    let mut group_names: Vec<String> = lists.iter().flat_map(|l| named(l, "group")).collect();
    emails.sort_unstable();
    emails.dedup();
    group_names.sort_unstable();
    group_names.dedup();
    let users_found: Vec<(i64, String)> = users::table
        .filter(users::account_id.eq(account_id))
        .filter(users::email.eq_any(&emails))
        .filter(users::disabled_at.is_null())
        .select((users::id, users::email))
        .load(conn)
        .await?;
    let members: Vec<(String, i64, String)> = if group_names.is_empty() {
        Vec::new()
    } else {
        group_members::table
            .inner_join(groups::table)
            .inner_join(users::table)
            .filter(groups::account_id.eq(account_id))
            .filter(groups::name.eq_any(&group_names))
            .filter(users::disabled_at.is_null())
            .select((groups::name, users::id, users::email))
            .load(conn)
            .await?
    };
    Ok(lists
        .iter()
        .map(|list| {
            let (emails, group_names) = (named(list, "user"), named(list, "group"));
            let mut found: Vec<(i64, String)> = users_found.iter().filter(|(_, e)| emails.contains(e)).cloned().collect();
            found.extend(members.iter().filter(|(g, _, _)| group_names.contains(g)).map(|(_, id, e)| (*id, e.clone())));
            found.sort();
            found.dedup();
            found
        })
        .collect())
}

pub const SIGNOFF_PREFIX: &str = "/signoff/";
pub const WORK_LINK: &str = "/work";

/// A notification to queue: what it says, and to whom (user id, e-mail).
#[derive(Debug, Clone, Copy)]
pub struct NewNotification<'a> {
    pub account_id: i64,
    pub recipients: &'a [(i64, String)],
    /// What happened (`release.aborted`, …); users mute e-mail by kind.
    pub kind: &'a str,
    pub subject: &'a str,
    pub body: &'a str,
    /// A path in the application, e.g. `/releases/7`.
    pub link: &'a str,
}

/// One in-app notification and one e-mail per recipient, queued in the outbox.
pub async fn enqueue(conn: &mut AsyncPgConnection, n: &NewNotification<'_>, now: DateTime<Utc>) -> QueryResult<usize> {
    enqueue_many(conn, std::slice::from_ref(n), now).await
}

/// Several notifications in one statement.
pub async fn enqueue_many(conn: &mut AsyncPgConnection, notes: &[NewNotification<'_>], now: DateTime<Utc>) -> QueryResult<usize> {
    let rows: Vec<_> = notes
        .iter()
        .flat_map(|n| {
            let NewNotification { account_id, recipients, kind, subject, body, link } = *n;
            // A sign-off link is a one-time credential for the e-mail only: the in-app notification
            // (kept for good) points at "My work", where the same decision waits.
            let in_app_link = if link.starts_with(SIGNOFF_PREFIX) { WORK_LINK } else { link };
            recipients.iter().flat_map(|r| [Channel::InApp, Channel::Email].map(|channel| (r, channel))).map(
                move |((user_id, email), channel)| {
                    (
                    notification_outbox::account_id.eq(account_id),
                    notification_outbox::user_id.eq(Some(*user_id)),
                    notification_outbox::channel.eq(channel),
                    notification_outbox::kind.eq(kind),
                    notification_outbox::payload.eq(json!({
                        "to": email, "subject": subject, "body": body, "link": if channel == Channel::InApp { in_app_link } else { link }
                    })),
                    notification_outbox::created_at.eq(now),
                    notification_outbox::next_attempt_at.eq(now),
                )
                },
            )
        })
        .collect();
    if rows.is_empty() {
        return Ok(0);
    }
    diesel::insert_into(notification_outbox::table).values(rows).execute(conn).await
}

/// A chat message to queue: what happened, its one-line text and where it points.
#[derive(Debug, Clone, Copy)]
pub struct ChatMessage<'a> {
    pub kind: &'a str,
    pub subject: &'a str,
    pub link: &'a str,
}

/// One chat message for the account (delivered only if it has a chat webhook).
pub async fn enqueue_chat(
    conn: &mut AsyncPgConnection,
    account_id: i64,
    kind: &str,
    subject: &str,
    link: &str,
    now: DateTime<Utc>,
) -> QueryResult<usize> {
    enqueue_chat_many(conn, account_id, &[ChatMessage { kind, subject, link }], now).await
}

/// Chat messages for the account, if it has a chat webhook: two statements for any number.
pub async fn enqueue_chat_many(
    conn: &mut AsyncPgConnection,
    account_id: i64,
    messages: &[ChatMessage<'_>],
    now: DateTime<Utc>,
) -> QueryResult<usize> {
    let has_hook: Option<String> = crate::db::schema::account_settings::table
        .find(account_id)
        .select(crate::db::schema::account_settings::chat_webhook_url)
        .first::<Option<String>>(conn)
        .await
        .optional()?
        .flatten();
    if has_hook.is_none() || messages.is_empty() {
        return Ok(0);
    }
    let rows: Vec<_> = messages
        .iter()
        .map(|m| {
            (
                notification_outbox::account_id.eq(account_id),
                notification_outbox::user_id.eq(None::<i64>),
                notification_outbox::channel.eq(Channel::Chat),
                notification_outbox::kind.eq(m.kind),
                notification_outbox::payload.eq(json!({"subject": m.subject, "link": m.link})),
                notification_outbox::created_at.eq(now),
                notification_outbox::next_attempt_at.eq(now),
            )
        })
        .collect();
    diesel::insert_into(notification_outbox::table).values(rows).execute(conn).await
}

/// Marks what is still undelivered from before `before` as delivered without sending it (the
/// demo's history: its mail would only be noise).
pub async fn retire_before(conn: &mut AsyncPgConnection, account_id: i64, before: DateTime<Utc>, now: DateTime<Utc>) -> QueryResult<usize> {
    diesel::update(
        notification_outbox::table
            .filter(notification_outbox::account_id.eq(account_id))
            .filter(notification_outbox::delivered_at.is_null())
            .filter(notification_outbox::created_at.lt(before)),
    )
    .set((notification_outbox::delivered_at.eq(now), notification_outbox::last_error.eq("not sent: demo history")))
    .execute(conn)
    .await
}
