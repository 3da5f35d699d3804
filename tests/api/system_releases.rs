//! System releases (DESIGN §2, §3, §8): a manifest of services and versions, an activity fanned
//! out over it, deploy locks between releases, and the release board — against a real receiver.

use crate::common::TestApp;
use crate::engine::{act, activity, body, get, world, World};
use crate::webhooks::{admin_token, allow};
use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// A deploy service that takes a moment per request and remembers how many ran at once.
#[derive(Clone, Default)]
struct SlowDeployer {
    received: Arc<Mutex<Vec<(String, Value)>>>,
    in_flight: Arc<AtomicUsize>,
    most_at_once: Arc<AtomicUsize>,
    /// Services whose deploy answers 500.
    failing: Arc<Mutex<Vec<String>>>,
    port: u16,
}

impl SlowDeployer {
    async fn start() -> SlowDeployer {
        let mut d = SlowDeployer::default();
        let shared = d.clone();
        let server = HttpServer::new(move || {
            let state = shared.clone();
            App::new().app_data(web::Data::new(state)).default_service(web::to(
                |req: HttpRequest, body: web::Bytes, state: web::Data<SlowDeployer>| async move {
                    let now = state.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
                    state.most_at_once.fetch_max(now, Ordering::SeqCst);
                    let key = req.headers().get("Idempotency-Key").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
                    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                    state.received.lock().unwrap().push((key, body.clone()));
                    tokio::time::sleep(std::time::Duration::from_millis(60)).await;
                    state.in_flight.fetch_sub(1, Ordering::SeqCst);
                    let service = body["service"].as_str().unwrap_or_default().to_string();
                    if state.failing.lock().unwrap().contains(&service) {
                        HttpResponse::InternalServerError().json(json!({"error": "deploy failed"}))
                    } else {
                        HttpResponse::Ok().json(json!({"deployed": service}))
                    }
                },
            ))
        })
        .workers(2)
        .bind("127.0.0.1:0")
        .unwrap();
        d.port = server.addrs()[0].port();
        tokio::spawn(server.run());
        d
    }
}

pub const SERVICES: [&str; 12] = [
    "payment-service",
    "ledger",
    "identity-service",
    "notification-service",
    "search",
    "catalog",
    "checkout",
    "pricing",
    "inventory",
    "shipping",
    "reviews",
    "gateway",
];

/// The account's catalog: PROD1 (a production environment) and the twelve services.
pub async fn catalog(app: &TestApp) -> String {
    let admin = admin_token(app).await;
    assert_eq!(app.api_post(&admin, "/api/v1/environments", &json!({"name": "PROD1", "production": true})).await.status(), 201);
    for s in SERVICES {
        assert_eq!(app.api_post(&admin, "/api/v1/services", &json!({"name": s})).await.status(), 201);
    }
    admin
}

pub fn manifest(version_of: impl Fn(usize) -> String) -> Value {
    Value::Object(SERVICES.iter().enumerate().map(|(i, s)| (s.to_string(), json!(version_of(i)))).collect())
}

async fn fan_out_release(app: &TestApp, w: &World, d: &SlowDeployer) -> i64 {
    let yaml = format!(
        "name: Train\ninputs: [{{name: manifest, type: service_versions, required: true}}]\nphases:\n  - key: prod1\n    name: Prod1\n    activities:\n      - key: deploy\n        name: Deploy\n        kind: webhook\n        for_each: \"${{inputs.manifest}}\"\n        max_parallel: 4\n        config: {{url: \"http://127.0.0.1:{port}/deploy/${{item.service}}\", body: {{service: \"${{item.service}}\", version: \"${{item.version}}\"}}}}\n        deploys: {{service: \"${{item.service}}\", version: \"${{item.version}}\", environment: PROD1}}\n",
        port = d.port
    );
    crate::engine::start(app, w, &yaml, json!({"inputs": {"manifest": manifest(|i| format!("2.{i}.0"))}})).await
}

#[tokio::test]
async fn a_manifest_fans_out_one_request_per_service_never_more_than_max_parallel() {
    let app = TestApp::spawn().await;
    let w = world(&app, &[], &[]).await;
    catalog(&app).await;
    let d = SlowDeployer::start().await;
    allow(&app, &[format!("127.0.0.1:{}", d.port)]).await;
    let id = fan_out_release(&app, &w, &d).await;
    app.run_until_idle().await;

    let received = d.received.lock().unwrap().clone();
    assert_eq!(received.len(), 12, "exactly one request per service: {received:?}");
    for (i, s) in SERVICES.iter().enumerate() {
        let (key, body) = received.iter().find(|(_, b)| b["service"] == *s).unwrap_or_else(|| panic!("no request for {s}"));
        assert_eq!(body["version"], format!("2.{i}.0"));
        assert_eq!(key, &format!("{id}/prod1/deploy[{s}]/1"));
    }
    let most = d.most_at_once.load(Ordering::SeqCst);
    assert!((1..=4).contains(&most), "{most} requests at once");

    let r = get(&app, &w, id).await;
    assert_eq!(r["status"], "Success", "{r}");
    let deploy = activity(&r, "prod1", "deploy");
    let instances = deploy["instances"].as_array().unwrap();
    assert_eq!(instances.len(), 12);
    assert!(instances.iter().all(|i| i["status"] == "Success" && i["attempts"] == 1));
    assert_eq!(instances[0]["key"], format!("deploy[{}]", instances[0]["item"].as_str().unwrap()));
    assert_eq!(r["phases"][0]["activities"].as_array().unwrap().len(), 1, "instances are not activities of their own");

    let (_, cells) = body(app.api_get(&w.rm_token, "/api/v1/reports/deployed?environment=PROD1").await).await;
    let cells = cells["cells"].as_array().unwrap();
    assert_eq!(cells.len(), 12, "{cells:?}");
    for (i, s) in SERVICES.iter().enumerate() {
        let cell = cells.iter().find(|c| c["service"] == *s).unwrap();
        assert_eq!(cell["version"], format!("2.{i}.0"));
        assert_eq!(cell["release_id"], id);
    }
}

#[tokio::test]
async fn retrying_one_failed_instance_sends_only_its_request_again() {
    let app = TestApp::spawn().await;
    let w = world(&app, &[], &[]).await;
    catalog(&app).await;
    let d = SlowDeployer::start().await;
    d.failing.lock().unwrap().push("ledger".into());
    allow(&app, &[format!("127.0.0.1:{}", d.port)]).await;
    let id = fan_out_release(&app, &w, &d).await;
    app.run_until_idle().await;

    let r = get(&app, &w, id).await;
    assert_eq!(r["status"], "OnHold", "{r}");
    let deploy = activity(&r, "prod1", "deploy");
    assert_eq!(deploy["status"], "OnHold");
    let held: Vec<&Value> = deploy["instances"].as_array().unwrap().iter().filter(|i| i["status"] == "OnHold").collect();
    assert_eq!(held.len(), 1);
    assert_eq!(held[0]["item"], "ledger");
    assert_eq!(held[0]["hold"], "decision");
    assert_eq!(d.received.lock().unwrap().len(), 12);

    // Retry that instance only, by its key as one path segment.
    d.failing.lock().unwrap().clear();
    let (status, answer) =
        act(&app, &w.rm_token, id, "prod1", "deploy%5Bledger%5D", "retry", json!({"reason": "the registry is back"})).await;
    assert_eq!(status, 200, "{answer}");
    app.run_until_idle().await;
    let received = d.received.lock().unwrap().clone();
    assert_eq!(received.len(), 13, "only the retried instance is sent again");
    assert_eq!(received[12].0, format!("{id}/prod1/deploy[ledger]/2"));
    assert_eq!(received[12].1["service"], "ledger");
    let r = get(&app, &w, id).await;
    assert_eq!(r["status"], "Success", "{r}");

    // Each instance has its own audit events.
    let (_, audit) = body(app.api_get(&w.rm_token, &format!("/api/v1/releases/{id}/audit")).await).await;
    let retried = audit["events"].as_array().unwrap().iter().filter(|e| e["action"] == "activity.retry").count();
    assert_eq!(retried, 1);
    assert!(audit["events"].as_array().unwrap().iter().any(|e| e["subject"] == "activity:prod1.deploy[ledger]"));
}

const ROLL_OUT: &str = "name: Production roll-out
inputs: [{name: services, type: service_list, default: [payment-service]}]
phases:
  - key: rollout
    name: Production roll-out
    activities:
      - {key: deploy, name: Deploy, kind: manual, deploys: {service: \"${inputs.services}\", version: \"1.0\", environment: PROD1}}
      - {key: verify, name: Verify, kind: manual, depends_on: [deploy]}
";

async fn roll_out(app: &TestApp, w: &World, process_id: &Value, name: &str, extra: Value) -> i64 {
    let mut req = json!({"process_id": process_id, "name": name, "activate": true});
    for (k, v) in extra.as_object().unwrap() {
        req[k] = v.clone();
    }
    let (status, r) = body(app.api_post(&w.rm_token, "/api/v1/releases", &req).await).await;
    assert_eq!(status, 201, "{r}");
    app.run_until_idle().await;
    r["id"].as_i64().unwrap()
}

async fn locks(app: &TestApp, w: &World) -> Vec<Value> {
    let (status, l) = body(app.api_get(&w.rm_token, "/api/v1/locks").await).await;
    assert_eq!(status, 200, "{l}");
    l["locks"].as_array().unwrap().clone()
}

fn lock<'a>(locks: &'a [Value], service: &str) -> &'a Value {
    locks
        .iter()
        .find(|l| l["environment"] == "PROD1" && l["service"] == service)
        .unwrap_or_else(|| panic!("no lock on {service}: {locks:?}"))
}

fn queue(l: &Value) -> Vec<i64> {
    l["waiting"].as_array().unwrap().iter().map(|w| w["release_id"].as_i64().unwrap()).collect()
}

async fn finish_phase(app: &TestApp, w: &World, id: i64) {
    for key in ["deploy", "verify"] {
        let (status, r) = act(app, &w.rm_token, id, "rollout", key, "complete", json!({})).await;
        assert_eq!(status, 200, "{r}");
        app.run_until_idle().await;
    }
}

#[tokio::test]
async fn a_deploy_lock_queues_releases_hotfixes_first_and_all_or_nothing() {
    let app = TestApp::spawn().await;
    let w = world(&app, &[], &[]).await;
    catalog(&app).await;
    let (status, p) = body(app.api_post(&w.rm_token, "/api/v1/processes", &json!({"definition": ROLL_OUT})).await).await;
    assert_eq!(status, 201, "{p}");

    let a = roll_out(&app, &w, &p["id"], "Train 48", json!({})).await;
    let r = get(&app, &w, a).await;
    assert_eq!(activity(&r, "rollout", "deploy")["status"], "Running", "{r}");
    let l = locks(&app, &w).await;
    assert_eq!(lock(&l, "payment-service")["held_by"]["release_id"], a);

    let b = roll_out(&app, &w, &p["id"], "Train 49", json!({})).await;
    let r = get(&app, &w, b).await;
    let deploy = activity(&r, "rollout", "deploy");
    assert_eq!(deploy["status"], "Waiting", "{r}");
    assert_eq!(deploy["hold"], "deploy_lock");
    assert_eq!(r["status"], "Running", "a release waiting for a lock is running");
    assert!(
        r["status_reason"].as_str().unwrap_or_default().contains("\"Deploy\" waiting for PROD1 / payment-service"),
        "{}",
        r["status_reason"]
    );
    let reason = deploy["status_reason"].as_str().unwrap();
    assert!(reason.starts_with("waiting for PROD1 / payment-service: held by #"), "{reason}");
    assert!(reason.contains(&format!("#{a} \"Train 48\" (Production roll-out)")), "{reason}");
    assert_eq!(deploy["waiting_for"]["environment"], "PROD1");
    assert_eq!(deploy["waiting_for"]["service"], "payment-service");
    assert_eq!(deploy["waiting_for"]["held_by"]["release_id"], a);
    assert_eq!(deploy["waiting_for"]["held_by"]["phase"], "Production roll-out");

    // A hotfix that asks after B goes before B.
    let h = roll_out(&app, &w, &p["id"], "Hotfix 48.1", json!({"type": "hotfix", "links": {"hotfix_for": a}})).await;
    assert_eq!(activity(&get(&app, &w, h).await, "rollout", "deploy")["status"], "Waiting");
    let l = locks(&app, &w).await;
    assert_eq!(lock(&l, "payment-service")["held_by"]["release_id"], a);
    assert_eq!(queue(lock(&l, "payment-service")), vec![h, b], "hotfixes first");

    // A phase needing two locks never holds one while it waits for the other.
    let c = roll_out(&app, &w, &p["id"], "Ledger and payments", json!({"inputs": {"services": ["ledger", "payment-service"]}})).await;
    let deploy = activity(&get(&app, &w, c).await, "rollout", "deploy").clone();
    assert_eq!(deploy["status"], "Waiting");
    assert!(deploy["status_reason"].as_str().unwrap().contains("PROD1 / payment-service"), "{deploy}");
    let l = locks(&app, &w).await;
    assert!(lock(&l, "ledger")["held_by"].is_null(), "ledger is free, not held by the waiter: {l:?}");
    assert_eq!(queue(lock(&l, "ledger")), vec![c]);

    // A's phase ends: the hotfix runs, B still waits (now for the hotfix).
    finish_phase(&app, &w, a).await;
    assert_eq!(get(&app, &w, a).await["status"], "Success");
    assert_eq!(activity(&get(&app, &w, h).await, "rollout", "deploy")["status"], "Running");
    let r = get(&app, &w, b).await;
    assert_eq!(activity(&r, "rollout", "deploy")["status"], "Waiting");
    assert!(activity(&r, "rollout", "deploy")["status_reason"].as_str().unwrap().contains(&format!("#{h} \"Hotfix 48.1\"")));
    let l = locks(&app, &w).await;
    assert_eq!(lock(&l, "payment-service")["held_by"]["release_id"], h);
    assert_eq!(queue(lock(&l, "payment-service")), vec![b, c]);

    // Then B, then C (which takes both of its locks at once).
    finish_phase(&app, &w, h).await;
    assert_eq!(activity(&get(&app, &w, b).await, "rollout", "deploy")["status"], "Running");
    assert_eq!(lock(&locks(&app, &w).await, "payment-service")["held_by"]["release_id"], b);
    finish_phase(&app, &w, b).await;
    assert_eq!(activity(&get(&app, &w, c).await, "rollout", "deploy")["status"], "Running");
    let l = locks(&app, &w).await;
    assert_eq!(lock(&l, "payment-service")["held_by"]["release_id"], c);
    assert_eq!(lock(&l, "ledger")["held_by"]["release_id"], c);
    finish_phase(&app, &w, c).await;
    assert!(locks(&app, &w).await.is_empty(), "every lock is free and nobody waits");
    for id in [a, h, b, c] {
        assert_eq!(get(&app, &w, id).await["status"], "Success");
    }
}

#[tokio::test]
async fn the_release_form_takes_a_manifest_as_rows_and_as_fifty_pasted_lines() {
    let app = TestApp::spawn().await;
    let (_, admin, client) = app.admin_session("acme").await;
    let token = app.api_token(&admin).await;
    let services: Vec<String> = (1..=50).map(|i| format!("svc-{i:02}")).collect();
    for s in &services {
        assert_eq!(app.api_post(&token, "/api/v1/services", &json!({"name": s})).await.status(), 201);
    }
    let yaml = "name: Manifest\ninputs: [{name: manifest, type: service_versions, required: true}]\nphases: [{key: p, name: P, activities: [{key: a, name: A, kind: manual}]}]\n";
    let (status, p) = body(app.api_post(&token, "/api/v1/processes", &json!({"definition": yaml})).await).await;
    assert_eq!(status, 201, "{p}");
    let pid = p["id"].to_string();
    let form = client.get_html(&format!("/releases/new?process_id={pid}")).await;
    assert!(form.contains("name=\"in.manifest.service\"") && form.contains("name=\"in.manifest.paste\""), "rows and a paste box");

    // 50 pasted lines, one of them wrong: the error names the field and what was typed stays.
    let mut pasted: Vec<String> = services.iter().enumerate().map(|(i, s)| format!("{s}=3.{i}.0")).collect();
    pasted[49] = "svc-99=1.0".into();
    let text = pasted.join("\n");
    let fields = [("process_id", pid.as_str()), ("name", "Train 50"), ("in.manifest.paste", text.as_str())];
    let res = client.post_form("/releases", &fields).await;
    assert_eq!(res.status(), 422);
    let html = res.text().await.unwrap();
    assert!(html.contains("manifest: there is no service &quot;svc-99&quot;") || html.contains("there is no service"), "{html}");
    assert!(html.contains("value=\"svc-48\"") && html.contains("value=\"3.48.0\""), "the rows keep what was pasted");

    // Corrected: a row plus the 49 good lines.
    let text = pasted[..49].join("\n");
    let fields = [
        ("process_id", pid.as_str()),
        ("name", "Train 50"),
        ("in.manifest.service", "svc-50"),
        ("in.manifest.version", "3.49.0"),
        ("in.manifest.paste", text.as_str()),
    ];
    let res = client.post_form("/releases", &fields).await;
    assert_eq!(res.status(), 303, "{}", res.text().await.unwrap());
    let (_, list) = body(app.api_get(&token, "/api/v1/releases").await).await;
    let id = list["releases"][0]["id"].as_i64().unwrap();
    let (_, r) = body(app.api_get(&token, &format!("/api/v1/releases/{id}")).await).await;
    let manifest = r["inputs"]["manifest"].as_object().unwrap();
    assert_eq!(manifest.len(), 50);
    assert_eq!(manifest["svc-50"], "3.49.0");
    assert_eq!(manifest["svc-01"], "3.0.0");
    assert_eq!(r["services"].as_array().unwrap().len(), 50, "the manifest's services are the release's targets: {}", r["services"]);

    // An input set stores one (API, JSON object).
    let set = json!({"name": "Platform", "values": {"manifest": {"svc-01": "1.0", "svc-02": "2.0"}}});
    let (status, saved) = body(app.api_post(&token, &format!("/api/v1/processes/{pid}/input-sets"), &set).await).await;
    assert_eq!(status, 201, "{saved}");
    let form = client.get_html(&format!("/releases/new?process_id={pid}&input_set=Platform")).await;
    assert!(form.contains("value=\"svc-02\"") && form.contains("value=\"2.0\""), "the set prefills the rows");
}
