//! Deploy locks as stored (DESIGN §2): one row per phase and lock, held or queued. Decisions
//! are made under a per-account transaction lock, so two phases never take the same lock.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::BigInt;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use std::collections::BTreeMap;

use crate::db::schema::{deploy_locks, release_links, release_phases, releases};
use crate::domain::locks::{Claim, LockKey, LockState};
use crate::domain::release::LinkKind;

/// The namespace of the account-wide advisory lock that orders deploy-lock decisions.
const LOCK_SPACE: i32 = 0x4c4f_434b;

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = deploy_locks)]
pub struct LockRow {
    pub id: i64,
    pub account_id: i64,
    pub environment: String,
    pub service: String,
    pub release_id: i64,
    pub phase_key: String,
    pub held: bool,
    pub hotfix: bool,
    pub since: DateTime<Utc>,
}

impl LockRow {
    pub fn key(&self) -> LockKey {
        LockKey { environment: self.environment.clone(), service: self.service.clone() }
    }

    pub fn claim(&self) -> Claim {
        Claim { release_id: self.release_id, phase: self.phase_key.clone() }
    }
}

/// Waits until no other transaction decides deploy locks in this account (until commit).
pub async fn serialize(conn: &mut AsyncPgConnection, account_id: i64) -> QueryResult<()> {
    diesel::sql_query("SELECT pg_advisory_xact_lock($1, ($2 % 2147483647)::int)")
        .bind::<diesel::sql_types::Integer, _>(LOCK_SPACE)
        .bind::<BigInt, _>(account_id)
        .execute(conn)
        .await?;
    Ok(())
}

/// Every row of these environments, holders first, then each queue in its order (hotfixes
/// first, then by arrival).
pub async fn rows_in(conn: &mut AsyncPgConnection, account_id: i64, environments: &[String]) -> QueryResult<Vec<LockRow>> {
    deploy_locks::table
        .filter(deploy_locks::account_id.eq(account_id))
        .filter(deploy_locks::environment.eq_any(environments))
        .order((deploy_locks::held.desc(), deploy_locks::hotfix.desc(), deploy_locks::since, deploy_locks::id))
        .select(LockRow::as_select())
        .load(conn)
        .await
}

/// Where each lock stands: its holder and the first in its queue.
pub fn states(rows: &[LockRow]) -> BTreeMap<LockKey, LockState> {
    let mut out: BTreeMap<LockKey, LockState> = BTreeMap::new();
    for row in rows {
        let state = out.entry(row.key()).or_default();
        if row.held {
            state.holder = Some(row.claim());
        } else if state.first_waiting.is_none() {
            state.first_waiting = Some(row.claim());
        }
    }
    out
}

/// The releases this one runs inside of, along `subprocess_of` (nearest first).
pub async fn ancestors(conn: &mut AsyncPgConnection, release_id: i64) -> QueryResult<Vec<i64>> {
    let mut out = Vec::new();
    let mut at = release_id;
    // A chain is short; the bound guards against a cycle written by hand.
    for _ in 0..16 {
        let parent: Option<i64> = release_links::table
            .filter(release_links::release_id.eq(at))
            .filter(release_links::kind.eq(LinkKind::SubprocessOf))
            .select(release_links::target_id)
            .first(conn)
            .await
            .optional()?;
        match parent {
            Some(p) if !out.contains(&p) => {
                out.push(p);
                at = p;
            }
            _ => break,
        }
    }
    Ok(out)
}

/// Who claims a lock.
pub struct Claimant<'a> {
    pub account_id: i64,
    pub release_id: i64,
    pub phase: &'a str,
    pub hotfix: bool,
}

/// The phase queues on each of these locks (where it is not queued or holding already).
pub async fn enqueue(conn: &mut AsyncPgConnection, who: &Claimant<'_>, keys: &[LockKey], now: DateTime<Utc>) -> QueryResult<()> {
    for key in keys {
        diesel::insert_into(deploy_locks::table)
            .values((
                deploy_locks::account_id.eq(who.account_id),
                deploy_locks::environment.eq(&key.environment),
                deploy_locks::service.eq(&key.service),
                deploy_locks::release_id.eq(who.release_id),
                deploy_locks::phase_key.eq(who.phase),
                deploy_locks::held.eq(false),
                deploy_locks::hotfix.eq(who.hotfix),
                deploy_locks::since.eq(now),
            ))
            .on_conflict((deploy_locks::release_id, deploy_locks::environment, deploy_locks::service))
            .do_nothing()
            .execute(conn)
            .await?;
    }
    Ok(())
}

/// The phase holds these locks from now on (its queue places become its holds).
pub async fn grant(conn: &mut AsyncPgConnection, who: &Claimant<'_>, keys: &[LockKey], now: DateTime<Utc>) -> QueryResult<()> {
    for key in keys {
        diesel::insert_into(deploy_locks::table)
            .values((
                deploy_locks::account_id.eq(who.account_id),
                deploy_locks::environment.eq(&key.environment),
                deploy_locks::service.eq(&key.service),
                deploy_locks::release_id.eq(who.release_id),
                deploy_locks::phase_key.eq(who.phase),
                deploy_locks::held.eq(true),
                deploy_locks::hotfix.eq(who.hotfix),
                deploy_locks::since.eq(now),
            ))
            .on_conflict((deploy_locks::release_id, deploy_locks::environment, deploy_locks::service))
            .do_update()
            .set((deploy_locks::held.eq(true), deploy_locks::phase_key.eq(who.phase), deploy_locks::since.eq(now)))
            .execute(conn)
            .await?;
    }
    Ok(())
}

/// A phase's locks pass to another phase of the same release (a failing phase's to the
/// rollback phase).
pub async fn pass(conn: &mut AsyncPgConnection, release_id: i64, from: &str, to: &str) -> QueryResult<usize> {
    diesel::update(deploy_locks::table)
        .filter(deploy_locks::release_id.eq(release_id))
        .filter(deploy_locks::phase_key.eq(from))
        .filter(deploy_locks::held.eq(true))
        .set(deploy_locks::phase_key.eq(to))
        .execute(conn)
        .await
}

/// Removes a phase's holds and queue places (or, without a phase, all of the release's) and
/// returns the locks it held, whose queues may move now.
pub async fn release(conn: &mut AsyncPgConnection, release_id: i64, phase: Option<&str>) -> QueryResult<Vec<LockRow>> {
    let mut q = diesel::delete(deploy_locks::table).filter(deploy_locks::release_id.eq(release_id)).into_boxed();
    if let Some(phase) = phase {
        q = q.filter(deploy_locks::phase_key.eq(phase));
    }
    let removed: Vec<LockRow> = q.returning(LockRow::as_returning()).get_results(conn).await?;
    Ok(removed.into_iter().filter(|r| r.held).collect())
}

/// The releases queued on these locks, to be looked at again now. A release another worker is
/// advancing right now is skipped (never waited for): it reads the locks itself, and waiters
/// are looked at again on a short poll anyway.
pub async fn wake_waiters(conn: &mut AsyncPgConnection, freed: &[LockRow], now: DateTime<Utc>) -> QueryResult<usize> {
    let Some(first) = freed.first() else { return Ok(0) };
    let environments: Vec<String> = freed.iter().map(|r| r.environment.clone()).collect();
    let waiting: Vec<(i64, String, String)> = deploy_locks::table
        .filter(deploy_locks::account_id.eq(first.account_id))
        .filter(deploy_locks::environment.eq_any(&environments))
        .filter(deploy_locks::held.eq(false))
        .select((deploy_locks::release_id, deploy_locks::environment, deploy_locks::service))
        .load(conn)
        .await?;
    let mut ids: Vec<i64> =
        waiting.into_iter().filter(|(_, e, s)| freed.iter().any(|f| &f.environment == e && &f.service == s)).map(|(id, _, _)| id).collect();
    ids.sort_unstable();
    ids.dedup();
    if ids.is_empty() {
        return Ok(0);
    }
    let free: Vec<i64> =
        releases::table.filter(releases::id.eq_any(&ids)).select(releases::id).for_update().skip_locked().load(conn).await?;
    let woken =
        diesel::update(releases::table.filter(releases::id.eq_any(&free))).set(releases::next_eval_at.eq(now)).execute(conn).await?;
    crate::db::wake::wake(conn).await?;
    Ok(woken)
}

/// A lock row with what the reader is shown of its release: name, org and phase name.
#[derive(Debug, Clone, Queryable)]
pub struct LockShown {
    pub row: LockRow,
    pub release_name: String,
    pub org_id: Option<i64>,
    pub phase_name: String,
}

/// Every lock row of the account with its release's name and phase, in the order shown.
pub async fn list(conn: &mut AsyncPgConnection, account_id: i64) -> QueryResult<Vec<LockShown>> {
    deploy_locks::table
        .inner_join(releases::table.on(releases::id.eq(deploy_locks::release_id)))
        .inner_join(
            release_phases::table
                .on(release_phases::release_id.eq(deploy_locks::release_id).and(release_phases::key.eq(deploy_locks::phase_key))),
        )
        .filter(deploy_locks::account_id.eq(account_id))
        .order((
            deploy_locks::environment,
            deploy_locks::service,
            deploy_locks::held.desc(),
            deploy_locks::hotfix.desc(),
            deploy_locks::since,
            deploy_locks::id,
        ))
        .select((LockRow::as_select(), releases::name, releases::org_id, release_phases::name))
        .load(conn)
        .await
}

/// One claim as shown: the release's name and org, its phase's name, and since when.
pub async fn shown(conn: &mut AsyncPgConnection, claim: &Claim, key: &LockKey) -> QueryResult<Option<LockShown>> {
    deploy_locks::table
        .inner_join(releases::table.on(releases::id.eq(deploy_locks::release_id)))
        .inner_join(
            release_phases::table
                .on(release_phases::release_id.eq(deploy_locks::release_id).and(release_phases::key.eq(deploy_locks::phase_key))),
        )
        .filter(deploy_locks::release_id.eq(claim.release_id))
        .filter(deploy_locks::environment.eq(&key.environment))
        .filter(deploy_locks::service.eq(&key.service))
        .select((LockRow::as_select(), releases::name, releases::org_id, release_phases::name))
        .first(conn)
        .await
        .optional()
}
