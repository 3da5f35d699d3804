//! Sign-off links (DESIGN §7): ≥ 128-bit random, stored as SHA-256, bound to one approver and one
//! approval round, expiring, single use, voided by a retry.

use chrono::{DateTime, TimeDelta, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use crate::db::schema::{release_activities, signoff_tokens};
use crate::security::{random_token, sha256_hex};

pub const LINK_DAYS: i64 = 7;

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

/// A new link for one approver and round; returns the token (only its hash is stored).
pub async fn issue(
    conn: &mut AsyncPgConnection,
    account_id: i64,
    release_id: i64,
    phase: &str,
    activity: &str,
    round: i32,
    user_id: i64,
    now: DateTime<Utc>,
) -> QueryResult<String> {
    let token = random_token(32);
    diesel::insert_into(signoff_tokens::table)
        .values((
            signoff_tokens::token_hash.eq(sha256_hex(&token)),
            signoff_tokens::account_id.eq(account_id),
            signoff_tokens::release_id.eq(release_id),
            signoff_tokens::phase_key.eq(phase),
            signoff_tokens::activity_key.eq(activity),
            signoff_tokens::round.eq(round),
            signoff_tokens::user_id.eq(user_id),
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

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkState {
    Valid,
    Unknown,
    Used,
    Expired,
    Voided,
    Foreign,
    Decided,
}

impl LinkState {
    /// What the plain page says.
    pub fn message(&self) -> &'static str {
        match self {
            LinkState::Valid => "",
            LinkState::Unknown => "This sign-off link is not valid. Open the release to see what is waiting for you.",
            LinkState::Used => "This sign-off link was already used: your decision is recorded.",
            LinkState::Expired => "This sign-off link has expired. Open the release to decide there.",
            LinkState::Voided => "This sign-off link was voided: the approval was retried and a new round opened, with new links.",
            LinkState::Foreign => "This sign-off link belongs to another approver. Log in as that approver, or open the release.",
            LinkState::Decided => "This approval has already been decided; nothing is waiting for your vote.",
        }
    }
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
        let (status, attempts): (String, i32) = release_activities::table
            .filter(release_activities::release_id.eq(t.release_id))
            .filter(release_activities::phase_key.eq(&t.phase_key))
            .filter(release_activities::key.eq(&t.activity_key))
            .select((release_activities::status, release_activities::attempts))
            .first(conn)
            .await?;
        if status != "Running" || attempts != t.round {
            LinkState::Decided
        } else {
            LinkState::Valid
        }
    };
    Ok((state, Some(t)))
}
