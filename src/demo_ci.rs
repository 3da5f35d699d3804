//! `railyard demo-ci`: a simulated CI/CD system for the demo, so that a demo release runs end to
//! end with no network. It takes build, test, smoke and deploy requests as a real CI would:
//! with a `Railyard-Callback-Url` it answers 202 at once and reports later through the callback;
//! without one it answers when the job is done. Jobs fail deterministically for a version ending
//! in `-broken` (tests also for `-flaky`, production deploys for `-baddeploy`), so the demo's failures are reproducible.

use std::time::Duration;

use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use serde_json::{json, Map, Value};

pub const DEFAULT_ADDRESS: &str = "127.0.0.1:8081";

/// What a job does: how long it takes and what it reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Job {
    Build,
    Test,
    Smoke,
    Deploy,
}

impl Job {
    fn parse(path: &str) -> Option<Job> {
        match path {
            "build" => Some(Job::Build),
            "test" => Some(Job::Test),
            "smoke" => Some(Job::Smoke),
            "deploy" => Some(Job::Deploy),
            _ => None,
        }
    }

    fn seconds(self) -> u64 {
        match self {
            Job::Build => 6,
            Job::Test => 4,
            Job::Smoke => 2,
            Job::Deploy => 3,
        }
    }
}

fn text(body: &Value, key: &str) -> String {
    match &body[key] {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// A stable pseudo commit for a version, so the same version always names the same commit.
fn commit_of(version: &str) -> String {
    crate::security::sha256_hex(version)[..12].to_string()
}

/// The job's result: `Ok(outputs)` or `Err(reason)`. Pure, so the demo's history and the live
/// CI agree on what each version does.
pub fn outcome(job: Job, body: &Value, number: u64) -> Result<Map<String, Value>, String> {
    let version = text(body, "version");
    let service = [text(body, "service"), text(body, "services")].into_iter().find(|s| !s.is_empty()).unwrap_or_default();
    let broken = version.ends_with("-broken");
    let out = |v: Value| v.as_object().cloned().unwrap_or_default();
    match job {
        Job::Build if broken => Err(format!("build #{number} failed: compilation error in {version} (src/ledger/posting.rs:88)")),
        Job::Build => Ok(out(json!({
            "artifact_url": format!("http://demo-ci.invalid/artifacts/{version}/build-{number}.tar.gz"),
            "commit": commit_of(&version),
            "build_number": number,
        }))),
        Job::Test if broken || version.ends_with("-flaky") => Err(format!("test run #{number}: 3 of 412 tests failed")),
        Job::Test => Ok(out(json!({
            "test_report": format!("http://demo-ci.invalid/reports/{version}/tests-{number}.html"),
            "tests_passed": 412,
        }))),
        Job::Smoke if broken => Err(format!("smoke test of {service} {version} failed: /healthz answered 503")),
        Job::Smoke => Ok(out(json!({"smoke_report": format!("http://demo-ci.invalid/reports/{version}/smoke-{number}.html")}))),
        Job::Deploy if broken || (version.ends_with("-baddeploy") && text(body, "environment").starts_with("PROD")) => {
            Err(format!("deploy of {service} {version} to {} failed: readiness probe timed out", text(body, "environment")))
        }
        Job::Deploy => Ok(out(json!({"deployment_id": format!("dep-{number}"), "environment": text(body, "environment")}))),
    }
}

struct State {
    client: reqwest::Client,
    counter: std::sync::atomic::AtomicU64,
    speed: f64,
    /// Railyard's base URL: the only place a callback goes (DESIGN §10).
    base_url: String,
}

/// Whether `url` is a callback of the Railyard at `base_url`: same scheme, host and port, and
/// the path `<base path>/api/v1/callbacks/<token>`. Anything else is refused, so a release of any
/// account cannot make the demo CI send requests elsewhere.
pub fn is_callback_of(base_url: &str, url: &str) -> bool {
    let (Ok(base), Ok(target)) = (reqwest::Url::parse(base_url), reqwest::Url::parse(url)) else { return false };
    let same_origin = base.scheme() == target.scheme()
        && base.host_str() == target.host_str()
        && base.port_or_known_default() == target.port_or_known_default();
    let prefix = format!("{}/api/v1/callbacks/", base.path().trim_end_matches('/'));
    let token = target.path().strip_prefix(&prefix).unwrap_or("");
    same_origin
        && target.username().is_empty()
        && target.password().is_none()
        && target.query().is_none()
        && target.fragment().is_none()
        && !token.is_empty()
        && token.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

async fn job(state: web::Data<State>, req: HttpRequest, path: web::Path<String>, body: web::Bytes) -> HttpResponse {
    let Some(job) = Job::parse(&path) else {
        return HttpResponse::NotFound().json(json!({"error": format!("no such job {path:?}: build, test, smoke or deploy")}));
    };
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let number = state.counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
    let result = outcome(job, &body, number);
    let delay = Duration::from_secs_f64(job.seconds() as f64 * state.speed);
    let callback = req.headers().get("Railyard-Callback-Url").and_then(|v| v.to_str().ok()).map(str::to_string);
    tracing::info!(?job, number, callback = callback.is_some(), ok = result.is_ok(), "demo CI job");
    match callback {
        Some(url) if !is_callback_of(&state.base_url, &url) => {
            tracing::warn!(number, "demo CI refused a callback address that is not Railyard's callback path");
            HttpResponse::BadRequest().json(json!({"error": "Railyard-Callback-Url must be <RAILYARD_BASE_URL>/api/v1/callbacks/<token>"}))
        }
        Some(url) => {
            let client = state.client.clone();
            tokio::spawn(async move {
                tokio::time::sleep(delay).await;
                let report = match result {
                    Ok(outputs) => json!({"status": "success", "outputs": outputs}),
                    Err(reason) => json!({"status": "failure", "outputs": {"reason": reason}}),
                };
                if let Err(e) = client.post(&url).json(&report).send().await {
                    tracing::warn!(error = ?e, "demo CI could not call back");
                }
            });
            HttpResponse::Accepted().json(json!({"accepted": true, "job": number}))
        }
        None => {
            tokio::time::sleep(delay).await;
            match result {
                Ok(outputs) => HttpResponse::Ok().json(outputs),
                Err(reason) => HttpResponse::InternalServerError().json(json!({"error": reason})),
            }
        }
    }
}

/// Serves until stopped; `speed` scales every job's duration (1.0 = as listed above); callbacks
/// go only to `base_url`'s callback path, and redirects are never followed.
pub async fn serve(address: &str, speed: f64, base_url: &str) -> anyhow::Result<()> {
    let client = reqwest::Client::builder().timeout(Duration::from_secs(30)).redirect(reqwest::redirect::Policy::none()).build()?;
    let state = web::Data::new(State {
        client,
        counter: std::sync::atomic::AtomicU64::new(0),
        speed,
        base_url: base_url.trim_end_matches('/').to_string(),
    });
    eprintln!("Railyard demo CI listening on http://{address} (build, test, smoke, deploy)");
    HttpServer::new(move || {
        App::new()
            .app_data(state.clone())
            .route("/healthz", web::get().to(|| async { HttpResponse::Ok().body("ok") }))
            .route("/{job}", web::post().to(job))
    })
    .workers(1)
    .bind(address)?
    .run()
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broken_versions_fail_and_others_pass_deterministically() {
        let ok = json!({"version": "2.4.0", "services": ["ledger"]});
        let broken = json!({"version": "2.4.1-broken"});
        assert!(outcome(Job::Build, &ok, 1).unwrap()["commit"] == outcome(Job::Build, &ok, 2).unwrap()["commit"]);
        assert!(outcome(Job::Build, &broken, 1).unwrap_err().contains("compilation error"));
        assert!(outcome(Job::Deploy, &json!({"version": "1.0-baddeploy", "environment": "PROD1"}), 1).unwrap_err().contains("PROD1"));
        assert!(outcome(Job::Test, &ok, 3).is_ok());
    }

    #[test]
    fn callbacks_go_only_to_railyard_s_callback_path() {
        let base = "http://127.0.0.1:8080";
        assert!(is_callback_of(base, "http://127.0.0.1:8080/api/v1/callbacks/abc_DEF-123"));
        for other in [
            "http://127.0.0.1:8080/api/v1/releases",
            "http://127.0.0.1:8080/api/v1/callbacks/",
            "http://127.0.0.1:8080/api/v1/callbacks/abc/../../admin",
            "http://127.0.0.1:8080/api/v1/callbacks/abc?x=1",
            "http://127.0.0.1:9999/api/v1/callbacks/abc",
            "http://169.254.169.254/api/v1/callbacks/abc",
            "https://127.0.0.1:8080/api/v1/callbacks/abc",
            "http://user:pw@127.0.0.1:8080/api/v1/callbacks/abc",
            "not a url",
        ] {
            assert!(!is_callback_of(base, other), "{other}");
        }
        assert!(is_callback_of("https://rel.example.com/railyard/", "https://rel.example.com/railyard/api/v1/callbacks/t0k"));
    }
}
