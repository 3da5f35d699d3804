//! `/healthz` (database reachable) and `/metrics` (Prometheus text).

use actix_web::{web, HttpResponse};
use std::collections::BTreeMap;
use std::sync::Mutex;

use super::AppState;

#[derive(Debug, Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(String, String, u16), u64>>,
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
