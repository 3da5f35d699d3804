//! `/insights`: DORA metrics per service and production environment, each row with a small
//! server-drawn SVG of its weekly deployments (no JavaScript).

use actix_session::Session;
use actix_web::{web, HttpResponse};
use askama::Template;

use super::reports::{csv_link, Choices};
use super::{local, render, Chrome};
use crate::ops::reports::{self, ReportQuery};
use crate::web::error::AppError;
use crate::web::exports::{insights_csv, wants_csv};
use crate::web::extractors::CurrentUser;
use crate::web::AppState;

pub struct InsightRow {
    pub service: String,
    pub environment: String,
    pub deployments: usize,
    pub per_week: String,
    pub lead_median: String,
    pub lead_p90: String,
    pub failure_rate: String,
    pub restore_median: String,
    pub chart: String,
}

#[derive(Template)]
#[template(path = "pages/insights.html")]
pub struct InsightsPage {
    pub chrome: Chrome,
    pub query: ReportQuery,
    pub choices: Choices,
    pub period: String,
    pub rows: Vec<InsightRow>,
    pub csv: String,
}

fn hours(v: Option<f64>) -> String {
    match v {
        None => "—".into(),
        Some(h) if h >= 48.0 => format!("{:.1} d", h / 24.0),
        Some(h) => format!("{h:.1} h"),
    }
}

/// Bars of weekly counts, scaled to the largest; the numbers are also in the title for readers.
pub fn weekly_bars(counts: &[usize]) -> String {
    let (width, height, gap) = (8usize, 32usize, 2usize);
    let max = counts.iter().copied().max().unwrap_or(0).max(1);
    let total_width = counts.len() * (width + gap);
    let mut svg = format!(
        "<svg class=\"spark\" role=\"img\" viewBox=\"0 0 {total_width} {height}\" width=\"{total_width}\" height=\"{height}\"><title>Deployments per week: {}</title>",
        counts.iter().map(|c| c.to_string()).collect::<Vec<_>>().join(", ")
    );
    for (i, c) in counts.iter().enumerate() {
        let h = (c * (height - 2) / max).max(usize::from(*c > 0));
        svg.push_str(&format!(
            "<rect x=\"{}\" y=\"{}\" width=\"{width}\" height=\"{h}\" class=\"bar\"></rect>",
            i * (width + gap),
            height - h
        ));
    }
    svg.push_str("</svg>");
    svg
}

pub async fn insights(
    state: web::Data<AppState>,
    user: CurrentUser,
    session: Session,
    query: web::Query<ReportQuery>,
) -> Result<HttpResponse, AppError> {
    let csv = wants_csv(&query.format)?;
    let mut conn = state.db().await?;
    let actor = user.actor();
    let found = reports::insights(&mut conn, user.requester(&actor), &query, state.now()).await?;
    if csv {
        return Ok(insights_csv(&found));
    }
    let rows = found
        .rows
        .iter()
        .map(|r| InsightRow {
            service: r.service.clone(),
            environment: r.environment.clone(),
            deployments: r.deployments,
            per_week: format!("{:.1}", r.deployments_per_week),
            lead_median: hours(r.lead_time_median_hours),
            lead_p90: hours(r.lead_time_p90_hours),
            failure_rate: r.change_failure_rate.map(|x| format!("{:.0} %", x * 100.0)).unwrap_or_else(|| "—".into()),
            restore_median: hours(r.time_to_restore_median_hours),
            chart: weekly_bars(&r.weekly),
        })
        .collect();
    let page = InsightsPage {
        chrome: Chrome::new(&user, &session, "Delivery insights", "/insights"),
        choices: Choices::load(&mut conn, user.account_id).await?,
        period: format!("{} – {}", local(Some(found.from), &user.time_zone), local(Some(found.to), &user.time_zone)),
        rows,
        csv: csv_link("/insights", &query),
        query: query.into_inner(),
    };
    render(&page)
}
