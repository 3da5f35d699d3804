//! `/reports/deployed`, `/reports/history` and `/reports/releases` (DESIGN §8); each also
//! answers `format=csv` with the file the API gives.

use actix_session::Session;
use actix_web::{web, HttpResponse};
use askama::Template;

use super::{ago, local, query_string, render, Chrome};
use crate::db::models::accounts::Organization;
use crate::db::models::catalog::{Environment, Service};
use crate::ops::reports::{self, ReportQuery};
use crate::web::error::AppError;
use crate::web::exports::{deployments_csv, releases_csv, wants_csv};
use crate::web::extractors::CurrentUser;
use crate::web::AppState;

/// The filter choices every report page offers.
pub struct Choices {
    pub orgs: Vec<Organization>,
    pub environments: Vec<String>,
    pub services: Vec<String>,
}

impl Choices {
    pub async fn load(conn: &mut diesel_async::AsyncPgConnection, account_id: i64) -> Result<Self, AppError> {
        Ok(Choices {
            orgs: Organization::list(conn, account_id).await?,
            environments: Environment::list(conn, account_id).await?.into_iter().map(|e| e.name).collect(),
            services: Service::list(conn, account_id).await?.into_iter().map(|s| s.name).collect(),
        })
    }
}

/// The page's own URL with its filters and `format=csv`.
pub(super) fn csv_link(path: &str, q: &ReportQuery) -> String {
    let qs = query_string(&[
        ("org", &q.org),
        ("environment", &q.environment),
        ("service", &q.service),
        ("from", &q.from),
        ("to", &q.to),
        ("format", &Some("csv".into())),
    ]);
    format!("{path}?{qs}")
}

pub struct CellView {
    pub version: String,
    pub release_id: Option<i64>,
    pub release_name: String,
    pub when: String,
    pub ago: String,
}

#[derive(Template)]
#[template(path = "pages/reports/deployed.html")]
pub struct DeployedPage {
    pub chrome: Chrome,
    pub query: ReportQuery,
    pub choices: Choices,
    pub environments: Vec<String>,
    /// Per service, one cell per environment column.
    pub rows: Vec<(String, Vec<Option<CellView>>)>,
    pub csv: String,
}

pub async fn deployed(
    state: web::Data<AppState>,
    user: CurrentUser,
    session: Session,
    query: web::Query<ReportQuery>,
) -> Result<HttpResponse, AppError> {
    let csv = wants_csv(&query.format)?;
    let mut conn = state.db().await?;
    let actor = user.actor();
    let now = state.now();
    let report = reports::deployed(&mut conn, user.requester(&actor), &query, now).await?;
    if csv {
        return Ok(deployments_csv("deployed", &report.cells));
    }
    let rows = report
        .services
        .iter()
        .map(|service| {
            let cells = report
                .environments
                .iter()
                .map(|env| {
                    report.cell(service, env).map(|c| CellView {
                        version: c.version.clone(),
                        release_id: c.release_id,
                        release_name: c.release_name.clone(),
                        when: local(Some(c.deployed_at), &user.time_zone),
                        ago: ago(c.deployed_at, now),
                    })
                })
                .collect();
            (service.clone(), cells)
        })
        .collect();
    let page = DeployedPage {
        chrome: Chrome::new(&user, &session, "What is deployed where", "/reports/deployed"),
        choices: Choices::load(&mut conn, user.account_id).await?,
        environments: report.environments,
        rows,
        csv: csv_link("/reports/deployed", &query),
        query: query.into_inner(),
    };
    render(&page)
}

pub struct HistoryRow {
    pub service: String,
    pub environment: String,
    pub version: String,
    pub release_id: Option<i64>,
    pub release_name: String,
    pub when: String,
    pub ago: String,
}

#[derive(Template)]
#[template(path = "pages/reports/history.html")]
pub struct HistoryPage {
    pub chrome: Chrome,
    pub query: ReportQuery,
    pub choices: Choices,
    pub rows: Vec<HistoryRow>,
    pub limit: i64,
    pub csv: String,
}

pub async fn history(
    state: web::Data<AppState>,
    user: CurrentUser,
    session: Session,
    query: web::Query<ReportQuery>,
) -> Result<HttpResponse, AppError> {
    let csv = wants_csv(&query.format)?;
    let mut conn = state.db().await?;
    let actor = user.actor();
    let now = state.now();
    let found = reports::history(&mut conn, user.requester(&actor), &query, now).await?;
    if csv {
        return Ok(deployments_csv("history", &found));
    }
    let rows = found
        .into_iter()
        .map(|d| HistoryRow {
            when: local(Some(d.deployed_at), &user.time_zone),
            ago: ago(d.deployed_at, now),
            service: d.service,
            environment: d.environment,
            version: d.version,
            release_id: d.release_id,
            release_name: d.release_name,
        })
        .collect();
    let page = HistoryPage {
        chrome: Chrome::new(&user, &session, "Deployment history", "/reports/history"),
        choices: Choices::load(&mut conn, user.account_id).await?,
        rows,
        limit: reports::ROW_LIMIT,
        csv: csv_link("/reports/history", &query),
        query: query.into_inner(),
    };
    render(&page)
}

pub struct ReleaseReportView {
    pub id: i64,
    pub name: String,
    pub release_type: String,
    pub org: String,
    pub state: String,
    pub status: String,
    pub owner: String,
    pub started: String,
    pub duration: String,
    pub approvals: Vec<String>,
    pub failure_reasons: Vec<String>,
}

#[derive(Template)]
#[template(path = "pages/reports/releases.html")]
pub struct ReleasesPage {
    pub chrome: Chrome,
    pub query: ReportQuery,
    pub choices: Choices,
    pub period: String,
    pub rows: Vec<ReleaseReportView>,
    pub csv: String,
}

/// "2 d 3 h", "45 min": a duration for people.
pub fn duration_words(seconds: i64) -> String {
    let (d, h, m) = (seconds / 86_400, (seconds % 86_400) / 3_600, (seconds % 3_600) / 60);
    match (d, h) {
        (0, 0) => format!("{m} min"),
        (0, _) => format!("{h} h {m} min"),
        _ => format!("{d} d {h} h"),
    }
}

pub async fn releases(
    state: web::Data<AppState>,
    user: CurrentUser,
    session: Session,
    query: web::Query<ReportQuery>,
) -> Result<HttpResponse, AppError> {
    let csv = wants_csv(&query.format)?;
    let mut conn = state.db().await?;
    let actor = user.actor();
    let (filter, found) = reports::releases(&mut conn, user.requester(&actor), &query, state.now()).await?;
    if csv {
        return Ok(releases_csv(&found));
    }
    let zone = &user.time_zone;
    let rows = found
        .into_iter()
        .map(|row| {
            let r = row.release;
            ReleaseReportView {
                id: r.id,
                name: r.name,
                release_type: r.release_type.as_str().to_owned(),
                org: r.org.unwrap_or_else(|| "account".into()),
                state: r.state.as_str().to_owned(),
                status: r.status.as_str().to_owned(),
                owner: r.owner.unwrap_or_default(),
                started: local(r.started_at, zone),
                duration: row.duration_seconds.map(duration_words).unwrap_or_default(),
                approvals: row
                    .approvals
                    .iter()
                    .map(|a| {
                        let behalf = a.on_behalf_of.as_ref().map(|o| format!(" (for {o})")).unwrap_or_default();
                        format!("{}: {} by {}{}, {}", a.activity, a.decision, a.approver, behalf, local(Some(a.at), zone))
                    })
                    .collect(),
                failure_reasons: row.failure_reasons,
            }
        })
        .collect();
    let period = format!("{} – {}", local(filter.from, zone), if filter.to.is_some() { local(filter.to, zone) } else { "now".into() });
    let page = ReleasesPage {
        chrome: Chrome::new(&user, &session, "Releases by period", "/reports/releases"),
        choices: Choices::load(&mut conn, user.account_id).await?,
        period,
        rows,
        csv: csv_link("/reports/releases", &query),
        query: query.into_inner(),
    };
    render(&page)
}
