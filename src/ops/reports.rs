//! The reports and insights of DESIGN §8, shared by the pages, the API and the CSV downloads.

use chrono::{DateTime, TimeDelta, Utc};
use diesel_async::AsyncPgConnection;
use serde::Deserialize;

use crate::db::models::accounts::Organization;
use crate::db::models::catalog::Environment;
use crate::db::reports::{self, ApprovalRow, DeploymentRow, FailureRow, ReleaseRow, ReportFilter};
use crate::domain::insights::{self, Deployed, ProductionRelease, Row};
use crate::domain::policy::{Action, Visibility};
use crate::domain::release::Status;
use crate::domain::schedule::parse_bound;
use crate::ops::{OpError, Requester};

/// The query string of every report (pages and API); `format` is read by the web layer.
#[derive(Debug, Deserialize, Default, Clone, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(default, deny_unknown_fields)]
pub struct ReportQuery {
    pub org: Option<String>,
    pub environment: Option<String>,
    pub service: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
    pub format: Option<String>,
}

impl ReportQuery {
    fn text(v: &Option<String>) -> Option<String> {
        v.as_ref().map(|s| s.trim().to_string()).filter(|s| !s.is_empty())
    }
}

/// The history and release reports list at most this many rows on a page or in one answer.
pub const ROW_LIMIT: i64 = 2_000;

/// Reads the filters, naming a bad parameter; `default_days` opens a period ending now when
/// `from` is not given.
async fn filter_of(
    conn: &mut AsyncPgConnection,
    who: Requester<'_>,
    q: &ReportQuery,
    now: DateTime<Utc>,
    default_days: Option<i64>,
) -> Result<ReportFilter, OpError> {
    let zone: chrono_tz::Tz = who.time_zone.parse().unwrap_or(chrono_tz::UTC);
    let org = match ReportQuery::text(&q.org).as_deref() {
        None => None,
        Some("account") => Some(None),
        Some(slug) => Some(Some(
            Organization::by_slug(conn, who.actor.account_id, slug)
                .await
                .map_err(|_| OpError::parse("org", format!("there is no organization {slug:?}")))?
                .id,
        )),
    };
    let bound = |field: &str, v: &Option<String>, is_end: bool| -> Result<Option<DateTime<Utc>>, OpError> {
        ReportQuery::text(v).map(|t| parse_bound(&t, zone, is_end).map_err(|m| OpError::parse(field, m))).transpose()
    };
    let to = bound("to", &q.to, true)?;
    let from = bound("from", &q.from, false)?.or_else(|| default_days.map(|d| to.unwrap_or(now) - TimeDelta::days(d)));
    if let (Some(f), Some(t)) = (from, to) {
        if t <= f {
            return Err(OpError::parse("to", "must be after from"));
        }
    }
    Ok(ReportFilter { org, environment: ReportQuery::text(&q.environment), service: ReportQuery::text(&q.service), from, to })
}

fn visibility(who: Requester<'_>) -> Result<Visibility, OpError> {
    let vis = Visibility::of(who.bindings, Action::ViewRelease);
    if vis.nothing() {
        return Err(OpError::Forbidden("You may not view releases: you hold no role that does.".into()));
    }
    Ok(vis)
}

pub struct DeployedReport {
    pub filter: ReportFilter,
    /// Columns in the catalog's order, then any environment no longer in the catalog.
    pub environments: Vec<String>,
    pub services: Vec<String>,
    pub cells: Vec<DeploymentRow>,
}

impl DeployedReport {
    pub fn cell(&self, service: &str, environment: &str) -> Option<&DeploymentRow> {
        self.cells.iter().find(|c| c.service == service && c.environment == environment)
    }
}

pub async fn deployed(
    conn: &mut AsyncPgConnection,
    who: Requester<'_>,
    q: &ReportQuery,
    now: DateTime<Utc>,
) -> Result<DeployedReport, OpError> {
    let vis = visibility(who)?;
    let filter = filter_of(conn, who, q, now, None).await?;
    let cells = reports::deployed(conn, who.actor.account_id, &vis, &filter).await?;
    let mut environments: Vec<String> = Environment::list(conn, who.actor.account_id)
        .await?
        .into_iter()
        .map(|e| e.name)
        .filter(|e| filter.environment.as_ref().is_none_or(|f| f == e))
        .collect();
    let mut services: Vec<String> = Vec::new();
    for c in &cells {
        if !environments.contains(&c.environment) {
            environments.push(c.environment.clone());
        }
        if !services.contains(&c.service) {
            services.push(c.service.clone());
        }
    }
    services.sort();
    Ok(DeployedReport { filter, environments, services, cells })
}

pub async fn history(
    conn: &mut AsyncPgConnection,
    who: Requester<'_>,
    q: &ReportQuery,
    now: DateTime<Utc>,
) -> Result<Vec<DeploymentRow>, OpError> {
    let vis = visibility(who)?;
    let filter = filter_of(conn, who, q, now, None).await?;
    Ok(reports::history(conn, who.actor.account_id, &vis, &filter, ROW_LIMIT).await?)
}

/// One row of `/reports/releases`.
pub struct ReleaseReportRow {
    pub release: ReleaseRow,
    pub duration_seconds: Option<i64>,
    pub approvals: Vec<ApprovalRow>,
    pub failure_reasons: Vec<String>,
}

pub async fn releases(
    conn: &mut AsyncPgConnection,
    who: Requester<'_>,
    q: &ReportQuery,
    now: DateTime<Utc>,
) -> Result<(ReportFilter, Vec<ReleaseReportRow>), OpError> {
    let vis = visibility(who)?;
    let filter = filter_of(conn, who, q, now, Some(30)).await?;
    let rows = reports::releases(conn, who.actor.account_id, &vis, &filter, ROW_LIMIT).await?;
    let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
    let mut approvals = reports::approvals(conn, &ids).await?;
    let failures = reports::failures(conn, &ids).await?;
    let out = rows
        .into_iter()
        .map(|release| {
            let mine: Vec<ApprovalRow> = approvals.extract_if(.., |a| a.release_id == release.id).collect();
            let mut reasons: Vec<String> = failures
                .iter()
                .filter(|f: &&FailureRow| f.release_id == release.id)
                .map(|f| format!("{}.{}: {}", f.phase, f.activity, f.reason))
                .collect();
            let ended_badly = matches!(release.status, Status::Failed | Status::Aborted | Status::RolledBack);
            if let (true, Some(reason)) = (ended_badly, &release.status_reason) {
                if !reasons.iter().any(|r| r.ends_with(reason.as_str())) {
                    reasons.push(reason.clone());
                }
            }
            let duration_seconds = match (release.started_at, release.finished_at) {
                (Some(s), Some(f)) => Some((f - s).num_seconds()),
                _ => None,
            };
            ReleaseReportRow { release, duration_seconds, approvals: mine, failure_reasons: reasons }
        })
        .collect();
    Ok((filter, out))
}

pub struct Insights {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub rows: Vec<Row>,
}

/// DORA metrics over production environments (DESIGN §8); the period defaults to 90 days.
pub async fn insights(conn: &mut AsyncPgConnection, who: Requester<'_>, q: &ReportQuery, now: DateTime<Utc>) -> Result<Insights, OpError> {
    let vis = visibility(who)?;
    let mut filter = filter_of(conn, who, q, now, Some(90)).await?;
    let to = filter.to.unwrap_or(now);
    filter.to = Some(to);
    let from = filter.from.unwrap_or(to - TimeDelta::days(90));
    let deployed = reports::production_deployments(conn, who.actor.account_id, &vis, &filter).await?;
    let mut ids: Vec<i64> = deployed.iter().filter(|d| d.deployed_at < to).filter_map(|d| d.release_id).collect();
    ids.sort_unstable();
    ids.dedup();
    let production: Vec<String> =
        Environment::list(conn, who.actor.account_id).await?.into_iter().filter(|e| e.production).map(|e| e.name).collect();
    let releases = reports::production_releases(conn, who.actor.account_id, &vis, &filter, &ids).await?;
    let deployments: Vec<Deployed> = deployed
        .into_iter()
        .map(|d| Deployed {
            change_started: d.artifacts.as_ref().and_then(insights::earliest_commit_time).or(d.release_created_at),
            service: d.service,
            environment: d.environment,
            release_id: d.release_id,
            at: d.deployed_at,
        })
        .collect();
    let releases: Vec<ProductionRelease> = releases
        .into_iter()
        .map(|r| ProductionRelease {
            id: r.id,
            failed: matches!(r.status, Status::Failed | Status::RolledBack),
            finished_at: r.finished_at,
            environments: r
                .environments
                .into_iter()
                .filter(|e| production.contains(e) && filter.environment.as_ref().is_none_or(|f| f == e))
                .collect(),
            services: r.services.into_iter().filter(|s| filter.service.as_ref().is_none_or(|f| f == s)).collect(),
            hotfix_at: r.hotfix_at,
        })
        .collect();
    Ok(Insights { from, to, rows: insights::compute(&deployments, &releases, from, to) })
}
