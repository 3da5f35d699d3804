//! Calendar entries: scheduled releases in a range, filtered, with their conflicts (DESIGN §6).

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use crate::db::models::releases::Release;
use crate::db::schema::{release_links, releases};
use crate::domain::policy::{self, Action, Binding};
use crate::domain::schedule::{conflicts, Entry};

#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// `Some(None)` = account level only.
    pub org: Option<Option<i64>>,
    pub environment: Option<String>,
    pub service: Option<String>,
    pub release_type: Option<String>,
    pub status: Option<String>,
    pub owner_id: Option<i64>,
}

#[derive(Debug, Clone)]
pub struct CalEntry {
    pub release: Release,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub conflicts: Vec<i64>,
}

/// Releases whose window meets [from, to), visible to these bindings, with conflicts computed
/// over every release in the range (a conflict with a filtered-out release still shows).
pub async fn entries(
    conn: &mut AsyncPgConnection,
    account_id: i64,
    bindings: &[Binding],
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    f: &Filter,
) -> QueryResult<Vec<CalEntry>> {
    let all: Vec<Release> = releases::table
        .filter(releases::account_id.eq(account_id))
        .filter(releases::state.ne("archived"))
        .filter(releases::schedule_start.lt(to))
        .filter(releases::schedule_end.gt(from))
        .order((releases::schedule_start, releases::id))
        .select(Release::as_select())
        .load(conn)
        .await?;
    let ids: Vec<i64> = all.iter().map(|r| r.id).collect();
    let hotfix: Vec<(i64, i64)> = release_links::table
        .filter(release_links::release_id.eq_any(&ids))
        .filter(release_links::kind.eq("hotfix_for"))
        .select((release_links::release_id, release_links::target_id))
        .load(conn)
        .await?;
    let input: Vec<Entry> = all
        .iter()
        .map(|r| Entry {
            id: r.id,
            start: r.schedule_start.unwrap_or(from),
            end: r.schedule_end.unwrap_or(to),
            environments: r.environments.clone(),
            services: r.services.clone(),
            group: r.release_group_id,
            hotfix_for: hotfix.iter().find(|(id, _)| *id == r.id).map(|(_, t)| *t),
        })
        .collect();
    let found = conflicts(&input);
    Ok(all
        .into_iter()
        .filter(|r| policy::allows(bindings, Action::ViewCalendar, r.scope()) && policy::allows(bindings, Action::ViewRelease, r.scope()))
        .filter(|r| match f.org {
            Some(None) => r.org_id.is_none(),
            Some(Some(o)) => r.org_id == Some(o),
            None => true,
        })
        .filter(|r| f.environment.as_ref().is_none_or(|e| r.environments.contains(e)))
        .filter(|r| f.service.as_ref().is_none_or(|s| r.services.contains(s)))
        .filter(|r| f.release_type.as_ref().is_none_or(|t| &r.release_type == t))
        .filter(|r| f.status.as_ref().is_none_or(|s| &r.status == s))
        .filter(|r| f.owner_id.is_none_or(|o| r.owner_id == Some(o)))
        .map(|r| CalEntry {
            start: r.schedule_start.unwrap_or(from),
            end: r.schedule_end.unwrap_or(to),
            conflicts: found.get(&r.id).cloned().unwrap_or_default(),
            release: r,
        })
        .collect())
}

/// Releases that would conflict with a window on these targets (for warnings when scheduling).
pub async fn conflicting_with(conn: &mut AsyncPgConnection, candidate: &Release, bindings: &[Binding]) -> QueryResult<Vec<(i64, String)>> {
    let (Some(start), Some(end)) = (candidate.schedule_start, candidate.schedule_end) else { return Ok(Vec::new()) };
    let found = entries(conn, candidate.account_id, bindings, start, end, &Filter::default()).await?;
    Ok(found
        .iter()
        .find(|e| e.release.id == candidate.id)
        .map(|me| found.iter().filter(|e| me.conflicts.contains(&e.release.id)).map(|e| (e.release.id, e.release.name.clone())).collect())
        .unwrap_or_default())
}

/// Warnings (and an audit record) when a release's window conflicts with others: scheduling
/// into a conflict is allowed, but never silent.
pub async fn warn_conflicts(
    conn: &mut AsyncPgConnection,
    release: &Release,
    bindings: &[Binding],
    actor: &str,
    now: DateTime<Utc>,
) -> QueryResult<Vec<String>> {
    let others = conflicting_with(conn, release, bindings).await?;
    if others.is_empty() {
        return Ok(Vec::new());
    }
    crate::db::audit::append(
        conn,
        crate::db::audit::NewEvent::release(release, actor, "release.conflict_warning")
            .with_details(serde_json::json!({"conflicts_with": others.iter().map(|(id, _)| id).collect::<Vec<_>>()})),
        now,
    )
    .await?;
    Ok(others
        .into_iter()
        .map(|(id, name)| format!("This window conflicts with release #{id} \"{name}\" on a shared environment."))
        .collect())
}
