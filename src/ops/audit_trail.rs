//! The audit trail as people read it (DESIGN §8): filtered keyset pages, a streamed export
//! whose memory does not grow with the row count, and verification on demand.

use chrono::{DateTime, Utc};
use diesel_async::{AsyncConnection, AsyncPgConnection};
use futures_util::Stream;
use serde::Deserialize;

use crate::db::audit::{self, AuditEvent, NewEvent};
use crate::db::audit_search::{self, AuditFilter, Verification};
use crate::db::DbPool;
use crate::domain::policy::{Action, Visibility};
use crate::domain::schedule::parse_bound;
use crate::ops::{OpError, Requester};

#[derive(Debug, Deserialize, Default, Clone, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(default, deny_unknown_fields)]
pub struct AuditQuery {
    pub release: Option<String>,
    pub actor: Option<String>,
    pub action: Option<String>,
    pub subject: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
    pub after: Option<String>,
    pub limit: Option<String>,
    pub format: Option<String>,
}

pub const DEFAULT_LIMIT: i64 = 100;
pub const MAX_LIMIT: i64 = 1_000;
/// Rows read per statement while exporting.
const EXPORT_BATCH: i64 = 1_000;

/// Whose events: every event the requester may see, or one release's own chain (its page
/// already checked that the requester may view that release).
#[derive(Debug, Clone, Copy)]
pub enum Trail {
    Account,
    Release(i64),
}

pub struct AuditPage {
    pub filter: AuditFilter,
    pub events: Vec<AuditEvent>,
    /// Pass as `after=` for the next page; `None` on the last one.
    pub next: Option<i64>,
}

fn text(v: &Option<String>) -> Option<String> {
    v.as_ref().map(|s| s.trim().to_string()).filter(|s| !s.is_empty())
}

fn number(field: &str, v: &Option<String>) -> Result<Option<i64>, OpError> {
    text(v).map(|t| t.parse::<i64>().map_err(|_| OpError::parse(field, format!("{t:?} is not a number")))).transpose()
}

fn filter_of(q: &AuditQuery, time_zone: &str, trail: Trail) -> Result<(AuditFilter, i64), OpError> {
    let zone: chrono_tz::Tz = time_zone.parse().unwrap_or(chrono_tz::UTC);
    let bound = |field: &str, v: &Option<String>, is_end: bool| -> Result<Option<DateTime<Utc>>, OpError> {
        text(v).map(|t| parse_bound(&t, zone, is_end).map_err(|m| OpError::parse(field, m))).transpose()
    };
    let limit = number("limit", &q.limit)?.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(OpError::parse("limit", format!("must be between 1 and {MAX_LIMIT}")));
    }
    let release_id = match trail {
        Trail::Release(id) => Some(id),
        Trail::Account => number("release", &q.release)?,
    };
    let filter = AuditFilter {
        release_id,
        actor: text(&q.actor),
        action: text(&q.action),
        subject: text(&q.subject),
        from: bound("from", &q.from, false)?,
        to: bound("to", &q.to, true)?,
        before_id: number("after", &q.after)?,
    };
    Ok((filter, limit))
}

fn visibility(who: Requester<'_>, trail: Trail, action: Action) -> Result<Visibility, OpError> {
    if let (Trail::Release(_), Action::ViewAudit) = (trail, action) {
        return Ok(Visibility { account_level: true, all_orgs: true, orgs: Vec::new() });
    }
    let vis = Visibility::of(who.bindings, action);
    if vis.nothing() {
        return Err(OpError::Forbidden(format!("You may not {}: your roles do not allow it.", action.describe())));
    }
    Ok(vis)
}

/// A release's own trail is readable by whoever may see the release (its page shows it).
pub async fn check_release(conn: &mut AsyncPgConnection, who: Requester<'_>, email: &str, release_id: i64) -> Result<(), OpError> {
    let release = crate::db::models::releases::Release::find(conn, who.actor.account_id, release_id).await?;
    crate::ops::releases::require_visible(conn, &release, who.bindings, (who.actor.user_id.unwrap_or_default(), email)).await
}

/// One page of events, newest first.
pub async fn page(conn: &mut AsyncPgConnection, who: Requester<'_>, q: &AuditQuery, trail: Trail) -> Result<AuditPage, OpError> {
    let vis = visibility(who, trail, Action::ViewAudit)?;
    let (filter, limit) = filter_of(q, who.time_zone, trail)?;
    let mut events = audit_search::search(conn, who.actor.account_id, &vis, &filter, limit + 1).await?;
    let next = if events.len() as i64 > limit {
        events.truncate(limit as usize);
        events.last().map(|e| e.id)
    } else {
        None
    };
    Ok(AuditPage { filter, events, next })
}

/// Every matching event, newest first, read in batches on a connection of its own as the
/// consumer asks for them. Refuses (before the first batch) who may not export.
pub fn export(
    pool: DbPool,
    who: Requester<'_>,
    q: &AuditQuery,
    trail: Trail,
) -> Result<impl Stream<Item = Result<Vec<AuditEvent>, OpError>> + use<>, OpError> {
    let vis = visibility(who, trail, Action::ExportAudit)?;
    let (filter, _) = filter_of(q, who.time_zone, trail)?;
    let account_id = who.actor.account_id;
    struct Cursor {
        pool: DbPool,
        filter: AuditFilter,
        done: bool,
    }
    let start = Cursor { pool, filter, done: false };
    Ok(futures_util::stream::unfold(start, move |mut cursor| {
        let vis = vis.clone();
        async move {
            if cursor.done {
                return None;
            }
            let batch = async {
                let mut conn = cursor.pool.get().await.map_err(|e| OpError::Unexpected(anyhow::anyhow!(e)))?;
                Ok::<_, OpError>(audit_search::search(&mut conn, account_id, &vis, &cursor.filter, EXPORT_BATCH).await?)
            }
            .await;
            match batch {
                Ok(events) => {
                    cursor.done = (events.len() as i64) < EXPORT_BATCH;
                    cursor.filter.before_id = events.last().map(|e| e.id);
                    if events.is_empty() {
                        return None;
                    }
                    Some((Ok(events), cursor))
                }
                Err(e) => {
                    cursor.done = true;
                    Some((Err(e), cursor))
                }
            }
        }
    }))
}

pub async fn last_verification(conn: &mut AsyncPgConnection, account_id: i64) -> Result<Option<Verification>, OpError> {
    Ok(audit_search::last_verification(conn, account_id).await?)
}

/// Recomputes every chain of the account, records the result, and audits who asked. Account
/// auditors only: the account chain is not theirs to see otherwise.
pub async fn verify(conn: &mut AsyncPgConnection, who: Requester<'_>, now: DateTime<Utc>) -> Result<Verification, OpError> {
    crate::domain::policy::require(who.bindings, Action::ViewAudit, crate::domain::policy::Scope::Account)?;
    let actor = who.actor;
    let report = audit::verify(conn, Some(actor.account_id)).await?;
    let result = match &report.broken {
        None => serde_json::json!({"chains": report.chains, "events": report.events, "intact": true}),
        Some(b) => {
            serde_json::json!({"chains": report.chains, "events": report.events, "intact": false, "broken_chain": b.chain, "broken_seq": b.seq})
        }
    };
    conn.transaction(async |conn| {
        audit_search::record_verification(conn, actor.account_id, &actor.label, &report, now).await?;
        audit::append(conn, NewEvent::account(actor.account_id, &actor.label, "audit.verified", "audit").with_details(result), now).await?;
        Ok::<_, OpError>(())
    })
    .await?;
    audit_search::last_verification(conn, actor.account_id).await?.ok_or(OpError::NotFound)
}
