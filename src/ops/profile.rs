//! A user's own settings beyond name and password: delegations (who votes for me, when) and
//! e-mail mutes. Each change is one transaction with its audit event.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use serde_json::json;

use crate::db::audit::{self, NewEvent};
use crate::db::models::users::User;
use crate::db::schema::{delegations, user_mutes, users};
use crate::domain::schedule::parse_time;
use crate::ops::{Actor, OpError};

/// The notification kinds a user may mute (e-mail only; the in-app list keeps everything).
pub const MUTABLE_KINDS: &[&str] = &[
    "release.activated",
    "phase.started",
    "activity.waiting",
    "approval.reminder",
    "activity.escalated",
    "release.onhold",
    "release.success",
    "release.partialsuccess",
    "release.failed",
    "release.rolledback",
    "release.aborted",
    "release.activation_refused",
];

#[derive(Debug, Clone)]
pub struct Delegation {
    pub id: i64,
    pub delegate_email: String,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
}

/// The user's delegations (earliest first) and the kinds they muted.
pub async fn delegations_and_mutes(conn: &mut AsyncPgConnection, user_id: i64) -> QueryResult<(Vec<Delegation>, Vec<String>)> {
    let rows: Vec<(i64, String, DateTime<Utc>, DateTime<Utc>)> = delegations::table
        .inner_join(users::table.on(users::id.eq(delegations::delegate_id)))
        .filter(delegations::user_id.eq(user_id))
        .order(delegations::starts_at)
        .select((delegations::id, users::email, delegations::starts_at, delegations::ends_at))
        .load(conn)
        .await?;
    let muted = user_mutes::table.filter(user_mutes::user_id.eq(user_id)).select(user_mutes::kind).load(conn).await?;
    let delegations =
        rows.into_iter().map(|(id, delegate_email, starts_at, ends_at)| Delegation { id, delegate_email, starts_at, ends_at }).collect();
    Ok((delegations, muted))
}

#[derive(Debug, Default, Clone, serde::Deserialize)]
#[serde(default)]
pub struct DelegationInput {
    pub delegate: String,
    pub starts_at: String,
    pub ends_at: String,
}

/// Names a delegate for a period (times in `zone`); their vote counts as this user's one vote.
/// A refusal is an invalid `delegate` field whose message says why.
pub async fn add_delegation(
    conn: &mut AsyncPgConnection,
    actor: &Actor,
    input: &DelegationInput,
    zone: chrono_tz::Tz,
    now: DateTime<Utc>,
) -> Result<User, OpError> {
    let user_id = actor.user_id.ok_or(OpError::NotFound)?;
    let delegate =
        User::by_email(conn, input.delegate.trim()).await?.filter(|u| u.account_id == actor.account_id && u.disabled_at.is_none());
    let starts = parse_time(&input.starts_at, zone);
    let ends = parse_time(&input.ends_at, zone);
    let refuse = |m: String| Err(OpError::invalid("delegate", m));
    let (delegate, starts, ends) = match (delegate, starts, ends) {
        (None, _, _) => return refuse(format!("there is no active user {:?} in your account", input.delegate.trim())),
        (Some(d), _, _) if d.id == user_id => return refuse("you cannot delegate to yourself".to_string()),
        (_, Err(m), _) | (_, _, Err(m)) => return refuse(m),
        (_, Ok(s), Ok(e)) if e <= s => return refuse("the end must be after the start".to_string()),
        (Some(d), Ok(s), Ok(e)) => (d, s, e),
    };
    conn.transaction(async |conn| {
        diesel::insert_into(delegations::table)
            .values((
                delegations::account_id.eq(actor.account_id),
                delegations::user_id.eq(user_id),
                delegations::delegate_id.eq(delegate.id),
                delegations::starts_at.eq(starts),
                delegations::ends_at.eq(ends),
                delegations::created_at.eq(now),
            ))
            .execute(conn)
            .await?;
        let event = NewEvent::account(actor.account_id, actor.label.clone(), "delegation.create", format!("user:{}", delegate.email))
            .with_details(json!({"starts_at": starts, "ends_at": ends}));
        audit::append(conn, event, now).await?;
        Ok::<_, OpError>(())
    })
    .await?;
    Ok(delegate)
}

/// Removes one of the user's own delegations (audited like its creation).
pub async fn remove_delegation(conn: &mut AsyncPgConnection, actor: &Actor, id: i64, now: DateTime<Utc>) -> Result<(), OpError> {
    let user_id = actor.user_id.ok_or(OpError::NotFound)?;
    conn.transaction(async |conn| {
        let removed: Option<(i64, DateTime<Utc>, DateTime<Utc>)> =
            diesel::delete(delegations::table.filter(delegations::id.eq(id)).filter(delegations::user_id.eq(user_id)))
                .returning((delegations::delegate_id, delegations::starts_at, delegations::ends_at))
                .get_result(conn)
                .await
                .optional()?;
        let (delegate_id, starts, ends) = removed.ok_or(OpError::NotFound)?;
        let email: String = users::table.find(delegate_id).select(users::email).first(conn).await?;
        let event = NewEvent::account(actor.account_id, actor.label.clone(), "delegation.delete", format!("user:{email}"))
            .with_details(json!({"starts_at": starts, "ends_at": ends}));
        audit::append(conn, event, now).await?;
        Ok(())
    })
    .await
}

/// Replaces the user's e-mail mutes with `chosen` (unknown kinds are ignored).
pub async fn set_mutes(conn: &mut AsyncPgConnection, actor: &Actor, chosen: &[String], now: DateTime<Utc>) -> Result<(), OpError> {
    let user_id = actor.user_id.ok_or(OpError::NotFound)?;
    let kinds: Vec<&String> = chosen.iter().filter(|k| MUTABLE_KINDS.contains(&k.as_str())).collect();
    conn.transaction(async |conn| {
        diesel::delete(user_mutes::table.filter(user_mutes::user_id.eq(user_id))).execute(conn).await?;
        let rows: Vec<_> = kinds.iter().map(|k| (user_mutes::user_id.eq(user_id), user_mutes::kind.eq(*k))).collect();
        if !rows.is_empty() {
            diesel::insert_into(user_mutes::table).values(rows).execute(conn).await?;
        }
        let event = NewEvent::account(actor.account_id, actor.label.clone(), "user.mutes_update", actor.label.clone())
            .with_details(json!({"muted": kinds}));
        audit::append(conn, event, now).await?;
        Ok(())
    })
    .await
}
