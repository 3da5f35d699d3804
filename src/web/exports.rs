//! The CSV shape of each report and of the audit trail; pages and the API answer `format=csv`
//! with the same files.

use actix_web::HttpResponse;
use chrono::SecondsFormat;

use crate::db::audit::AuditEvent;
use crate::db::reports::DeploymentRow;
use crate::ops::reports::{Insights, ReleaseReportRow};
use crate::web::download::{csv_bytes, csv_download, csv_stream};
use crate::web::error::AppError;

/// Whether the query asked for CSV; anything but `csv` or `json` is refused, naming the field.
pub fn wants_csv(format: &Option<String>) -> Result<bool, AppError> {
    match format.as_deref().map(str::trim) {
        None | Some("") | Some("json") | Some("html") => Ok(false),
        Some("csv") => Ok(true),
        Some(other) => Err(AppError::bad_request("format", format!("{other:?} is not a format: use csv or json"))),
    }
}

fn time(t: chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn opt_number(v: Option<f64>) -> String {
    v.map(|x| format!("{x:.2}")).unwrap_or_default()
}

pub fn deployments_csv(name: &str, rows: &[DeploymentRow]) -> HttpResponse {
    let header = vec!["service", "environment", "version", "release_id", "release_name", "deployed_at"].into_iter().map(String::from);
    let body = std::iter::once(header.collect::<Vec<_>>()).chain(rows.iter().map(|d| {
        vec![
            d.service.clone(),
            d.environment.clone(),
            d.version.clone(),
            d.release_id.map(|id| id.to_string()).unwrap_or_default(),
            d.release_name.clone(),
            time(d.deployed_at),
        ]
    }));
    csv_download(name, csv_bytes(body))
}

pub fn releases_csv(rows: &[ReleaseReportRow]) -> HttpResponse {
    let header = [
        "id",
        "name",
        "type",
        "org",
        "state",
        "status",
        "owner",
        "started_at",
        "finished_at",
        "duration_seconds",
        "approvals",
        "failure_reasons",
    ];
    let body = std::iter::once(header.iter().map(|h| h.to_string()).collect::<Vec<_>>()).chain(rows.iter().map(|row| {
        let r = &row.release;
        let approvals: Vec<String> = row
            .approvals
            .iter()
            .map(|a| {
                let behalf = a.on_behalf_of.as_ref().map(|o| format!(" for {o}")).unwrap_or_default();
                format!("{}.{} {} by {}{} at {}", a.phase, a.activity, a.decision, a.approver, behalf, time(a.at))
            })
            .collect();
        vec![
            r.id.to_string(),
            r.name.clone(),
            r.release_type.to_string(),
            r.org.clone().unwrap_or_default(),
            r.state.to_string(),
            r.status.to_string(),
            r.owner.clone().unwrap_or_default(),
            r.started_at.map(time).unwrap_or_default(),
            r.finished_at.map(time).unwrap_or_default(),
            row.duration_seconds.map(|s| s.to_string()).unwrap_or_default(),
            approvals.join("; "),
            row.failure_reasons.join("; "),
        ]
    }));
    csv_download("releases", csv_bytes(body))
}

pub fn insights_csv(insights: &Insights) -> HttpResponse {
    let header = [
        "service",
        "environment",
        "deployments",
        "deployments_per_week",
        "lead_time_median_hours",
        "lead_time_p90_hours",
        "change_failure_rate",
        "time_to_restore_median_hours",
    ];
    let body = std::iter::once(header.iter().map(|h| h.to_string()).collect::<Vec<_>>()).chain(insights.rows.iter().map(|r| {
        vec![
            r.service.clone(),
            r.environment.clone(),
            r.deployments.to_string(),
            format!("{:.2}", r.deployments_per_week),
            opt_number(r.lead_time_median_hours),
            opt_number(r.lead_time_p90_hours),
            r.change_failure_rate.map(|x| format!("{x:.4}")).unwrap_or_default(),
            opt_number(r.time_to_restore_median_hours),
        ]
    }));
    csv_download("insights", csv_bytes(body))
}

pub const AUDIT_HEADER: [&str; 10] = ["id", "chain", "seq", "at", "actor", "action", "subject", "release_id", "reason", "details"];

pub fn audit_rows(events: &[AuditEvent]) -> Vec<u8> {
    csv_bytes(events.iter().map(|e| {
        vec![
            e.id.to_string(),
            e.chain.clone(),
            e.seq.to_string(),
            e.at.to_rfc3339_opts(SecondsFormat::Micros, true),
            e.actor.clone(),
            e.action.clone(),
            e.subject.clone(),
            e.release_id.map(|id| id.to_string()).unwrap_or_default(),
            e.reason.clone().unwrap_or_default(),
            e.details.to_string(),
        ]
    }))
}

/// The audit export, streamed batch by batch.
pub fn audit_csv<S>(name: &str, batches: S) -> HttpResponse
where
    S: futures_util::Stream<Item = Result<Vec<AuditEvent>, crate::ops::OpError>> + 'static,
{
    use futures_util::StreamExt;
    csv_stream(name, &AUDIT_HEADER, batches.map(|batch| batch.map(|events| audit_rows(&events))))
}
