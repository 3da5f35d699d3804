//! Webhooks, callbacks and subprocesses against a real HTTP receiver on loopback.

use crate::common::TestApp;
use crate::engine::{act, activity, body, get, world, World};
use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use chrono::TimeDelta;
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};

#[derive(Debug, Clone)]
pub struct Received {
    pub path: String,
    pub key: String,
    pub callback: Option<String>,
    pub body: Value,
}

/// A CI/CD system stand-in: records every request; answers by path.
#[derive(Clone, Default)]
pub struct Receiver {
    pub received: Arc<Mutex<Vec<Received>>>,
    pub responses: Arc<Mutex<std::collections::HashMap<String, (u16, Value)>>>,
    pub base: String,
    pub port: u16,
}

impl Receiver {
    pub async fn start() -> Receiver {
        let mut receiver = Receiver::default();
        let shared = receiver.clone();
        let server = HttpServer::new(move || {
            let state = shared.clone();
            App::new().app_data(web::Data::new(state)).default_service(web::to(
                |req: HttpRequest, body: web::Bytes, state: web::Data<Receiver>| async move {
                    let header = |n: &str| req.headers().get(n).and_then(|v| v.to_str().ok()).map(str::to_string);
                    state.received.lock().unwrap().push(Received {
                        path: req.path().to_string(),
                        key: header("Idempotency-Key").unwrap_or_default(),
                        callback: header("Railyard-Callback-Url"),
                        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
                    });
                    let (status, answer) = state.responses.lock().unwrap().get(req.path()).cloned().unwrap_or((200, json!({})));
                    HttpResponse::build(actix_web::http::StatusCode::from_u16(status).unwrap()).json(answer)
                },
            ))
        })
        .workers(1)
        .bind("127.0.0.1:0")
        .unwrap();
        receiver.port = server.addrs()[0].port();
        receiver.base = format!("http://127.0.0.1:{}", receiver.port);
        tokio::spawn(server.run());
        receiver
    }

    pub fn answer(&self, path: &str, status: u16, body: Value) {
        self.responses.lock().unwrap().insert(path.to_string(), (status, body));
    }

    pub fn to(&self, path: &str) -> Vec<Received> {
        self.received.lock().unwrap().iter().filter(|r| r.path == path).cloned().collect()
    }
}

pub async fn admin_token(app: &TestApp) -> String {
    let mut conn = app.conn().await;
    let admin = railyard::db::models::users::User::by_email(&mut conn, "admin@acme.example.com").await.unwrap().unwrap();
    app.api_token(&admin).await
}

/// Lets the account call the receiver (and only it).
pub async fn allow(app: &TestApp, hosts: &[String]) {
    let token = admin_token(app).await;
    let res = app.api_send(reqwest::Method::PATCH, &token, "/api/v1/settings", &json!({"webhook_allow_list": hosts})).await;
    assert_eq!(res.status(), 200);
}

async fn release_of(app: &TestApp, w: &World, yaml: &str, inputs: Value) -> i64 {
    crate::engine::start(app, w, yaml, json!({"inputs": inputs})).await
}

#[tokio::test]
async fn a_response_webhook_feeds_a_callback_webhook_then_a_manual_task() {
    let app = TestApp::spawn().await;
    let w = world(&app, &[], &[]).await;
    let rx = Receiver::start().await;
    allow(&app, &[format!("127.0.0.1:{}", rx.port)]).await;
    app.api_post(&admin_token(&app).await, "/api/v1/environments", &json!({"name": "QA"})).await;
    rx.answer("/build", 200, json!({"build_number": "1234", "artifact_url": "https://artifacts.example.com/ledger-1234.tgz"}));
    rx.answer("/deploy", 202, json!({"queued": true}));
    let yaml = format!(
        "name: Hooks\ninputs: [{{name: version, type: string, required: true}}, {{name: token, type: string, secret: true}}]\nphases:\n  - key: build\n    name: Build\n    activities:\n      - {{key: compile, name: Compile, kind: webhook, config: {{url: \"{b}/build\", headers: {{Authorization: \"Bearer ${{inputs.token}}\"}}, body: {{version: \"${{inputs.version}}\"}}}}, records: [artifact_url]}}\n      - {{key: deploy, name: Deploy, kind: webhook, depends_on: [compile], config: {{url: \"{b}/deploy\", completion: callback, body: {{build: \"${{phases.build.activities.compile.outputs.build_number}}\", release: \"${{release.id}}\"}}}}, deploys: {{service: ledger, version: \"${{phases.build.activities.compile.outputs.build_number}}\", environment: QA}}}}\n      - {{key: verify, name: Verify, kind: manual, depends_on: [deploy]}}\n",
        b = rx.base
    );
    let id = release_of(&app, &w, &yaml, json!({"version": "2.0", "token": "sekrit-token"})).await;
    app.run_until_idle().await;

    let builds = rx.to("/build");
    assert_eq!(builds.len(), 1, "exactly once");
    assert_eq!(builds[0].key, format!("{id}/build/compile/1"));
    assert_eq!(builds[0].body, json!({"version": "2.0"}));
    let deploys = rx.to("/deploy");
    assert_eq!(deploys.len(), 1);
    assert_eq!(deploys[0].key, format!("{id}/build/deploy/1"));
    assert_eq!(deploys[0].body, json!({"build": "1234", "release": id}), "the first webhook's output feeds the second");
    let callback = deploys[0].callback.clone().expect("Railyard-Callback-Url");
    let r = get(&app, &w, id).await;
    assert_eq!(activity(&r, "build", "compile")["status"], "Success");
    assert_eq!(activity(&r, "build", "compile")["outputs"]["build_number"], "1234");
    assert_eq!(activity(&r, "build", "deploy")["status"], "Running", "waiting for the callback");

    // The callback URL works once.
    let path = callback.trim_start_matches(&app.address).to_string();
    let first = app
        .client
        .http
        .post(format!("{}{path}", app.address))
        .json(&json!({"status": "success", "outputs": {"url": "https://qa.example.com"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(first.status(), 200);
    let again = app.client.http.post(format!("{}{path}", app.address)).json(&json!({"status": "success"})).send().await.unwrap();
    assert_eq!(again.status(), 409);
    app.run_until_idle().await;
    let r = get(&app, &w, id).await;
    assert_eq!(activity(&r, "build", "verify")["status"], "Running");
    assert_eq!(act(&app, &w.rm_token, id, "build", "verify", "complete", json!({})).await.0, 200);
    app.run_until_idle().await;
    let r = get(&app, &w, id).await;
    assert_eq!(r["status"], "Success");
    assert_eq!(rx.to("/build").len() + rx.to("/deploy").len(), 2, "nothing was sent twice");
    assert!(r["services"].as_array().unwrap().contains(&json!("ledger")));

    // Secrets never reach the recorded request; artifacts and deployments are recorded.
    let mut conn = app.conn().await;
    use diesel::prelude::*;
    use diesel_async::RunQueryDsl;
    use railyard::db::schema::releases::dsl as rl;
    use railyard::db::schema::webhook_attempts::dsl as wa;
    let recorded: Vec<Option<Value>> = wa::webhook_attempts.select(wa::request).load(&mut conn).await.unwrap();
    let text = serde_json::to_string(&recorded).unwrap();
    assert!(!text.contains("sekrit-token") && text.contains("********"), "{text}");
    let artifacts: Value = rl::releases.find(id).select(rl::artifacts).first(&mut conn).await.unwrap();
    assert_eq!(artifacts["build.compile.artifact_url"], "https://artifacts.example.com/ledger-1234.tgz");
    let (_, deployments) = body(app.api_get(&w.rm_token, "/api/v1/deployments?environment=QA").await).await;
    assert_eq!(
        deployments["deployments"],
        json!([{"service": "ledger", "version": "1234", "environment": "QA", "release_id": id, "deployed_at": deployments["deployments"][0]["deployed_at"]}])
    );
}

#[tokio::test]
async fn a_failing_webhook_retries_with_backoff_then_follows_on_failure() {
    let app = TestApp::spawn().await;
    let w = world(&app, &[], &[]).await;
    let rx = Receiver::start().await;
    allow(&app, &[format!("127.0.0.1:{}", rx.port)]).await;
    rx.answer("/flaky", 503, json!({"error": "down"}));
    let yaml = format!("name: Flaky\nphases: [{{key: p, name: P, activities: [{{key: hook, name: Hook, kind: webhook, config: {{url: \"{}/flaky\"}}, retry: {{max_attempts: 3, backoff: 30s}}}}]}}]\n", rx.base);
    let id = release_of(&app, &w, &yaml, json!({})).await;
    app.run_until_idle().await;
    assert_eq!(rx.to("/flaky").len(), 1);
    app.run_until_idle().await;
    assert_eq!(rx.to("/flaky").len(), 1, "the backoff is honoured");
    for expected in [2, 3] {
        app.clock.advance(TimeDelta::seconds(30));
        app.run_until_idle().await;
        assert_eq!(rx.to("/flaky").len(), expected);
    }
    let keys: Vec<String> = rx.to("/flaky").iter().map(|r| r.key.clone()).collect();
    assert_eq!(keys, [format!("{id}/p/hook/1"), format!("{id}/p/hook/2"), format!("{id}/p/hook/3")]);
    app.clock.advance(TimeDelta::minutes(5));
    app.run_until_idle().await;
    assert_eq!(rx.to("/flaky").len(), 3, "no fourth automatic attempt");
    let r = get(&app, &w, id).await;
    assert_eq!(r["status"], "OnHold", "on_failure: manual");
    assert!(activity(&r, "p", "hook")["status"] == "OnHold");

    rx.answer("/flaky", 200, json!({"ok": true}));
    assert_eq!(act(&app, &w.rm_token, id, "p", "hook", "retry", json!({"reason": "service is back"})).await.0, 200);
    app.run_until_idle().await;
    let sent = rx.to("/flaky");
    assert_eq!(sent.len(), 4);
    assert_eq!(sent[3].key, format!("{id}/p/hook/4"), "the attempt number never resets");
    assert_eq!(get(&app, &w, id).await["status"], "Success");
}

#[tokio::test]
async fn hosts_outside_the_allow_list_are_never_called() {
    let app = TestApp::spawn().await;
    let w = world(&app, &[], &[]).await;
    let rx = Receiver::start().await;
    allow(&app, &["ci.example.com".to_string(), format!("127.0.0.2:{}", rx.port)]).await;
    for (name, url) in [("Direct", format!("{}/direct", rx.base)), ("By name", format!("http://localhost:{}/by-name", rx.port))] {
        let yaml = format!("name: {name}\nphases: [{{key: p, name: P, activities: [{{key: hook, name: Hook, kind: webhook, config: {{url: \"{url}\"}}, retry: {{max_attempts: 3}}}}]}}]\n");
        let id = release_of(&app, &w, &yaml, json!({})).await;
        app.run_until_idle().await;
        let r = get(&app, &w, id).await;
        assert_eq!(r["status"], "OnHold", "{name}");
        let reason = activity(&r, "p", "hook")["status"].clone();
        assert_eq!(reason, "OnHold");
        assert!(r["status_reason"].as_str().unwrap().contains("is not on the account's webhook allow-list"), "{r}");
    }
    assert!(rx.received.lock().unwrap().is_empty(), "no request was made");
}

#[tokio::test]
async fn bad_callbacks_get_a_clear_4xx_and_change_nothing() {
    let app = TestApp::spawn().await;
    let w = world(&app, &[], &[]).await;
    let rx = Receiver::start().await;
    allow(&app, &[format!("127.0.0.1:{}", rx.port)]).await;
    let yaml = format!("name: Callback\nphases: [{{key: p, name: P, activities: [{{key: hook, name: Hook, kind: webhook, config: {{url: \"{}/cb\", completion: callback, timeout: 10m}}, retry: {{max_attempts: 2, backoff: 1m}}}}]}}]\n", rx.base);
    let id = release_of(&app, &w, &yaml, json!({})).await;
    app.run_until_idle().await;
    let first = rx.to("/cb")[0].callback.clone().unwrap();
    let post = |url: String, body: &'static str| {
        let http = app.client.http.clone();
        async move {
            let res = http.post(url).header("content-type", "application/json").body(body).send().await.unwrap();
            let status = res.status().as_u16();
            (status, res.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    let (status, e) = post(format!("{}/api/v1/callbacks/not-a-token", app.address), r#"{"status": "success"}"#).await;
    assert_eq!(status, 404, "{e}");
    assert!(e["error"]["message"].as_str().unwrap().contains("not known"));
    let (status, e) = post(first.clone(), r#"{"status": "success""#).await;
    assert_eq!(status, 400);
    assert!(e["error"]["message"].as_str().unwrap().contains("malformed JSON"));
    let (status, e) = post(first.clone(), r#"{"status": "maybe"}"#).await;
    assert_eq!((status, e["error"]["field"].as_str()), (422, Some("status")));
    assert_eq!(activity(&get(&app, &w, id).await, "p", "hook")["status"], "Running", "nothing changed");

    // The first attempt times out: its URL has expired; the retry's URL works.
    app.clock.advance(TimeDelta::minutes(11));
    app.run_until_idle().await;
    app.clock.advance(TimeDelta::minutes(1));
    app.run_until_idle().await;
    assert_eq!(rx.to("/cb").len(), 2);
    let (status, e) = post(first.clone(), r#"{"status": "success"}"#).await;
    assert!(status == 409 || status == 422, "{status} {e}");
    assert!(e["error"]["message"].as_str().unwrap().contains("expired") || e["error"]["message"].as_str().unwrap().contains("used"), "{e}");
    let second = rx.to("/cb")[1].callback.clone().unwrap();
    let (status, _) = post(second.clone(), r#"{"status": "success", "outputs": {"ok": 1}}"#).await;
    assert_eq!(status, 200);
    let (status, e) = post(second, r#"{"status": "success"}"#).await;
    assert_eq!(status, 409, "used: {e}");
    app.run_until_idle().await;
    assert_eq!(get(&app, &w, id).await["status"], "Success");

    // A late callback of an aborted release is refused with a clear error.
    let id2 = release_of(&app, &w, &yaml.replace("name: Callback", "name: Aborted later"), json!({})).await;
    app.run_until_idle().await;
    let url = rx.to("/cb").last().unwrap().callback.clone().unwrap();
    body(app.api_post(&w.rm_token, &format!("/api/v1/releases/{id2}/abort"), &json!({"reason": "stop"})).await).await;
    let (status, e) = post(url, r#"{"status": "success"}"#).await;
    assert_eq!(status, 409);
    assert!(e["error"]["message"].as_str().unwrap().contains("aborted"), "{e}");
}

#[tokio::test]
async fn a_subprocess_runs_a_linked_child_and_its_failure_fails_the_parent() {
    let app = TestApp::spawn().await;
    let w = world(&app, &[], &[]).await;
    let child = "name: Child Deploy\ninputs: [{name: version, type: string, required: true}]\nphases: [{key: go, name: Go, activities: [{key: ship, name: Ship, kind: manual, on_failure: fail}]}]\n";
    assert_eq!(app.api_post(&w.rm_token, "/api/v1/processes", &json!({"definition": child})).await.status(), 201);
    let parent = "name: Parent Train\ninputs: [{name: version, type: string, required: true}]\nphases: [{key: main, name: Main, activities: [{key: sub, name: Run the child, kind: subprocess, process: Child Deploy, inputs: {version: \"${inputs.version}\"}, on_failure: fail}]}]\n";
    let id = release_of(&app, &w, parent, json!({"version": "3.1"})).await;
    app.run_until_idle().await;
    let r = get(&app, &w, id).await;
    let child_id = activity(&r, "main", "sub")["outputs"]["release_id"].as_i64().expect("the child's id on the parent");
    let c = get(&app, &w, child_id).await;
    assert_eq!(c["links"]["subprocess_of"], id, "linked both ways");
    assert_eq!(c["inputs"]["version"], "3.1");
    assert_eq!(c["status"], "OnHold");
    act(&app, &w.rm_token, child_id, "go", "ship", "complete", json!({})).await;
    app.run_until_idle().await;
    assert_eq!(get(&app, &w, child_id).await["status"], "Success");
    assert_eq!(get(&app, &w, id).await["status"], "Success", "the parent ends with the child's outcome");

    let id = release_of(&app, &w, &parent.replace("Parent Train", "Parent Two"), json!({"version": "3.2"})).await;
    app.run_until_idle().await;
    let child_id = activity(&get(&app, &w, id).await, "main", "sub")["outputs"]["release_id"].as_i64().unwrap();
    act(&app, &w.rm_token, child_id, "go", "ship", "fail", json!({"reason": "broken"})).await;
    app.run_until_idle().await;
    assert_eq!(get(&app, &w, child_id).await["status"], "Failed");
    let r = get(&app, &w, id).await;
    assert_eq!(activity(&r, "main", "sub")["status"], "Failed");
    assert_eq!(r["status"], "Failed");
}

#[tokio::test]
async fn a_callback_webhook_and_a_subprocess_fail_at_their_activity_timeout() {
    let app = TestApp::spawn().await;
    let w = world(&app, &[], &[]).await;
    let rx = Receiver::start().await;
    allow(&app, &[format!("127.0.0.1:{}", rx.port)]).await;
    let child = "name: Slow Child\nphases: [{key: go, name: Go, activities: [{key: ship, name: Ship, kind: manual}]}]\n";
    assert_eq!(app.api_post(&w.rm_token, "/api/v1/processes", &json!({"definition": child})).await.status(), 201);
    // The callback itself may take an hour (config.timeout), but the activity only 2 minutes.
    let yaml = format!(
        "name: Timed hooks\nphases:\n  - key: p\n    name: P\n    activities:\n      - {{key: hook, name: Deploy, kind: webhook, timeout: 2m, on_failure: fail, config: {{url: \"{}/cb\", completion: callback, timeout: 1h}}}}\n      - {{key: sub, name: Child, kind: subprocess, process: Slow Child, timeout: 2m, critical: false}}\n",
        rx.base
    );
    let id = release_of(&app, &w, &yaml, json!({})).await;
    app.run_until_idle().await;
    assert_eq!(rx.to("/cb").len(), 1, "the request went out");
    let child_id = activity(&get(&app, &w, id).await, "p", "sub")["outputs"]["release_id"].as_i64().expect("a child release");
    let late_callback = rx.to("/cb")[0].callback.clone().unwrap();

    app.clock.advance(TimeDelta::seconds(119));
    app.run_until_idle().await;
    let r = get(&app, &w, id).await;
    assert_eq!(activity(&r, "p", "hook")["status"], "Running", "{r}");
    assert_eq!(activity(&r, "p", "sub")["status"], "Running", "{r}");

    app.clock.advance(TimeDelta::seconds(1));
    app.run_until_idle().await;
    let r = get(&app, &w, id).await;
    let hook = activity(&r, "p", "hook");
    assert_eq!(hook["status"], "Failed", "{r}");
    assert!(hook["status_reason"].as_str().unwrap().contains("timeout of 2m"), "{hook}");
    assert_eq!(activity(&r, "p", "sub")["status"], "Failed");
    assert_eq!(r["status"], "Failed");
    let c = get(&app, &w, child_id).await;
    assert_eq!(c["status"], "Aborted", "the child stops with its parent's activity: {c}");
    assert!(c["status_reason"].as_str().unwrap().contains("timeout of 2m"), "{c}");
    let res = app.client.http.post(late_callback).json(&json!({"status": "success"})).send().await.unwrap();
    assert!(res.status().is_client_error(), "a callback after the timeout changes nothing: {}", res.status());
    assert_eq!(activity(&get(&app, &w, id).await, "p", "hook")["status"], "Failed");
}

/// Answers a callback webhook's last request with `outputs`.
async fn call_back(app: &TestApp, rx: &Receiver, path: &str, outputs: Value) {
    let url = rx.to(path).last().and_then(|r| r.callback.clone()).unwrap_or_else(|| panic!("no callback request to {path}"));
    let res = app.client.http.post(url).json(&json!({"status": "success", "outputs": outputs})).send().await.unwrap();
    assert_eq!(res.status(), 200, "callback for {path}");
}

async fn phase_status(app: &TestApp, w: &World, id: i64, phase: &str) -> String {
    let r = get(app, w, id).await;
    r["phases"].as_array().unwrap().iter().find(|p| p["key"] == phase).unwrap()["status"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn the_system_release_train_runs_end_to_end_on_the_clock() {
    use chrono::TimeZone;
    let app = TestApp::spawn().await;
    let w = world(
        &app,
        &["dev1", "qa1", "qa2", "st1", "st2", "st3", "ops1"],
        &[("development", &["dev1"]), ("qa", &["qa1", "qa2"]), ("release-stakeholders", &["st1", "st2", "st3"]), ("operations", &["ops1"])],
    )
    .await;
    let rx = Receiver::start().await;
    allow(&app, &[format!("127.0.0.1:{}", rx.port)]).await;
    let admin = admin_token(&app).await;
    for env in ["QA", "PROD0", "PROD1", "PROD2", "PROD3"] {
        app.api_post(&admin, "/api/v1/environments", &json!({"name": env})).await;
    }
    for s in ["ledger", "payments-api"] {
        app.api_post(&admin, "/api/v1/services", &json!({"name": s})).await;
    }
    rx.answer("/branch-cut", 202, json!({}));
    rx.answer("/deploy", 202, json!({}));
    // Only the hosts change (to the local receiver); every offset stays as written.
    let yaml = include_str!("../fixtures/system-release-train.yaml")
        .replace("https://ci.example.com", &rx.base)
        .replace("https://cd.example.com", &rx.base);
    let (_, process) = body(app.api_post(&w.rm_token, "/api/v1/processes", &json!({"definition": yaml})).await).await;
    // Monday 2026-11-30 09:00 in Berlin.
    let start = chrono_tz::Europe::Berlin.with_ymd_and_hms(2026, 11, 30, 9, 0, 0).unwrap().with_timezone(&chrono::Utc);
    let at = |days: i64, hour: u32| {
        chrono_tz::Europe::Berlin.with_ymd_and_hms(2026, 11, 30, hour, 0, 0).unwrap().with_timezone(&chrono::Utc) + TimeDelta::days(days)
    };
    let (status, r) = body(
        app.api_post(
            &w.rm_token,
            "/api/v1/releases",
            &json!({"process_id": process["id"], "name": "Week 49 System Release - November 2026", "type": "system",
                    "inputs": {"services": ["ledger", "payments-api"], "release_branch": "2026.49"},
                    "schedule": {"start": "2026-11-30T09:00", "end": "2026-12-22T09:00", "time_zone": "Europe/Berlin"}}),
        )
        .await,
    )
    .await;
    assert_eq!(status, 201, "{r}");
    let id = r["id"].as_i64().unwrap();

    app.clock.set(start);
    app.run_until_idle().await;
    assert_eq!(rx.to("/branch-cut").len(), 1);
    assert_eq!(rx.to("/branch-cut")[0].body, json!({"branch": "release/2026.49", "services": ["ledger", "payments-api"]}));
    call_back(&app, &rx, "/branch-cut", json!({"build_number": "B-77"})).await;
    app.run_until_idle().await;
    assert_eq!(rx.to("/deploy")[0].body, json!({"env": "QA", "build": "B-77"}));
    call_back(&app, &rx, "/deploy", json!({})).await;
    app.run_until_idle().await;
    assert_eq!(phase_status(&app, &w, id, "alpha_fixes").await, "Running");

    // Each timed step: a second early nothing moves; on time it does.
    let steps: [(&str, chrono::DateTime<chrono::Utc>); 2] = [("qa_signoff", at(3, 17)), ("beta_rollout", at(4, 9))];
    app.clock.set(at(3, 12));
    app.run_until_idle().await;
    assert_eq!(phase_status(&app, &w, id, "alpha_fixes").await, "Success");
    for (phase, time) in steps {
        app.clock.set(time - TimeDelta::seconds(1));
        app.run_until_idle().await;
        assert_eq!(phase_status(&app, &w, id, phase).await, "Waiting", "{phase} before its time");
        app.clock.set(time);
        app.run_until_idle().await;
        assert_eq!(phase_status(&app, &w, id, phase).await, "Running", "{phase} on time");
        if phase == "qa_signoff" {
            for u in ["qa1", "qa2"] {
                assert_eq!(act(&app, &w.tokens[u], id, "qa_signoff", "qa", "approve", json!({})).await.0, 200);
            }
            for u in ["st1", "st3"] {
                assert_eq!(act(&app, &w.tokens[u], id, "qa_signoff", "stakeholders", "approve", json!({})).await.0, 200);
            }
            app.run_until_idle().await;
            assert_eq!(phase_status(&app, &w, id, "qa_signoff").await, "Success");
        }
    }
    assert_eq!(rx.to("/deploy").len(), 2);
    assert_eq!(rx.to("/deploy")[1].body, json!({"env": "PROD0"}));
    call_back(&app, &rx, "/deploy", json!({})).await;
    app.run_until_idle().await;
    assert_eq!(phase_status(&app, &w, id, "beta_fixes").await, "Running");
    app.clock.set(at(11, 17));
    app.run_until_idle().await;
    for (phase, key, time) in [("prod1", "deploy", at(14, 9)), ("prod2", "deploy", at(16, 9))] {
        app.clock.set(time - TimeDelta::seconds(1));
        app.run_until_idle().await;
        assert_eq!(phase_status(&app, &w, id, phase).await, "Waiting", "{phase} waits for its Monday/Wednesday");
        app.clock.set(time);
        app.run_until_idle().await;
        assert_eq!(act(&app, &w.tokens["ops1"], id, phase, key, "complete", json!({})).await.0, 200, "{phase}");
        app.run_until_idle().await;
    }
    app.clock.set(at(21, 9) - TimeDelta::seconds(1));
    app.run_until_idle().await;
    assert_eq!(phase_status(&app, &w, id, "prod3").await, "Waiting");
    app.clock.set(at(21, 9));
    app.run_until_idle().await;
    assert_eq!(act(&app, &w.rm_token, id, "prod3", "signoff", "approve", json!({})).await.0, 403, "separation of duties");
    assert_eq!(act(&app, &w.tokens["ops1"], id, "prod3", "signoff", "approve", json!({})).await.0, 200);
    app.run_until_idle().await;
    assert_eq!(act(&app, &w.tokens["ops1"], id, "prod3", "deploy", "complete", json!({})).await.0, 200);
    app.run_until_idle().await;

    let r = get(&app, &w, id).await;
    assert_eq!(r["status"], "Success", "{r}");
    assert_eq!(phase_status(&app, &w, id, "rollback").await, "Skipped");
    let (_, d) = body(app.api_get(&w.rm_token, "/api/v1/deployments").await).await;
    let mut envs: Vec<String> =
        d["deployments"].as_array().unwrap().iter().map(|x| x["environment"].as_str().unwrap().to_string()).collect();
    envs.sort();
    envs.dedup();
    assert_eq!(envs, ["PROD0", "PROD1", "PROD2", "PROD3", "QA"]);
    assert!(d["deployments"].as_array().unwrap().iter().all(|x| x["version"] == "B-77"));
    assert_eq!(d["deployments"].as_array().unwrap().len(), 10, "two services in five environments");
    // No phase started before its not_before.
    let mut conn = app.conn().await;
    use diesel::prelude::*;
    use diesel_async::RunQueryDsl;
    use railyard::db::schema::release_phases::dsl as ph;
    let started: Vec<(String, Option<chrono::DateTime<chrono::Utc>>)> =
        ph::release_phases.filter(ph::release_id.eq(id)).select((ph::key, ph::started_at)).load(&mut conn).await.unwrap();
    for (key, not_before) in
        [("qa_signoff", at(3, 17)), ("beta_rollout", at(4, 9)), ("prod1", at(14, 9)), ("prod2", at(16, 9)), ("prod3", at(21, 9))]
    {
        let s = started.iter().find(|(k, _)| k == key).unwrap().1.unwrap();
        assert!(s >= not_before, "{key} started {s} before {not_before}");
    }
}

#[tokio::test]
async fn the_hotfix_runs_and_a_failing_deploy_holds_until_retry_or_abort() {
    let app = TestApp::spawn().await;
    let w = world(&app, &["ops1"], &[("operations", &["ops1"])]).await;
    let rx = Receiver::start().await;
    allow(&app, &[format!("127.0.0.1:{}", rx.port)]).await;
    let admin = admin_token(&app).await;
    app.api_post(&admin, "/api/v1/environments", &json!({"name": "PROD1"})).await;
    app.api_post(&admin, "/api/v1/services", &json!({"name": "ledger"})).await;
    rx.answer("/smoke", 200, json!({"passed": true}));
    rx.answer("/deploy", 202, json!({}));
    let yaml =
        include_str!("../fixtures/hotfix.yaml").replace("https://ci.example.com", &rx.base).replace("https://cd.example.com", &rx.base);
    let (_, process) = body(app.api_post(&w.rm_token, "/api/v1/processes", &json!({"definition": yaml})).await).await;
    let create = |name: &'static str| {
        let token = w.rm_token.clone();
        let pid = process["id"].clone();
        let app = &app;
        async move {
            let (status, r) = body(
                app.api_post(
                    &token,
                    "/api/v1/releases",
                    &json!({"process_id": pid, "name": name, "type": "hotfix", "activate": true,
                    "inputs": {"service": "ledger", "version": "9.9.1", "environment": "PROD1", "ticket": "INC-4711"}}),
                )
                .await,
            )
            .await;
            assert_eq!(status, 201, "{r}");
            r["id"].as_i64().unwrap()
        }
    };
    let approve_and_deploy = |id: i64| {
        let app = &app;
        let w = &w;
        async move {
            app.run_until_idle().await;
            assert_eq!(act(app, &w.tokens["ops1"], id, "approve", "oncall", "approve", json!({})).await.0, 200);
            app.run_until_idle().await;
        }
    };

    let ok = create("Ledger 9.9.1 hotfix for INC-4711").await;
    approve_and_deploy(ok).await;
    call_back(&app, &rx, "/deploy", json!({})).await;
    app.run_until_idle().await;
    assert_eq!(get(&app, &w, ok).await["status"], "Success");

    rx.answer("/deploy", 500, json!({"error": "cluster unavailable"}));
    let retried = create("Ledger 9.9.1 hotfix retry for INC-4711").await;
    approve_and_deploy(retried).await;
    let r = get(&app, &w, retried).await;
    assert_eq!(r["status"], "OnHold", "{r}");
    rx.answer("/deploy", 202, json!({}));
    assert_eq!(act(&app, &w.rm_token, retried, "deploy", "deploy", "retry", json!({"reason": "cluster back"})).await.0, 200);
    app.run_until_idle().await;
    call_back(&app, &rx, "/deploy", json!({})).await;
    app.run_until_idle().await;
    assert_eq!(get(&app, &w, retried).await["status"], "Success");

    rx.answer("/deploy", 500, json!({"error": "cluster unavailable"}));
    let aborted = create("Ledger 9.9.1 hotfix abort for INC-4711").await;
    approve_and_deploy(aborted).await;
    assert_eq!(get(&app, &w, aborted).await["status"], "OnHold");
    let (status, r) =
        body(app.api_post(&w.rm_token, &format!("/api/v1/releases/{aborted}/abort"), &json!({"reason": "rolled forward instead"})).await)
            .await;
    assert_eq!((status, r["status"].as_str()), (200, Some("Aborted")));
}

#[tokio::test]
async fn three_worker_processes_share_the_work_and_send_each_request_once() {
    let app = TestApp::spawn().await;
    app.clock.set(chrono::Utc::now());
    let w = world(&app, &[], &[]).await;
    let rx = Receiver::start().await;
    allow(&app, &[format!("127.0.0.1:{}", rx.port)]).await;
    rx.answer("/noop", 200, json!({"ok": true}));
    let yaml = format!("name: No-op\nphases: [{{key: p, name: P, activities: [{{key: hook, name: Hook, kind: webhook, config: {{url: \"{}/noop\"}}}}]}}]\n", rx.base);
    let (_, process) = body(app.api_post(&w.rm_token, "/api/v1/processes", &json!({"definition": yaml})).await).await;
    let mut workers = Vec::new();
    for _ in 0..3 {
        workers.push(
            tokio::process::Command::new(env!("CARGO_BIN_EXE_railyard"))
                .arg("worker")
                .env("DATABASE_URL", &app.database_url)
                .env("RAILYARD_POOL_SIZE", "3")
                .env("RUST_LOG", "warn")
                .env("RAILYARD_WEBHOOK_PRIVATE_ALLOW", "127.0.0.1")
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .kill_on_drop(true)
                .spawn()
                .expect("start a worker"),
        );
    }
    let mut ids = Vec::new();
    for i in 0..200 {
        let (status, r) = body(
            app.api_post(
                &w.rm_token,
                "/api/v1/releases",
                &json!({"process_id": process["id"], "name": format!("Ledger 10.{i} to PROD1"), "activate": true}),
            )
            .await,
        )
        .await;
        assert_eq!(status, 201, "{r}");
        ids.push(r["id"].as_i64().unwrap());
    }
    let mut conn = app.conn().await;
    use diesel::prelude::*;
    use diesel_async::RunQueryDsl;
    use railyard::db::schema::releases::dsl as rl;
    use railyard::db::schema::webhook_attempts::dsl as wa;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(90);
    loop {
        let done: i64 = rl::releases.filter(rl::status.eq("Success")).count().get_result(&mut conn).await.unwrap();
        if done == 200 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "only {done} of 200 releases finished");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    for worker in workers.iter_mut() {
        assert!(worker.try_wait().unwrap().is_none(), "a worker crashed");
    }
    let received = rx.to("/noop");
    let mut keys: Vec<String> = received.iter().map(|r| r.key.clone()).collect();
    keys.sort();
    keys.dedup();
    assert_eq!((received.len(), keys.len()), (200, 200), "every request exactly once");
    let owners: Vec<Option<String>> = wa::webhook_attempts.select(wa::lease_owner).load(&mut conn).await.unwrap();
    let mut counts = std::collections::HashMap::new();
    for o in owners.into_iter().flatten() {
        *counts.entry(o).or_insert(0) += 1;
    }
    eprintln!("attempts per worker: {counts:?}");
    assert_eq!(counts.len(), 3, "all three workers sent: {counts:?}");
    assert!(counts.values().all(|n| *n >= 1), "every worker sent at least one request: {counts:?}");
    assert_eq!(ids.len(), 200);
}

#[tokio::test]
async fn a_draft_changes_process_and_version_and_overrides_phase_and_activity_variables() {
    let app = TestApp::spawn().await;
    let w = world(&app, &[], &[]).await;
    let rx = Receiver::start().await;
    allow(&app, &[format!("127.0.0.1:{}", rx.port)]).await;
    let hook = |version: &str| {
        format!(
            "name: Scoped vars\nvariables: [{{name: region, value: eu}}, {{name: note, value: '{version}'}}]\nphases:\n  - key: deploy\n    name: Deploy\n    variables: [{{name: region, value: us}}]\n    activities:\n      - {{key: push, name: Push, kind: webhook, variables: [{{name: batch, value: '5'}}], config: {{url: \"{}/push\", body: {{region: \"${{vars.region}}\", batch: \"${{vars.batch}}\", note: \"${{vars.note}}\"}}}}}}\n",
            rx.base
        )
    };
    let (_, p) = body(app.api_post(&w.rm_token, "/api/v1/processes", &json!({"definition": hook("v1")})).await).await;
    let pid = p["id"].as_i64().unwrap();
    assert_eq!(
        app.api_send(reqwest::Method::PUT, &w.rm_token, &format!("/api/v1/processes/{pid}"), &json!({"definition": hook("v2")}))
            .await
            .status(),
        200
    );
    let (_, other) = body(
        app.api_post(
            &w.rm_token,
            "/api/v1/processes",
            &json!({"definition": "name: Other\nphases: [{key: p, name: P, activities: [{key: a, name: A, kind: manual}]}]\n"}),
        )
        .await,
    )
    .await;
    let (status, draft) =
        body(app.api_post(&w.rm_token, "/api/v1/releases", &json!({"process_id": other["id"], "name": "Scoped 1"})).await).await;
    assert_eq!(status, 201, "{draft}");
    let id = draft["id"].as_i64().unwrap();
    let patch = |b: Value| {
        let token = w.rm_token.clone();
        let app = &app;
        async move { body(app.api_send(reqwest::Method::PATCH, &token, &format!("/api/v1/releases/{id}"), &b).await).await }
    };

    // Another process: its newest version; then an older version of it.
    let (status, r) = patch(json!({"process_id": pid})).await;
    assert_eq!((status, r["process_id"].as_i64(), r["process_version"].as_i64()), (200, Some(pid), Some(2)), "{r}");
    let (status, r) = patch(json!({"process_version": 1})).await;
    assert_eq!((status, r["process_version"].as_i64()), (200, Some(1)), "{r}");
    let (status, e) = patch(json!({"process_version": 7})).await;
    assert_eq!((status, e["error"]["field"].as_str()), (422, Some("process_version")), "{e}");

    // Overrides by scope: a global key leaves the phase's own variable alone.
    let (status, e) = patch(json!({"variables": {"deploy.nope": "x"}})).await;
    assert_eq!((status, e["error"]["field"].as_str()), (422, Some("variables.deploy.nope")), "{e}");
    let (status, r) = patch(json!({"variables": {"region": "global", "deploy.push.batch": "9"}})).await;
    assert_eq!(status, 200, "{r}");
    let (status, r) = patch(json!({"variables": {"region": "global", "deploy.region": "ap", "deploy.push.batch": "9"}})).await;
    assert_eq!((status, r["variables"]["deploy.region"].as_str()), (200, Some("ap")), "{r}");
    let (status, r) = body(app.api_post(&w.rm_token, &format!("/api/v1/releases/{id}/activate"), &json!({})).await).await;
    assert_eq!(status, 200, "{r}");
    app.run_until_idle().await;
    let sent = rx.to("/push");
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].body, json!({"region": "ap", "batch": "9", "note": "v1"}), "phase and activity overrides, version 1");
}

#[tokio::test]
async fn the_release_page_lists_webhook_attempts_with_secrets_masked_and_offers_retry_on_a_decision() {
    use crate::common::PASSWORD;
    let app = TestApp::spawn().await;
    let w = world(&app, &[], &[]).await;
    let rx = Receiver::start().await;
    allow(&app, &[format!("127.0.0.1:{}", rx.port)]).await;
    rx.answer("/deploy", 503, json!({"error": "maintenance window"}));
    let yaml = format!(
        "name: Masked\ninputs: [{{name: token, type: string, secret: true}}]\nphases:\n  - key: p\n    name: P\n    activities:\n      - {{key: hook, name: Deploy, kind: webhook, config: {{url: \"{}/deploy\", headers: {{Authorization: \"Bearer ${{inputs.token}}\", X-Api-Key: literal-key-123}}, body: {{token: \"${{inputs.token}}\", env: prod}}}}}}\n",
        rx.base
    );
    let id = release_of(&app, &w, &yaml, json!({"token": "s3cr3t-value"})).await;
    app.run_until_idle().await;
    assert_eq!(rx.to("/deploy").len(), 1, "the real request carried the secret");
    assert_eq!(rx.to("/deploy")[0].body["token"], "s3cr3t-value");
    let rm = app.new_client();
    assert_eq!(rm.login("rm@acme.example.com", PASSWORD).await.status(), 303);
    let page = rm.get_html(&format!("/releases/{id}")).await;
    let section = &page[page.find("id=\"webhook-attempts\"").expect("the attempt list")..];
    assert!(!page.contains("s3cr3t-value") && !page.contains("literal-key-123"), "no secret on the page");
    assert!(section.contains("Authorization: Bearer ********"), "{section}");
    assert!(section.contains("X-Api-Key: ********"));
    assert!(section.contains("&#34;token&#34;: &#34;********&#34;"), "the body's secret: {section}");
    assert!(section.contains("HTTP 503") && section.contains("maintenance window"), "status and the start of the body");
    assert!(section.contains(&format!("POST {}/deploy", rx.base)));
    // The failure waits for a decision (on_failure manual): retry is offered right there.
    assert!(section.contains("/activities/p/hook/retry"), "{section}");
    rx.answer("/deploy", 200, json!({}));
    let res = rm.post_form(&format!("/releases/{id}/activities/p/hook/retry"), &[("reason", "maintenance over")]).await;
    assert_eq!(res.status(), 303);
    app.run_until_idle().await;
    assert_eq!(get(&app, &w, id).await["status"], "Success");
    let page = rm.get_html(&format!("/releases/{id}")).await;
    assert!(page.contains("attempt 2 · succeeded"), "both attempts are listed");
}

/// Issue 30, item 6: a receiver that POSTs the callback before it answers. The callback is
/// accepted while its attempt is still `sending` (one lock order: release, then attempt), the
/// request is sent exactly once, and the release succeeds with the callback's outputs.
#[tokio::test]
async fn a_callback_that_arrives_before_its_answer_is_accepted_once() {
    let app = TestApp::spawn().await;
    let w = world(&app, &[], &[]).await;
    let requests = Arc::new(Mutex::new(0usize));
    let callback_statuses: Arc<Mutex<Vec<u16>>> = Arc::new(Mutex::new(Vec::new()));
    let (seen, statuses) = (requests.clone(), callback_statuses.clone());
    let server = HttpServer::new(move || {
        let (seen, statuses) = (seen.clone(), statuses.clone());
        App::new().default_service(web::to(move |req: HttpRequest| {
            let (seen, statuses) = (seen.clone(), statuses.clone());
            async move {
                *seen.lock().unwrap() += 1;
                let url = req.headers().get("Railyard-Callback-Url").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
                let res = reqwest::Client::new()
                    .post(&url)
                    .json(&json!({"status": "success", "outputs": {"build": "42"}}))
                    .send()
                    .await
                    .map(|r| r.status().as_u16())
                    .unwrap_or(0);
                statuses.lock().unwrap().push(res);
                HttpResponse::Accepted().json(json!({"accepted": true}))
            }
        }))
    })
    .workers(1)
    .bind("127.0.0.1:0")
    .unwrap();
    let port = server.addrs()[0].port();
    tokio::spawn(server.run());
    allow(&app, &[format!("127.0.0.1:{port}")]).await;
    let yaml = format!(
        "name: Eager CI\nphases: [{{key: p, name: P, activities: [{{key: build, name: Build, kind: webhook, config: {{url: \"http://127.0.0.1:{port}/build\", completion: callback}}}}]}}]\n"
    );
    let id = crate::engine::start(&app, &w, &yaml, json!({})).await;
    app.run_until_idle().await;
    let r = get(&app, &w, id).await;
    assert_eq!(*requests.lock().unwrap(), 1, "sent exactly once");
    let statuses = callback_statuses.lock().unwrap().clone();
    assert!(statuses.len() == 1 && (200..300).contains(&statuses[0]), "the callback was answered 2xx: {statuses:?}");
    assert_eq!(r["status"], "Success", "{r}");
    assert_eq!(activity(&r, "p", "build")["outputs"]["build"], "42", "{r}");

    // Issue 30: the attempt list shows every header sent, the engine's own too, the token masked.
    let client = app.new_client();
    assert_eq!(client.login("admin@acme.example.com", crate::common::PASSWORD).await.status(), 303);
    let page = client.get_html(&format!("/releases/{id}")).await;
    assert!(page.contains(&format!("Idempotency-Key: {id}/p/build/1")), "the key is listed");
    assert!(page.contains("Railyard-Callback-Url: http://") && page.contains("/api/v1/callbacks/********"), "the callback URL, masked");
}

/// A receiver that tells `arrived` when a request comes and, when `hold` is given, answers only
/// after it is released.
async fn signalling_receiver(arrived: Arc<tokio::sync::Notify>, hold: Option<Arc<tokio::sync::Notify>>) -> u16 {
    let server = HttpServer::new(move || {
        let (arrived, hold) = (arrived.clone(), hold.clone());
        App::new().default_service(web::to(move || {
            let (arrived, hold) = (arrived.clone(), hold.clone());
            async move {
                arrived.notify_one();
                if let Some(hold) = hold {
                    hold.notified().await;
                }
                HttpResponse::Ok().json(json!({"ok": true}))
            }
        }))
    })
    .workers(1)
    .bind("127.0.0.1:0")
    .unwrap();
    let port = server.addrs()[0].port();
    tokio::spawn(server.run());
    port
}

/// Issue 30, item 5: with the real worker running, tenant A's receiver holds its answer until
/// the test releases it, and the test releases it only after tenant B's request — activated
/// while A's is in flight — has arrived. No sleep, no time bound: it passes only in that order.
#[tokio::test]
async fn a_slow_tenant_never_holds_up_another_tenant_s_send() {
    let app = TestApp::spawn().await;
    let w = world(&app, &[], &[]).await;
    let (a_arrived, b_arrived, release_a) =
        (Arc::new(tokio::sync::Notify::new()), Arc::new(tokio::sync::Notify::new()), Arc::new(tokio::sync::Notify::new()));
    let a_port = signalling_receiver(a_arrived.clone(), Some(release_a.clone())).await;
    let b_port = signalling_receiver(b_arrived.clone(), None).await;
    allow(&app, &[format!("127.0.0.1:{a_port}")]).await;
    let (_, b_admin, _) = app.admin_session("globex").await;
    let b_token = app.api_token(&b_admin).await;
    let res = app
        .api_send(reqwest::Method::PATCH, &b_token, "/api/v1/settings", &json!({"webhook_allow_list": [format!("127.0.0.1:{b_port}")]}))
        .await;
    assert_eq!(res.status(), 200);
    let hook = |name: &str, port: u16| {
        format!("name: {name}\nphases: [{{key: p, name: P, activities: [{{key: hook, name: Hook, kind: webhook, config: {{url: \"http://127.0.0.1:{port}/hook\"}}}}]}}]\n")
    };
    railyard::worker::spawn_worker(app.state.services.clone());

    let a = crate::engine::start(&app, &w, &hook("Slow tenant", a_port), json!({})).await;
    a_arrived.notified().await;
    let (status, p) = body(app.api_post(&b_token, "/api/v1/processes", &json!({"definition": hook("Other tenant", b_port)})).await).await;
    assert_eq!(status, 201, "{p}");
    let (status, r) =
        body(app.api_post(&b_token, "/api/v1/releases", &json!({"process_id": p["id"], "name": "Other 1.0", "activate": true})).await)
            .await;
    assert_eq!(status, 201, "{r}");
    b_arrived.notified().await;
    release_a.notify_one();
    // A's answer was awaited, not abandoned: its release succeeds (a send held inside the
    // engine's round would have timed out first).
    loop {
        match get(&app, &w, a).await["status"].as_str() {
            Some("Success") => break,
            Some("Running") => tokio::task::yield_now().await,
            other => panic!("the slow tenant's release ended {other:?}"),
        }
    }
}
