//! Delivery insights (DORA, DESIGN §8), computed per service and production environment from
//! deployments and release outcomes. Pure: the caller loads the rows.

use std::collections::BTreeMap;

use chrono::{DateTime, TimeDelta, Utc};
use serde_json::Value;

/// One deployment to a production environment.
#[derive(Debug, Clone)]
pub struct Deployed {
    pub service: String,
    pub environment: String,
    pub release_id: Option<i64>,
    pub at: DateTime<Utc>,
    /// Where the lead time starts: the earliest recorded commit time, else the release's creation.
    pub change_started: Option<DateTime<Utc>>,
}

/// A release that counts for the change failure rate.
#[derive(Debug, Clone)]
pub struct ProductionRelease {
    pub id: i64,
    /// Ended Failed or RolledBack.
    pub failed: bool,
    pub finished_at: Option<DateTime<Utc>>,
    /// Only the production environments it targets.
    pub environments: Vec<String>,
    pub services: Vec<String>,
    /// Creation of the first release marked `hotfix_for` this one.
    pub hotfix_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub service: String,
    pub environment: String,
    pub deployments: usize,
    pub deployments_per_week: f64,
    /// Deployments in each 7-day bucket from the period's start (the last may be shorter).
    pub weekly: Vec<usize>,
    pub lead_time_median_hours: Option<f64>,
    pub lead_time_p90_hours: Option<f64>,
    pub change_failure_rate: Option<f64>,
    pub time_to_restore_median_hours: Option<f64>,
}

/// A hotfix this soon after a release marks it as a failed change.
pub const HOTFIX_WINDOW: TimeDelta = TimeDelta::days(7);

/// The `q` quantile (0..=1) by linear interpolation between the closest ranks (the median of an
/// even count is the mean of the middle two).
pub fn quantile(values: &[f64], q: f64) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let rank = q.clamp(0.0, 1.0) * (sorted.len() - 1) as f64;
    let (low, high) = (rank.floor() as usize, rank.ceil() as usize);
    Some(sorted[low] + (sorted[high] - sorted[low]) * (rank - low as f64))
}

fn hours(d: TimeDelta) -> f64 {
    d.num_seconds() as f64 / 3600.0
}

/// The earliest `commit_time` (RFC 3339) anywhere in a release's recorded artifacts: under a
/// key ending in `commit_time`, or as a `commit_time` field of a recorded object or list.
pub fn earliest_commit_time(artifacts: &Value) -> Option<DateTime<Utc>> {
    fn walk(key: &str, v: &Value, found: &mut Option<DateTime<Utc>>) {
        match v {
            Value::String(s) if key.ends_with("commit_time") => {
                if let Ok(t) = DateTime::parse_from_rfc3339(s.trim()) {
                    let t = t.with_timezone(&Utc);
                    *found = Some(found.map_or(t, |f| f.min(t)));
                }
            }
            Value::Object(map) => map.iter().for_each(|(k, v)| walk(k, v, found)),
            Value::Array(items) => items.iter().for_each(|v| walk(key, v, found)),
            _ => {}
        }
    }
    let mut found = None;
    walk("", artifacts, &mut found);
    found
}

/// One row per (service, environment) with a deployment or a failed change in [from, to).
/// `deployments` may run past `to`: later ones only end a restore.
pub fn compute(deployments: &[Deployed], releases: &[ProductionRelease], from: DateTime<Utc>, to: DateTime<Utc>) -> Vec<Row> {
    let weeks = hours(to - from) / (24.0 * 7.0);
    let in_period = |t: DateTime<Utc>| t >= from && t < to;
    let mut cells: BTreeMap<(String, String), Vec<&Deployed>> = BTreeMap::new();
    for d in deployments {
        cells.entry((d.service.clone(), d.environment.clone())).or_default().push(d);
    }
    for r in releases.iter().filter(|r| r.failed && r.finished_at.is_some_and(in_period)) {
        for s in &r.services {
            for e in &r.environments {
                cells.entry((s.clone(), e.clone())).or_default();
            }
        }
    }
    let mut rows = Vec::new();
    for ((service, environment), mut cell) in cells {
        cell.sort_by_key(|d| d.at);
        let counted: Vec<&&Deployed> = cell.iter().filter(|d| in_period(d.at)).collect();
        let lead: Vec<f64> = counted.iter().filter_map(|d| d.change_started.map(|s| hours(d.at - s))).collect();
        // The releases of this cell: deployed here in the period, or failed while targeting it.
        let mut cell_releases: Vec<&ProductionRelease> = releases
            .iter()
            .filter(|r| {
                counted.iter().any(|d| d.release_id == Some(r.id))
                    || (r.failed
                        && r.finished_at.is_some_and(in_period)
                        && r.services.contains(&service)
                        && r.environments.contains(&environment))
            })
            .collect();
        cell_releases.dedup_by_key(|r| r.id);
        let failure_time = |r: &ProductionRelease| -> Option<DateTime<Utc>> {
            let ended = r.finished_at.or_else(|| cell.iter().filter(|d| d.release_id == Some(r.id)).map(|d| d.at).max())?;
            if r.failed || r.hotfix_at.is_some_and(|h| h >= ended - TimeDelta::seconds(1) && h - ended <= HOTFIX_WINDOW) {
                Some(ended)
            } else {
                None
            }
        };
        let failures: Vec<DateTime<Utc>> = cell_releases.iter().filter_map(|r| failure_time(r)).collect();
        if counted.is_empty() && failures.is_empty() {
            continue;
        }
        let restores: Vec<f64> = failures.iter().filter_map(|f| cell.iter().find(|d| d.at > *f).map(|d| hours(d.at - *f))).collect();
        let buckets = ((to - from).num_seconds() as f64 / (7.0 * 86_400.0)).ceil().max(1.0) as usize;
        let mut weekly = vec![0; buckets];
        for d in &counted {
            let index = ((d.at - from).num_seconds() / (7 * 86_400)) as usize;
            if let Some(slot) = weekly.get_mut(index) {
                *slot += 1;
            }
        }
        rows.push(Row {
            weekly,
            service,
            environment,
            deployments: counted.len(),
            deployments_per_week: if weeks > 0.0 { counted.len() as f64 / weeks } else { 0.0 },
            lead_time_median_hours: quantile(&lead, 0.5),
            lead_time_p90_hours: quantile(&lead, 0.9),
            change_failure_rate: (!cell_releases.is_empty()).then(|| failures.len() as f64 / cell_releases.len() as f64),
            time_to_restore_median_hours: quantile(&restores, 0.5),
        });
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn t(day: i64, hour: i64) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-06-01T00:00:00Z").unwrap().with_timezone(&Utc) + TimeDelta::days(day) + TimeDelta::hours(hour)
    }

    fn dep(release: i64, at: DateTime<Utc>, started: DateTime<Utc>) -> Deployed {
        Deployed { service: "api".into(), environment: "PROD".into(), release_id: Some(release), at, change_started: Some(started) }
    }

    fn rel(id: i64, failed: bool, finished: DateTime<Utc>, hotfix_at: Option<DateTime<Utc>>) -> ProductionRelease {
        ProductionRelease {
            id,
            failed,
            finished_at: Some(finished),
            environments: vec!["PROD".into()],
            services: vec!["api".into()],
            hotfix_at,
        }
    }

    #[test]
    fn quantiles_interpolate() {
        assert_eq!(quantile(&[], 0.5), None);
        assert_eq!(quantile(&[4.0], 0.9), Some(4.0));
        assert_eq!(quantile(&[1.0, 3.0], 0.5), Some(2.0));
        assert_eq!(quantile(&[10.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0], 0.9), Some(9.1));
    }

    #[test]
    fn commit_times_are_found_anywhere_in_the_artifacts() {
        let artifacts = json!({
            "build.compile.commit_time": "2026-06-01T10:00:00Z",
            "build.compile.commits": [{"sha": "a", "commit_time": "2026-05-31T09:00:00+02:00"}],
            "test.report": "https://ci/1"
        });
        assert_eq!(earliest_commit_time(&artifacts), Some(t(-1, 7)));
        assert_eq!(earliest_commit_time(&json!({})), None);
    }

    #[test]
    fn four_metrics_on_a_known_history() {
        // Two weeks. Release 1 deploys on day 1 (started 10 h before), release 2 fails on day 3,
        // release 3 deploys on day 4 (restoring after 24 h), release 4 deploys on day 8 and gets a
        // hotfix (release 5) two days later, which deploys on day 10 at noon.
        let deployments = vec![dep(1, t(1, 0), t(0, 14)), dep(3, t(4, 0), t(3, 0)), dep(4, t(8, 0), t(7, 20)), dep(5, t(10, 12), t(10, 0))];
        let releases = vec![
            rel(1, false, t(1, 1), None),
            rel(2, true, t(3, 0), None),
            rel(3, false, t(4, 1), None),
            rel(4, false, t(8, 0), Some(t(10, 0))),
            rel(5, false, t(10, 13), None),
        ];
        let rows = compute(&deployments, &releases, t(0, 0), t(14, 0));
        assert_eq!(rows.len(), 1);
        let row = &rows[0];
        assert_eq!(row.deployments, 4);
        assert_eq!(row.deployments_per_week, 2.0);
        assert_eq!(row.weekly, vec![2, 2]);
        // Lead times 10, 24, 4, 12 h: median 11, p90 = 12 + 0.7 × 12 = 20.4.
        assert_eq!(row.lead_time_median_hours, Some(11.0));
        assert!((row.lead_time_p90_hours.unwrap() - 20.4).abs() < 1e-9);
        // Releases 2 (failed) and 4 (hotfixed) of five.
        assert_eq!(row.change_failure_rate, Some(0.4));
        // Restores: 2 → release 3 on day 4 (24 h); 4 → release 5 on day 10 at noon (60 h). Median 42 h.
        assert_eq!(row.time_to_restore_median_hours, Some(42.0));
    }

    #[test]
    fn a_quiet_cell_has_no_row_and_rates_need_releases() {
        assert!(compute(&[], &[], t(0, 0), t(7, 0)).is_empty());
        let only_later = vec![dep(1, t(20, 0), t(19, 0))];
        assert!(compute(&only_later, &[], t(0, 0), t(7, 0)).is_empty());
    }
}
