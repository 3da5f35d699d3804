//! `/healthz` (database reachable) and `/metrics` (Prometheus text).

use actix_web::{web, HttpResponse};
use std::collections::BTreeMap;
use std::sync::Mutex;

use super::AppState;

/// Upper bounds (seconds) of the request duration histogram's buckets.
const BUCKETS: [f64; 11] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

#[derive(Debug, Default, Clone)]
struct Histogram {
    /// Cumulative counts per bucket of `BUCKETS`, then +Inf.
    counts: [u64; 12],
    sum: f64,
}

#[derive(Debug, Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(String, String, u16), u64>>,
    /// By route pattern (a fixed set: unmatched paths count as `unmatched`).
    durations: Mutex<BTreeMap<String, Histogram>>,
}

impl Metrics {
    /// Methods outside the standard set count as `other`, so random methods cannot grow the map.
    pub fn record(&self, method: &str, route: &str, status: u16) {
        let method = match method {
            "GET" | "HEAD" | "POST" | "PUT" | "PATCH" | "DELETE" | "OPTIONS" => method,
            _ => "other",
        };
        let mut map = self.requests.lock().unwrap_or_else(|e| e.into_inner());
        *map.entry((method.to_string(), route.to_string(), status)).or_insert(0) += 1;
    }

    pub fn observe(&self, route: &str, seconds: f64) {
        let mut map = self.durations.lock().unwrap_or_else(|e| e.into_inner());
        // Routes are a fixed set: allocate the key only the first time one is seen.
        if !map.contains_key(route) {
            map.insert(route.to_string(), Histogram::default());
        }
        let Some(h) = map.get_mut(route) else { return };
        for (i, bound) in BUCKETS.iter().enumerate() {
            if seconds <= *bound {
                h.counts[i] += 1;
            }
        }
        h.counts[BUCKETS.len()] += 1;
        h.sum += seconds;
    }

    fn durations(&self) -> Vec<(String, Histogram)> {
        self.durations.lock().unwrap_or_else(|e| e.into_inner()).iter().map(|(k, v)| (k.clone(), v.clone())).collect()
    }

    pub fn snapshot(&self) -> Vec<((String, String, u16), u64)> {
        self.requests.lock().unwrap_or_else(|e| e.into_inner()).iter().map(|(k, v)| (k.clone(), *v)).collect()
    }
}

pub async fn healthz(state: web::Data<AppState>) -> HttpResponse {
    let ok = match state.pool.get().await {
        Ok(mut conn) => crate::db::ping(&mut conn).await.is_ok(),
        Err(_) => false,
    };
    if ok {
        HttpResponse::Ok().content_type("text/plain; charset=utf-8").body("ok\n")
    } else {
        HttpResponse::ServiceUnavailable().content_type("text/plain; charset=utf-8").body("database unavailable\n")
    }
}

fn escape_label(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

pub async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    let mut out = String::new();
    out.push_str("# HELP railyard_http_requests_total HTTP requests by method, route and status.\n");
    out.push_str("# TYPE railyard_http_requests_total counter\n");
    for ((method, route, status), count) in state.metrics.snapshot() {
        out.push_str(&format!(
            "railyard_http_requests_total{{method=\"{}\",route=\"{}\",status=\"{status}\"}} {count}\n",
            escape_label(&method),
            escape_label(&route)
        ));
    }
    out.push_str("# HELP railyard_http_request_duration_seconds Time to answer, by route.\n");
    out.push_str("# TYPE railyard_http_request_duration_seconds histogram\n");
    for (route, h) in state.metrics.durations() {
        let route = escape_label(&route);
        for (i, bound) in BUCKETS.iter().enumerate() {
            out.push_str(&format!("railyard_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"{bound}\"}} {}\n", h.counts[i]));
        }
        let total = h.counts[BUCKETS.len()];
        out.push_str(&format!("railyard_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"+Inf\"}} {total}\n"));
        out.push_str(&format!("railyard_http_request_duration_seconds_sum{{route=\"{route}\"}} {}\n", h.sum));
        out.push_str(&format!("railyard_http_request_duration_seconds_count{{route=\"{route}\"}} {total}\n"));
    }
    let gauges = match state.pool.get().await {
        Ok(mut conn) => crate::db::gauges::read(&mut conn, state.now()).await.ok(),
        Err(_) => None,
    };
    if let Some(g) = gauges {
        for (name, help, value) in [
            ("railyard_engine_queue_depth", "Active releases whose next evaluation is due.", g.engine_queue as f64),
            ("railyard_releases_due_not_started", "Scheduled releases past their start that have not started.", g.due_not_started as f64),
            ("railyard_releases_due_lag_seconds", "How long the oldest due-but-not-started release has waited.", g.due_lag_seconds),
            ("railyard_webhook_attempts_queued", "Webhook attempts waiting to be sent.", g.webhooks_queued as f64),
            (
                "railyard_webhook_attempts_in_flight",
                "Webhook attempts being sent or waiting for their callback.",
                g.webhooks_in_flight as f64,
            ),
            ("railyard_webhook_attempts_failed", "Webhook attempts that failed (kept for their history).", g.webhooks_failed as f64),
            ("railyard_notification_outbox_backlog", "Notifications not yet delivered.", g.outbox_backlog as f64),
            (
                "railyard_releases_set_aside",
                "Releases the engine set aside after repeated errors (OnHold, hold engine_error).",
                g.releases_set_aside as f64,
            ),
        ] {
            out.push_str(&format!("# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}\n"));
        }
    }
    let status = state.pool.status();
    out.push_str("# HELP railyard_db_pool_connections Database pool connections by state.\n");
    out.push_str("# TYPE railyard_db_pool_connections gauge\n");
    out.push_str(&format!("railyard_db_pool_connections{{state=\"open\"}} {}\n", status.size));
    out.push_str(&format!("railyard_db_pool_connections{{state=\"idle\"}} {}\n", status.available));
    out.push_str(&format!("railyard_db_pool_connections{{state=\"in_use\"}} {}\n", status.size.saturating_sub(status.available)));
    out.push_str(&format!("railyard_db_pool_connections{{state=\"max\"}} {}\n", status.max_size));
    out.push_str(&format!("railyard_db_pool_waiting {}\n", status.waiting));
    HttpResponse::Ok().content_type("text/plain; version=0.0.4; charset=utf-8").body(out)
}
