use crate::common::TestApp;
use serde_json::json;

#[tokio::test]
async fn the_catalog_api_creates_lists_changes_and_deletes() {
    let app = TestApp::spawn().await;
    let (_, admin, _) = app.admin_session("acme").await;
    let token = app.api_token(&admin).await;

    let org = app.api_post(&token, "/api/v1/orgs", &json!({"slug": "payments", "name": "Payments"})).await;
    assert_eq!(org.status(), 201);
    let org: serde_json::Value = org.json().await.unwrap();
    assert!(org["id"].as_i64().is_some());
    assert_eq!(app.api_post(&token, "/api/v1/orgs", &json!({"slug": "payments", "name": "Again"})).await.status(), 409);

    for (name, production) in [("DEV", false), ("QA", false), ("PROD1", true)] {
        let res = app.api_post(&token, "/api/v1/environments", &json!({"name": name, "production": production})).await;
        assert_eq!(res.status(), 201);
    }
    let res = app.api_send(reqwest::Method::PATCH, &token, "/api/v1/environments/PROD1", &json!({"position": 0})).await;
    assert_eq!(res.status(), 200);
    let envs: serde_json::Value = app.api_get(&token, "/api/v1/environments").await.json().await.unwrap();
    let names: Vec<&str> = envs["environments"].as_array().unwrap().iter().map(|e| e["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["PROD1", "DEV", "QA"]);
    assert_eq!(envs["environments"][0]["production"], true);

    let service = app.api_post(&token, "/api/v1/services", &json!({"name": "payments-api"})).await;
    assert_eq!(service.status(), 201);
    let renamed = app.api_send(reqwest::Method::PATCH, &token, "/api/v1/services/payments-api", &json!({"name": "payments-gateway"})).await;
    assert_eq!(renamed.status(), 200);
    assert_eq!(app.api_get(&token, "/api/v1/services/payments-gateway").await.status(), 200);

    let group = app.api_post(&token, "/api/v1/groups", &json!({"name": "qa", "members": [admin.email]})).await;
    assert_eq!(group.status(), 201);
    let group: serde_json::Value = group.json().await.unwrap();
    assert_eq!(group["members"], json!([admin.email]));
    let patched = app.api_send(reqwest::Method::PATCH, &token, "/api/v1/groups/qa", &json!({"members": []})).await;
    assert_eq!(patched.status(), 200);
    assert_eq!(app.api_send(reqwest::Method::DELETE, &token, "/api/v1/groups/qa", &json!({})).await.status(), 204);
    assert_eq!(app.api_get(&token, "/api/v1/groups/qa").await.status(), 404);

    let settings = app.api_send(reqwest::Method::PATCH, &token, "/api/v1/settings", &json!({"release_level": "organization", "webhook_allow_list": ["CI.example.com:8443"], "reminder_interval_minutes": 60, "time_zone": "Europe/Berlin"})).await;
    assert_eq!(settings.status(), 200);
    let settings: serde_json::Value = app.api_get(&token, "/api/v1/settings").await.json().await.unwrap();
    assert_eq!(
        settings,
        json!({"release_level": "organization", "webhook_allow_list": ["ci.example.com:8443"], "reminder_interval_minutes": 60, "time_zone": "Europe/Berlin", "chat_webhook_url_set": false, "chat_webhook_url": null})
    );

    let mut conn = app.conn().await;
    let report = railyard::db::audit::verify(&mut conn, None).await.unwrap();
    assert!(report.broken.is_none());
    assert!(report.events >= 12, "every change is on the trail: {report:?}");
}

#[tokio::test]
async fn health_metrics_and_security_headers() {
    let app = TestApp::spawn().await;
    let health = app.client.get("/healthz").await;
    assert_eq!(health.status(), 200);
    let login = app.client.get("/login").await;
    let headers = login.headers();
    let csp = headers["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'") && !csp.contains("unsafe-inline"));
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert!(headers.contains_key("referrer-policy"));
    let html = login.text().await.unwrap();
    assert!(html.contains("/static/vendor/htmx-2.0.11.min.js"));
    assert!(!html.contains("<script>") && !html.contains("style="), "no inline script or style");
    assert_eq!(app.client.get("/static/vendor/htmx-2.0.11.min.js").await.status(), 200);
    assert_eq!(app.client.get("/no/such/page").await.status(), 404);

    let metrics = app.client.get_html("/metrics").await;
    assert!(metrics.contains(r#"railyard_http_requests_total{method="GET",route="/healthz",status="200"} 1"#), "{metrics}");
    assert!(metrics.contains("railyard_db_pool_connections{state=\"max\"} 4"));
    // What an operator watches: durations by route, the engine's queue, due releases, webhooks, the outbox.
    assert!(metrics.contains(r#"railyard_http_request_duration_seconds_bucket{route="/healthz",le="+Inf"} 1"#), "{metrics}");
    assert!(metrics.contains(r#"railyard_http_request_duration_seconds_count{route="/healthz"} 1"#), "{metrics}");
    for gauge in [
        "railyard_engine_queue_depth 0",
        "railyard_releases_due_not_started 0",
        "railyard_releases_due_lag_seconds 0",
        "railyard_webhook_attempts_in_flight 0",
        "railyard_webhook_attempts_failed 0",
        "railyard_notification_outbox_backlog ",
    ] {
        assert!(metrics.contains(gauge), "{gauge} in {metrics}");
    }
}
