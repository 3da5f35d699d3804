//! Shared status links: a read-only view of one release for people without an account. Only the
//! token's hash is stored; creating and revoking are audited on the release's trail.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};

use crate::db::audit::{self, NewEvent};
use crate::db::models::releases::{self as rows, Release, ReleaseActivity, ReleasePhase};
use crate::db::schema::{audit_events, releases, status_links};
use crate::ops::{Actor, OpError};
use crate::security::{random_token, sha256_hex};

/// A new link for the release; returns the token (shown once).
pub async fn create(conn: &mut AsyncPgConnection, actor: &Actor, release: &Release, now: DateTime<Utc>) -> Result<String, OpError> {
    let token = random_token(24);
    conn.transaction(async |conn| {
        diesel::insert_into(status_links::table)
            .values((
                status_links::token_hash.eq(sha256_hex(&token)),
                status_links::account_id.eq(release.account_id),
                status_links::release_id.eq(release.id),
                status_links::created_by.eq(actor.user_id),
                status_links::created_at.eq(now),
            ))
            .execute(conn)
            .await?;
        audit::append(conn, NewEvent::release(release, actor.label.clone(), "release.status_link_create"), now).await?;
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

pub async fn shared(conn: &mut AsyncPgConnection, token: &str) -> Result<SharedStatus, OpError> {
    let release_id: i64 = status_links::table
        .filter(status_links::token_hash.eq(sha256_hex(token)))
        .filter(status_links::revoked_at.is_null())
        .select(status_links::release_id)
        .first(conn)
        .await?;
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
