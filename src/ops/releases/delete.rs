//! Deleting and purging releases, and the daily retention job.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use serde_json::json;

use crate::db::audit::{self, NewEvent};
use crate::db::models::releases::{self as rows, Release};
use crate::db::schema::{audit_events, releases, sweep_runs};
use crate::domain::release::State;
use crate::domain::release::Status;
use crate::domain::release::{self as rules, Deletion, DeletionFacts};
use crate::domain::rule::RuleCode;
use crate::ops::{Actor, OpError};

/// The retention sweep's row in `sweep_runs` (when it last ran).
const RETENTION_SWEEP: &str = "retention";

/// What a deletion did: for a draft, the links that pointed at it and were removed.
#[derive(Debug)]
pub struct Deleted {
    pub name: String,
    pub removed_links: Vec<(i64, String, String)>,
    pub purged: bool,
}

pub async fn delete(
    conn: &mut AsyncPgConnection,
    actor: &Actor,
    release_id: i64,
    retention_days: u32,
    now: DateTime<Utc>,
) -> Result<Deleted, OpError> {
    conn.transaction(async |conn| {
        let release = Release::lock(conn, actor.account_id, release_id).await?;
        let linked_by = rows::links_to(conn, release.id).await?;
        let facts = DeletionFacts {
            state: release.state(),
            status: release.status(),
            finished_at: release.finished_at,
            activated: release.activated_at.is_some(),
            linked_by: linked_by.clone(),
            current_deployments: crate::db::models::deployments::Deployment::current_of(conn, release.account_id, release.id).await?,
            now,
            retention_days,
        };
        let how = rules::deletion(&facts).map_err(|reason| OpError::Rule { code: RuleCode::DeleteRefused, message: format!("Release #{} cannot be deleted: {reason}", release.id), field: None })?;
        match how {
            Deletion::Draft => {
                rows::remove_links_to(conn, release.id).await?;
                diesel::delete(releases::table.find(release.id)).execute(conn).await?;
                audit::append(
                    conn,
                    NewEvent::account(release.account_id, &actor.label, "release.delete", format!("release:{}", release.id)).with_details(json!({
                        "name": release.name,
                        "removed_links": linked_by.iter().map(|(id, name, kind)| json!({"release": id, "name": name, "kind": kind})).collect::<Vec<_>>(),
                    })),
                    now,
                )
                .await?;
                Ok(Deleted { name: release.name, removed_links: linked_by, purged: false })
            }
            Deletion::Purge => {
                let chain = crate::domain::audit::chain_for(Some(release.account_id), Some(release.id));
                let last_hash: Option<String> = crate::db::schema::audit_chain_heads::table
                    .find(&chain)
                    .select(crate::db::schema::audit_chain_heads::last_hash)
                    .first(conn)
                    .await
                    .optional()?;
                // The one permitted path past the append-only trigger (DESIGN §8).
                diesel::sql_query("SELECT set_config('railyard.purge_release', $1, true)")
                    .bind::<diesel::sql_types::Text, _>(release.id.to_string())
                    .execute(conn)
                    .await?;
                diesel::delete(audit_events::table.filter(audit_events::release_id.eq(release.id))).execute(conn).await?;
                diesel::delete(crate::db::schema::audit_chain_heads::table.find(&chain)).execute(conn).await?;
                diesel::delete(releases::table.find(release.id)).execute(conn).await?;
                audit::append(
                    conn,
                    NewEvent::account(release.account_id, &actor.label, "release.purge", format!("release:{}", release.id)).with_details(json!({
                        "name": release.name,
                        "final_status": release.status,
                        "state": release.state,
                        "removed_chain": chain,
                        "removed_chain_last_hash": last_hash,
                    })),
                    now,
                )
                .await?;
                Ok(Deleted { name: release.name, removed_links: Vec::new(), purged: true })
            }
        }
    })
    .await
}

const RETENTION_LOCK_KEY: i64 = 0x5245_5445_4e54; // "RETENT"

/// The daily retention job: archives releases finished (and drafts whose window ended) more than
/// `days` ago; never one in flight. Safe with several servers (advisory xact lock + last run).
pub async fn retention_sweep(conn: &mut AsyncPgConnection, days: u32, now: DateTime<Utc>) -> Result<usize, OpError> {
    conn.transaction(async |conn| {
        #[derive(QueryableByName)]
        struct Locked {
            #[diesel(sql_type = diesel::sql_types::Bool)]
            locked: bool,
        }
        let got: Locked =
            diesel::sql_query(format!("SELECT pg_try_advisory_xact_lock({RETENTION_LOCK_KEY}) AS locked")).get_result(conn).await?;
        if !got.locked {
            return Ok(0);
        }
        let last: Option<DateTime<Utc>> =
            sweep_runs::table.find(RETENTION_SWEEP).select(sweep_runs::last_run_at).first(conn).await.optional()?;
        if last.is_some_and(|t| t > now - chrono::TimeDelta::hours(23)) {
            return Ok(0);
        }
        let limit = now - chrono::TimeDelta::days(i64::from(days));
        let finished = ["Success", "PartialSuccess", "Failed", "RolledBack", "Aborted"];
        let due: Vec<Release> = releases::table
            .filter(
                (releases::state.eq(State::Active.as_str()).and(releases::status.eq_any(finished)).and(releases::finished_at.lt(limit)))
                    .or(releases::state.eq(State::Draft.as_str()).and(releases::schedule_end.lt(limit))),
            )
            .for_update()
            .skip_locked()
            .select(Release::as_select())
            .load(conn)
            .await?;
        let mut archived = 0;
        for r in due {
            if !rules::retention_due(r.state(), r.status(), r.finished_at, r.schedule_end, now, days) {
                continue;
            }
            diesel::update(releases::table.find(r.id))
                .set((
                    releases::state.eq(State::Archived.as_str()),
                    releases::archived_at.eq(now),
                    releases::lock_version.eq(releases::lock_version + 1),
                    releases::updated_at.eq(now),
                ))
                .execute(conn)
                .await?;
            audit::append(
                conn,
                NewEvent::release(&r, "system:retention", "release.archive").with_details(json!({"retention_days": days, "was": r.state})),
                now,
            )
            .await?;
            archived += 1;
        }
        diesel::insert_into(sweep_runs::table)
            .values((sweep_runs::name.eq(RETENTION_SWEEP), sweep_runs::last_run_at.eq(now)))
            .on_conflict(sweep_runs::name)
            .do_update()
            .set(sweep_runs::last_run_at.eq(now))
            .execute(conn)
            .await?;
        Ok(archived)
    })
    .await
}

/// Whether releases of the other level are drafts or in flight (switching is refused then).
pub async fn other_level_busy(conn: &mut AsyncPgConnection, account_id: i64, new_level: &str) -> QueryResult<i64> {
    let base = releases::table
        .filter(releases::account_id.eq(account_id))
        .filter(releases::state.eq(State::Draft.as_str()).or(
            releases::state.eq(State::Active.as_str()).and(releases::status.eq_any([Status::Running.as_str(), Status::OnHold.as_str()])),
        ))
        .into_boxed();
    let q = if new_level == "account" { base.filter(releases::org_id.is_not_null()) } else { base.filter(releases::org_id.is_null()) };
    q.count().get_result(conn).await
}
