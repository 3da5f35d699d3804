//! Appending to and verifying the audit hash chains (DESIGN §8).

use crate::db::prepared::prepared;
use crate::domain::audit::{chain_for, ChainEvent, GENESIS_HASH};
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde_json::Value;
use std::collections::HashMap;

use super::models::releases::Release;
use super::schema::{audit_chain_heads, audit_events};

/// What a caller records; chain, sequence and hashes are filled in by `append`.
#[derive(Debug, Clone)]
pub struct NewEvent {
    pub account_id: Option<i64>,
    pub release_id: Option<i64>,
    pub actor: String,
    pub action: String,
    pub subject: String,
    pub reason: Option<String>,
    pub details: Value,
}

impl NewEvent {
    pub fn account(account_id: i64, actor: impl Into<String>, action: &str, subject: impl Into<String>) -> Self {
        Self {
            account_id: Some(account_id),
            release_id: None,
            actor: actor.into(),
            action: action.to_string(),
            subject: subject.into(),
            reason: None,
            details: Value::Object(Default::default()),
        }
    }

    /// An event on the release's own chain, about the release itself unless `with_subject` narrows it.
    pub fn release(release: &Release, actor: impl Into<String>, action: impl Into<String>) -> Self {
        Self {
            account_id: Some(release.account_id),
            release_id: Some(release.id),
            actor: actor.into(),
            action: action.into(),
            subject: format!("release:{}", release.id),
            reason: None,
            details: Value::Object(Default::default()),
        }
    }

    pub fn with_subject(mut self, subject: impl Into<String>) -> Self {
        self.subject = subject.into();
        self
    }

    pub fn with_details(mut self, details: Value) -> Self {
        self.details = details;
        self
    }

    pub fn with_reason(mut self, reason: impl Into<String>) -> Self {
        self.reason = Some(reason.into());
        self
    }
}

#[derive(Debug, Clone, Queryable, QueryableByName, Selectable)]
#[diesel(table_name = audit_events)]
pub struct AuditEvent {
    pub id: i64,
    pub chain: String,
    pub seq: i64,
    pub account_id: Option<i64>,
    pub release_id: Option<i64>,
    pub actor: String,
    pub action: String,
    pub subject: String,
    pub reason: Option<String>,
    pub details: Value,
    pub at: DateTime<Utc>,
    pub prev_hash: String,
    pub hash: String,
}

impl AuditEvent {
    fn chain_event(&self) -> ChainEvent {
        ChainEvent {
            chain: self.chain.clone(),
            seq: self.seq,
            account_id: self.account_id,
            release_id: self.release_id,
            actor: self.actor.clone(),
            action: self.action.clone(),
            subject: self.subject.clone(),
            reason: self.reason.clone(),
            details: self.details.clone(),
            at: self.at,
        }
    }
}

#[derive(QueryableByName)]
struct Stored {
    #[diesel(sql_type = diesel::sql_types::Jsonb)]
    v: Value,
}

async fn as_stored(conn: &mut AsyncPgConnection, details: Value) -> QueryResult<Value> {
    let stored: Stored = diesel::sql_query("SELECT $1::jsonb AS v").bind::<diesel::sql_types::Jsonb, _>(details).get_result(conn).await?;
    Ok(stored.v)
}

/// Whether the account chain already has `action` on `subject` since `since` (to record some
/// events at most once per window).
pub async fn recorded_since(
    conn: &mut AsyncPgConnection,
    account_id: i64,
    action: &str,
    subject: &str,
    since: DateTime<Utc>,
) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(
        audit_events::table
            .filter(audit_events::account_id.eq(account_id))
            .filter(audit_events::release_id.is_null())
            .filter(audit_events::action.eq(action))
            .filter(audit_events::subject.eq(subject))
            .filter(audit_events::at.ge(since)),
    ))
    .get_result(conn)
    .await
}

/// Whether PostgreSQL's jsonb would write these details differently from serde_json (only
/// floating-point numbers are; integers, strings, booleans, null and key order are not, as the
/// hash sorts keys itself).
fn jsonb_may_rewrite(v: &Value) -> bool {
    match v {
        Value::Number(n) => n.is_f64(),
        Value::Array(items) => items.iter().any(jsonb_may_rewrite),
        Value::Object(map) => map.values().any(jsonb_may_rewrite),
        _ => false,
    }
}

#[derive(QueryableByName)]
struct Head {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    last_seq: i64,
    #[diesel(sql_type = diesel::sql_types::Text)]
    last_hash: String,
}

/// The head each chain had after this server's last append to it. Only a hint: the write below
/// moves the head only from exactly that (sequence, hash), so a stale or foreign hint (another
/// server appended, the transaction rolled back, another database) just costs one statement.
static REMEMBERED_HEADS: std::sync::LazyLock<std::sync::Mutex<HashMap<String, (i64, String)>>> = std::sync::LazyLock::new(Default::default);
const REMEMBERED_CAPACITY: usize = 50_000;

fn remembered(chain: &str) -> Option<(i64, String)> {
    REMEMBERED_HEADS.lock().ok().and_then(|heads| heads.get(chain).cloned())
}

fn remember(chain: &str, seq: i64, hash: &str) {
    if let Ok(mut heads) = REMEMBERED_HEADS.lock() {
        if heads.len() >= REMEMBERED_CAPACITY {
            heads.clear();
        }
        heads.insert(chain.to_string(), (seq, hash.to_string()));
    }
}

/// Appends one event. Call inside the transaction of the change it records: the chain's head
/// row stays locked until that transaction ends, so concurrent appends serialise per chain.
/// One statement when the remembered head is current (the head row is locked by the update
/// that moves it), else two: lock (or create) the head and read it; then write.
pub async fn append(conn: &mut AsyncPgConnection, event: NewEvent, at: DateTime<Utc>) -> QueryResult<AuditEvent> {
    let chain = chain_for(event.account_id, event.release_id);
    let at = crate::clock::to_micros(at);
    // Hash the details as PostgreSQL will store and return them (jsonb has no -0.0, and writes
    // some numbers differently), so `verify` recomputes exactly what was hashed.
    let details = if jsonb_may_rewrite(&event.details) { as_stored(conn, event.details).await? } else { event.details };
    let hashed = |seq: i64| ChainEvent {
        chain: chain.clone(),
        seq,
        account_id: event.account_id,
        release_id: event.release_id,
        actor: event.actor.clone(),
        action: event.action.clone(),
        subject: event.subject.clone(),
        reason: event.reason.clone(),
        details: details.clone(),
        at,
    };
    if let Some((seq, hash)) = remembered(&chain) {
        if let Some(written) = write_after(conn, &hashed(seq + 1), &hash).await? {
            remember(&chain, written.seq, &written.hash);
            return Ok(written);
        }
    }
    // The no-op update takes the row lock and returns the head as it was.
    let head: Head = prepared(
        diesel::sql_query(
            "INSERT INTO audit_chain_heads (chain, account_id, last_seq, last_hash) VALUES ($1, $2, 0, $3) \
         ON CONFLICT (chain) DO UPDATE SET chain = EXCLUDED.chain RETURNING last_seq, last_hash",
        )
        .bind::<diesel::sql_types::Text, _>(&chain)
        .bind::<diesel::sql_types::Nullable<diesel::sql_types::BigInt>, _>(event.account_id)
        .bind::<diesel::sql_types::Text, _>(GENESIS_HASH),
    )
    .get_result(conn)
    .await?;
    let written = write_after(conn, &hashed(head.last_seq + 1), &head.last_hash).await?.ok_or(diesel::result::Error::NotFound)?;
    remember(&chain, written.seq, &written.hash);
    Ok(written)
}

/// Writes the event and moves the head, only if the head is still at (`event.seq - 1`, `prev_hash`).
async fn write_after(conn: &mut AsyncPgConnection, event: &ChainEvent, prev_hash: &str) -> QueryResult<Option<AuditEvent>> {
    use diesel::sql_types::{BigInt, Jsonb, Nullable, Text, Timestamptz};
    let hash = event.hash(prev_hash);
    prepared(
        diesel::sql_query(
            "WITH moved AS (UPDATE audit_chain_heads SET last_seq = $2, last_hash = $12 \
                        WHERE chain = $1 AND last_seq = $2 - 1 AND last_hash = $11 RETURNING 1) \
         INSERT INTO audit_events (chain, seq, account_id, release_id, actor, action, subject, reason, details, at, prev_hash, hash) \
         SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12 WHERE EXISTS (SELECT 1 FROM moved) \
         RETURNING id, chain, seq, account_id, release_id, actor, action, subject, reason, details, at, prev_hash, hash",
        )
        .bind::<Text, _>(&event.chain)
        .bind::<BigInt, _>(event.seq)
        .bind::<Nullable<BigInt>, _>(event.account_id)
        .bind::<Nullable<BigInt>, _>(event.release_id)
        .bind::<Text, _>(&event.actor)
        .bind::<Text, _>(&event.action)
        .bind::<Text, _>(&event.subject)
        .bind::<Nullable<Text>, _>(&event.reason)
        .bind::<Jsonb, _>(&event.details)
        .bind::<Timestamptz, _>(event.at)
        .bind::<Text, _>(prev_hash)
        .bind::<Text, _>(&hash),
    )
    .get_result(conn)
    .await
    .optional()
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokenRow {
    pub chain: String,
    pub seq: i64,
    pub id: i64,
    pub problem: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct VerifyReport {
    pub chains: usize,
    pub events: usize,
    pub broken: Option<BrokenRow>,
}

/// Recomputes every hash of every chain (of one account, or all), stopping at the first broken row.
pub async fn verify(conn: &mut AsyncPgConnection, account_id: Option<i64>) -> QueryResult<VerifyReport> {
    let mut heads_query = audit_chain_heads::table.into_boxed();
    if let Some(account) = account_id {
        heads_query = heads_query.filter(audit_chain_heads::account_id.eq(account));
    }
    let heads: Vec<(String, i64, String)> = heads_query
        .select((audit_chain_heads::chain, audit_chain_heads::last_seq, audit_chain_heads::last_hash))
        .order(audit_chain_heads::chain)
        .load(conn)
        .await?;
    let mut report = VerifyReport::default();
    for (chain, last_seq, last_hash) in heads {
        report.chains += 1;
        let mut previous = GENESIS_HASH.to_string();
        let mut expected_seq = 1;
        let mut last_id = 0;
        // Paged so a chain of millions of events never sits in memory at once.
        loop {
            let page: Vec<AuditEvent> = audit_events::table
                .filter(audit_events::chain.eq(&chain))
                .filter(audit_events::seq.ge(expected_seq))
                .order(audit_events::seq)
                .limit(5_000)
                .select(AuditEvent::as_select())
                .load(conn)
                .await?;
            if page.is_empty() {
                break;
            }
            for event in page {
                report.events += 1;
                last_id = event.id;
                let broken = |problem: String| BrokenRow { chain: chain.clone(), seq: event.seq, id: event.id, problem };
                if event.seq != expected_seq {
                    report.broken = Some(broken(format!("expected seq {expected_seq}, found {}", event.seq)));
                    return Ok(report);
                }
                if event.prev_hash != previous {
                    report.broken = Some(broken("prev_hash does not match the previous row's hash".into()));
                    return Ok(report);
                }
                let recomputed = event.chain_event().hash(&previous);
                if recomputed != event.hash {
                    report.broken = Some(broken(format!("hash mismatch: stored {}, recomputed {recomputed}", event.hash)));
                    return Ok(report);
                }
                previous = event.hash;
                expected_seq += 1;
            }
        }
        if expected_seq - 1 != last_seq || previous != last_hash {
            report.broken = Some(BrokenRow {
                chain: chain.clone(),
                seq: expected_seq - 1,
                id: last_id,
                problem: format!("chain head says seq {last_seq}, the rows end at seq {}", expected_seq - 1),
            });
            return Ok(report);
        }
    }
    Ok(report)
}
