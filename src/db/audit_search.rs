//! Reading the audit trail back: filtered, newest first, in keyset pages (DESIGN §8), and the
//! record of the last verification.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Bool, Nullable, Text, Timestamptz};
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use super::audit::{AuditEvent, VerifyReport};
use super::schema::audit_verifications;
use crate::domain::policy::Visibility;

#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub release_id: Option<i64>,
    /// Substring of the actor (`user:ann@…`, `system:engine`).
    pub actor: Option<String>,
    /// The action, or its prefix when it ends in `.` (`release.`).
    pub action: Option<String>,
    /// Substring of the subject.
    pub subject: Option<String>,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    /// Keyset cursor: events with a smaller id than this.
    pub before_id: Option<i64>,
}

fn like(text: &Option<String>) -> Option<String> {
    text.as_ref().map(|t| format!("%{}%", t.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_")))
}

/// Events of the account the viewer may see (account chain when `vis.account_level`, release
/// chains by the release's org), newest first, at most `limit`.
pub async fn search(
    conn: &mut AsyncPgConnection,
    account_id: i64,
    vis: &Visibility,
    f: &AuditFilter,
    limit: i64,
) -> QueryResult<Vec<AuditEvent>> {
    let (action_exact, action_prefix) = match &f.action {
        Some(a) if a.ends_with('.') => (None, like(&Some(a.clone())).map(|p| p.trim_start_matches('%').to_string())),
        other => (other.clone(), None),
    };
    diesel::sql_query(
        "SELECT e.id, e.chain, e.seq, e.account_id, e.release_id, e.actor, e.action, e.subject, e.reason, e.details, e.at, \
                e.prev_hash, e.hash \
         FROM audit_events e LEFT JOIN releases r ON r.id = e.release_id \
         WHERE e.account_id = $1 \
           AND (CASE WHEN r.org_id IS NULL THEN $2 ELSE ($3 OR r.org_id = ANY($4)) END) \
           AND ($5::bigint IS NULL OR e.release_id = $5) \
           AND ($6::text IS NULL OR e.actor ILIKE $6) \
           AND ($7::text IS NULL OR e.action = $7) AND ($8::text IS NULL OR e.action LIKE $8) \
           AND ($9::text IS NULL OR e.subject ILIKE $9) \
           AND ($10::timestamptz IS NULL OR e.at >= $10) AND ($11::timestamptz IS NULL OR e.at < $11) \
           AND ($12::bigint IS NULL OR e.id < $12) \
         ORDER BY e.id DESC LIMIT $13",
    )
    .bind::<BigInt, _>(account_id)
    .bind::<Bool, _>(vis.account_level)
    .bind::<Bool, _>(vis.all_orgs)
    .bind::<Array<BigInt>, _>(&vis.orgs)
    .bind::<Nullable<BigInt>, _>(f.release_id)
    .bind::<Nullable<Text>, _>(like(&f.actor))
    .bind::<Nullable<Text>, _>(action_exact)
    .bind::<Nullable<Text>, _>(action_prefix)
    .bind::<Nullable<Text>, _>(like(&f.subject))
    .bind::<Nullable<Timestamptz>, _>(f.from)
    .bind::<Nullable<Timestamptz>, _>(f.to)
    .bind::<Nullable<BigInt>, _>(f.before_id)
    .bind::<BigInt, _>(limit)
    .load(conn)
    .await
}

#[derive(Debug, Clone, Queryable)]
pub struct Verification {
    pub verified_at: DateTime<Utc>,
    pub verified_by: String,
    pub chains: i64,
    pub events: i64,
    pub broken: Option<String>,
}

pub async fn record_verification(
    conn: &mut AsyncPgConnection,
    account_id: i64,
    by: &str,
    report: &VerifyReport,
    at: DateTime<Utc>,
) -> QueryResult<()> {
    let broken = report.broken.as_ref().map(|b| format!("chain {} seq {} (row id {}): {}", b.chain, b.seq, b.id, b.problem));
    diesel::insert_into(audit_verifications::table)
        .values((
            audit_verifications::account_id.eq(account_id),
            audit_verifications::verified_at.eq(at),
            audit_verifications::verified_by.eq(by),
            audit_verifications::chains.eq(report.chains as i64),
            audit_verifications::events.eq(report.events as i64),
            audit_verifications::broken.eq(broken),
        ))
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn last_verification(conn: &mut AsyncPgConnection, account_id: i64) -> QueryResult<Option<Verification>> {
    audit_verifications::table
        .filter(audit_verifications::account_id.eq(account_id))
        .order(audit_verifications::verified_at.desc())
        .select((
            audit_verifications::verified_at,
            audit_verifications::verified_by,
            audit_verifications::chains,
            audit_verifications::events,
            audit_verifications::broken,
        ))
        .first(conn)
        .await
        .optional()
}
