//! Shared status links: a read-only view of one release for people without an account. Only the
//! token's hash is stored; creating and revoking are audited on the release's trail.

use chrono::{DateTime, TimeDelta, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};

use crate::db::audit::{self, NewEvent};
use crate::db::models::releases::{self as rows, Release, ReleaseActivity, ReleasePhase};
use crate::db::schema::{audit_events, releases, status_links};
use crate::ops::{Actor, OpError};
use crate::security::{random_token, sha256_hex};

/// How long a status link works unless its creator chooses otherwise, and the longest choice.
pub const DEFAULT_DAYS: i64 = 30;
pub const MAX_DAYS: i64 = 365;

/// Reads the "expires in" choice (days; empty: the default), naming the field.
pub fn lifetime(days: &str) -> Result<TimeDelta, OpError> {
    let days = days.trim();
    if days.is_empty() {
        return Ok(TimeDelta::days(DEFAULT_DAYS));
    }
    match days.parse::<i64>() {
        Ok(n) if (1..=MAX_DAYS).contains(&n) => Ok(TimeDelta::days(n)),
        _ => Err(OpError::invalid("expires_in_days", format!("must be a number of days from 1 to {MAX_DAYS}"))),
    }
}

/// A new link for the release, working for `lifetime`; returns the token (shown once).
pub async fn create(
    conn: &mut AsyncPgConnection,
    actor: &Actor,
    release: &Release,
    lifetime: TimeDelta,
    now: DateTime<Utc>,
) -> Result<String, OpError> {
    let token = random_token(24);
    let expires_at = now + lifetime;
    conn.transaction(async |conn| {
        diesel::insert_into(status_links::table)
            .values((
                status_links::token_hash.eq(sha256_hex(&token)),
                status_links::account_id.eq(release.account_id),
                status_links::release_id.eq(release.id),
                status_links::created_by.eq(actor.user_id),
                status_links::created_at.eq(now),
                status_links::expires_at.eq(expires_at),
            ))
            .execute(conn)
            .await?;
        let event = NewEvent::release(release, actor.label.clone(), "release.status_link_create")
            .with_details(serde_json::json!({"expires_at": expires_at}));
        audit::append(conn, event, now).await?;
        Ok::<_, OpError>(())
    })
    .await?;
    Ok(token)
}

/// Revokes every live link of the release; returns how many.
pub async fn revoke(conn: &mut AsyncPgConnection, actor: &Actor, release: &Release, now: DateTime<Utc>) -> Result<usize, OpError> {
    conn.transaction(async |conn| {
        let n =
            diesel::update(status_links::table.filter(status_links::release_id.eq(release.id)).filter(status_links::revoked_at.is_null()))
                .set(status_links::revoked_at.eq(now))
                .execute(conn)
                .await?;
        if n > 0 {
            let event = NewEvent::release(release, actor.label.clone(), "release.status_link_revoke")
                .with_details(serde_json::json!({"revoked": n}));
            audit::append(conn, event, now).await?;
        }
        Ok(n)
    })
    .await
}

/// What a live link shows: the release, its tree and its timeline (action and subject only).
pub struct SharedStatus {
    pub release: Release,
    pub phases: Vec<ReleasePhase>,
    pub activities: Vec<ReleaseActivity>,
    pub timeline: Vec<(DateTime<Utc>, String, String)>,
}

/// The release a live link (not revoked, not expired) shows.
pub async fn shared(conn: &mut AsyncPgConnection, token: &str, now: DateTime<Utc>) -> Result<SharedStatus, OpError> {
    let (release_id, created_at, expires_at): (i64, DateTime<Utc>, Option<DateTime<Utc>>) = status_links::table
        .filter(status_links::token_hash.eq(sha256_hex(token)))
        .filter(status_links::revoked_at.is_null())
        .select((status_links::release_id, status_links::created_at, status_links::expires_at))
        .first(conn)
        .await?;
    // A link made without an end (by the previous version, mid-upgrade) ends after the default.
    if expires_at.unwrap_or(created_at + TimeDelta::days(DEFAULT_DAYS)) <= now {
        return Err(OpError::NotFound);
    }
    let release: Release = releases::table.find(release_id).select(Release::as_select()).first(conn).await?;
    let (phases, activities) = rows::tree(conn, release.id).await?;
    let timeline = audit_events::table
        .filter(audit_events::release_id.eq(release.id))
        .order(audit_events::seq)
        .limit(500)
        .select((audit_events::at, audit_events::action, audit_events::subject))
        .load(conn)
        .await?;
    Ok(SharedStatus { release, phases, activities, timeline })
}
