//! The release page's pipeline: the phase graph and the window's timeline (laid out by
//! `domain::pipeline`), and the list of webhook attempts for debugging an integration.

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::db::models::releases::{ReleaseActivity, ReleasePhase};
use crate::db::release_page::AttemptRow;
use crate::domain::pipeline::{self, Bar, PhaseGraph, PhaseShape};
use crate::ops::processes::MASK;

use super::local;

pub struct Timeline {
    pub from: String,
    pub to: String,
    pub bars: Vec<Bar>,
}

pub fn shapes(phases: &[ReleasePhase]) -> Vec<PhaseShape> {
    phases
        .iter()
        .map(|p| PhaseShape {
            key: p.key.clone(),
            name: p.name.clone(),
            status: p.status.as_str().to_owned(),
            depends_on: p.depends_on.clone(),
            started_at: p.started_at,
            finished_at: p.finished_at,
        })
        .collect()
}

pub fn graph(phases: &[PhaseShape]) -> PhaseGraph {
    pipeline::phase_graph(phases)
}

pub fn timeline(
    schedule: (Option<DateTime<Utc>>, Option<DateTime<Utc>>),
    phases: &[PhaseShape],
    now: DateTime<Utc>,
    zone: &str,
) -> Option<Timeline> {
    let window = pipeline::window(schedule, phases, now)?;
    Some(Timeline { from: local(Some(window.0), zone), to: local(Some(window.1), zone), bars: pipeline::timeline(window, phases, now) })
}

pub struct AttemptView {
    pub activity: String,
    pub attempt: i32,
    pub state: String,
    pub when: String,
    pub method: String,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: String,
    pub status: String,
    pub response: String,
    pub duration: String,
    pub error: String,
}

/// Header values that carry credentials are masked even when the process wrote them literally;
/// secret inputs are masked already in the recorded request.
fn shown_header(name: &str, value: &str) -> String {
    let lower = name.to_ascii_lowercase();
    let sensitive = matches!(lower.as_str(), "authorization" | "proxy-authorization" | "cookie")
        || ["token", "secret", "password", "api-key", "apikey"].iter().any(|w| lower.contains(w));
    if !sensitive {
        return value.to_string();
    }
    match value.split_once(' ') {
        // Keep the scheme (`Bearer`, `Basic`): it helps debugging and reveals nothing.
        Some((scheme, _)) if scheme.chars().all(|c| c.is_ascii_alphabetic()) => format!("{scheme} {MASK}"),
        _ => MASK.to_string(),
    }
}

pub fn attempts(rows: &[AttemptRow], zone: &str) -> Vec<AttemptView> {
    rows.iter()
        .map(|a| {
            let request = a.request.as_ref();
            let text = |k: &str| request.and_then(|r| r.get(k)).and_then(Value::as_str).unwrap_or_default().to_string();
            let headers = request
                .and_then(|r| r.get("headers"))
                .and_then(Value::as_array)
                .map(|hs| {
                    hs.iter()
                        .filter_map(|h| Some((h.get(0)?.as_str()?.to_string(), h.get(1)?.as_str()?.to_string())))
                        .map(|(k, v)| {
                            let shown = shown_header(&k, &v);
                            (k, shown)
                        })
                        .collect()
                })
                .unwrap_or_default();
            AttemptView {
                activity: format!("{}.{}", a.phase, a.activity),
                attempt: a.attempt,
                state: a.state.clone(),
                when: local(Some(a.sent_at.unwrap_or(a.due_at)), zone),
                method: text("method"),
                url: text("url"),
                headers,
                body: request
                    .and_then(|r| r.get("body"))
                    .filter(|b| !b.is_null())
                    .map(|b| serde_json::to_string_pretty(b).unwrap_or_default())
                    .unwrap_or_default(),
                status: a.status.map(|s| s.to_string()).unwrap_or_default(),
                response: a.body.clone().unwrap_or_default(),
                duration: a.duration_ms.map(|ms| format!("{ms} ms")).unwrap_or_default(),
                error: a.error.clone().unwrap_or_default(),
            }
        })
        .collect()
}

/// Activities whose failure waits for a decision this viewer may take (retry is offered there).
pub fn retryable(activities: &[ReleaseActivity], allowed: impl Fn(&ReleaseActivity) -> bool) -> Vec<(String, String)> {
    activities
        .iter()
        .filter(|a| a.kind == crate::domain::process::definition::ActivityKind::Webhook && allowed(a))
        .map(|a| (a.phase_key.clone(), a.key.clone()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::shown_header;

    #[test]
    fn credentials_in_headers_are_masked_whatever_wrote_them() {
        assert_eq!(shown_header("Authorization", "Bearer abc123"), "Bearer ********");
        assert_eq!(shown_header("X-Api-Key", "abc123"), "********");
        assert_eq!(shown_header("Content-Type", "application/json"), "application/json");
    }
}
