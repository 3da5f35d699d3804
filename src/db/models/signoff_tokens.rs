//! Sign-off links (DESIGN §7): ≥ 128-bit random, stored as SHA-256, bound to one approver and one
//! approval round, expiring, single use, voided by a retry.

use chrono::{DateTime, TimeDelta, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use crate::db::models::releases::activity_by_key;
use crate::db::schema::{release_activities, signoff_tokens};
use crate::domain::engine::Node;
use crate::security::{random_token, sha256_hex};

pub use crate::domain::signoff::{LinkState, LINK_DAYS};

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = signoff_tokens)]
pub struct SignoffToken {
    pub token_hash: String,
    pub account_id: i64,
    pub release_id: i64,
    pub phase_key: String,
    pub activity_key: String,
    pub round: i32,
    pub user_id: i64,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub used_at: Option<DateTime<Utc>>,
    pub voided_at: Option<DateTime<Utc>>,
}

/// Whom a new link is for: one approver, in one approval round of one activity.
#[derive(Debug, Clone, Copy)]
pub struct LinkFor<'a> {
    pub account_id: i64,
    pub release_id: i64,
    pub phase: &'a str,
    pub activity: &'a str,
    pub round: i32,
    pub user_id: i64,
}

/// A new link; returns the token (only its hash is stored).
pub async fn issue(conn: &mut AsyncPgConnection, link: LinkFor<'_>, now: DateTime<Utc>) -> QueryResult<String> {
    let token = random_token(32);
    diesel::insert_into(signoff_tokens::table)
        .values((
            signoff_tokens::token_hash.eq(sha256_hex(&token)),
            signoff_tokens::account_id.eq(link.account_id),
            signoff_tokens::release_id.eq(link.release_id),
            signoff_tokens::phase_key.eq(link.phase),
            signoff_tokens::activity_key.eq(link.activity),
            signoff_tokens::round.eq(link.round),
            signoff_tokens::user_id.eq(link.user_id),
            signoff_tokens::created_at.eq(now),
            signoff_tokens::expires_at.eq(now + TimeDelta::days(LINK_DAYS)),
        ))
        .execute(conn)
        .await?;
    Ok(token)
}

/// A retry opens a new round: every earlier link of the activity stops working.
pub async fn void_activity(
    conn: &mut AsyncPgConnection,
    release_id: i64,
    phase: &str,
    activity: &str,
    now: DateTime<Utc>,
) -> QueryResult<usize> {
    diesel::update(
        signoff_tokens::table
            .filter(signoff_tokens::release_id.eq(release_id))
            .filter(signoff_tokens::phase_key.eq(phase))
            .filter(signoff_tokens::activity_key.eq(activity))
            .filter(signoff_tokens::used_at.is_null())
            .filter(signoff_tokens::voided_at.is_null()),
    )
    .set(signoff_tokens::voided_at.eq(now))
    .execute(conn)
    .await
}

pub async fn mark_used(conn: &mut AsyncPgConnection, hash: &str, now: DateTime<Utc>) -> QueryResult<usize> {
    diesel::update(signoff_tokens::table.find(hash)).set(signoff_tokens::used_at.eq(now)).execute(conn).await
}

/// The link's state for the user opening it (checked again when the decision is posted).
pub async fn check(
    conn: &mut AsyncPgConnection,
    token: &str,
    user_id: i64,
    now: DateTime<Utc>,
) -> QueryResult<(LinkState, Option<SignoffToken>)> {
    let found: Option<SignoffToken> =
        signoff_tokens::table.find(sha256_hex(token)).select(SignoffToken::as_select()).first(conn).await.optional()?;
    let Some(t) = found else { return Ok((LinkState::Unknown, None)) };
    let state = if t.user_id != user_id {
        LinkState::Foreign
    } else if t.used_at.is_some() {
        LinkState::Used
    } else if t.voided_at.is_some() {
        LinkState::Voided
    } else if t.expires_at <= now {
        LinkState::Expired
    } else {
        let (status, attempts): (Node, i32) = activity_by_key(t.release_id, &t.phase_key, &t.activity_key)
            .select((release_activities::status, release_activities::attempts))
            .first(conn)
            .await?;
        if status != Node::Running || attempts != t.round {
            LinkState::Decided
        } else {
            LinkState::Valid
        }
    };
    Ok((state, Some(t)))
}
