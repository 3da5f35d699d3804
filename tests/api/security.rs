//! Regression tests for the security review's findings (issue 14), one per finding.

use crate::common::{body, TestApp, PASSWORD};
use serde_json::json;

/// Finding 4: `/login?next=/%09/evil.example` must not send the user off-site.
#[tokio::test]
async fn finding_4_log_in_never_redirects_off_site() {
    let app = TestApp::spawn().await;
    let account = app.create_account("acme").await;
    app.create_user(account, "ann@acme.example.com", "viewer", "").await;
    for next in ["/\t/evil.example", "/\\evil.example", "//evil.example", "/%09/evil.example"] {
        let client = app.new_client();
        let token = client.csrf("/login").await;
        let res = client
            .post_form_raw("/login", &[("csrf_token", &token), ("email", "ann@acme.example.com"), ("password", PASSWORD), ("next", next)])
            .await;
        assert_eq!(res.status(), 303, "{next:?}");
        let location = res.headers()["location"].to_str().unwrap().to_string();
        assert!(location == "/" || location == "/%09/evil.example", "{next:?} went to {location:?}");
    }
    let page = app.new_client().get_html("/login?next=/%09/evil.example").await;
    assert!(!page.contains("evil.example"), "{page}");
}

/// Finding 6: random HTTP methods count as `other` in `/metrics`.
#[tokio::test]
async fn finding_6_metrics_do_not_grow_with_random_methods() {
    let app = TestApp::spawn().await;
    let http = reqwest::Client::new();
    for i in 0..20 {
        let method = reqwest::Method::from_bytes(format!("RANDOM{i}").as_bytes()).unwrap();
        let _ = http.request(method, format!("{}/healthz", app.address)).send().await.unwrap();
    }
    let metrics = http.get(format!("{}/metrics", app.address)).send().await.unwrap().text().await.unwrap();
    assert!(!metrics.contains("RANDOM"), "{metrics}");
    assert!(metrics.contains("method=\"other\""), "{metrics}");
    let (status, _) = body(http.get(format!("{}/healthz", app.address)).send().await.unwrap()).await;
    assert_eq!(status, 200);
    assert!(json!(null).is_null());
}

/// Finding 5: the chat webhook URL is a credential; viewers learn only that one is set.
#[tokio::test]
async fn finding_5_settings_hide_the_chat_webhook_url_from_viewers() {
    let app = TestApp::spawn().await;
    let (account, admin, _) = app.admin_session("acme").await;
    let admin_token = app.api_token(&admin).await;
    let secret_url = "https://chat.example.com/hooks/T000/B000/very-secret";
    let res = app.api_send(reqwest::Method::PATCH, &admin_token, "/api/v1/settings", &json!({"chat_webhook_url": secret_url})).await;
    assert_eq!(res.status(), 200);
    let viewer = app.create_user(account, "vic@acme.example.com", "viewer", "").await;
    let viewer_token = app.api_token(&viewer).await;
    let res = app.api_get(&viewer_token, "/api/v1/settings").await;
    let text = res.text().await.unwrap();
    assert!(!text.contains("very-secret"), "{text}");
    let settings: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(settings["chat_webhook_url_set"], true);
    assert!(settings.get("chat_webhook_url").is_none(), "{settings}");
    let (_, mine) = body(app.api_get(&admin_token, "/api/v1/settings").await).await;
    assert_eq!(mine["chat_webhook_url"], secret_url);
}

/// Finding 11: "not in this state" answers 409, never 403 or 422 (DESIGN §10).
#[tokio::test]
async fn finding_11_state_conflicts_answer_409() {
    let app = TestApp::spawn().await;
    let (_, admin, _) = app.admin_session("acme").await;
    let token = app.api_token(&admin).await;
    let yaml = "name: Two steps\nphases:\n  - key: p\n    name: P\n    activities:\n      - {key: a, name: A, kind: manual}\n";
    let (status, p) = body(app.api_post(&token, "/api/v1/processes", &json!({"definition": yaml})).await).await;
    assert_eq!(status, 201, "{p}");
    let (status, r) =
        body(app.api_post(&token, "/api/v1/releases", &json!({"process_id": p["id"], "name": "R", "activate": true})).await).await;
    assert_eq!(status, 201, "{r}");
    let id = r["id"].as_i64().unwrap();
    app.run_until_idle().await;
    let (status, again) = body(app.api_post(&token, &format!("/api/v1/releases/{id}/activate"), &json!({})).await).await;
    assert_eq!((status, again["error"]["code"].as_str()), (409, Some("not_draft")), "{again}");
    let (status, edit) =
        body(app.api_send(reqwest::Method::PATCH, &token, &format!("/api/v1/releases/{id}"), &json!({"name": "S"})).await).await;
    assert_eq!((status, edit["error"]["code"].as_str()), (409, Some("not_draft")), "{edit}");
    let (status, _) = body(app.api_post(&token, &format!("/api/v1/releases/{id}/abort"), &json!({"reason": "stop"})).await).await;
    assert_eq!(status, 200);
    let (status, act) = body(app.api_post(&token, &format!("/api/v1/releases/{id}/activities/p/a/complete"), &json!({})).await).await;
    assert_eq!((status, act["error"]["code"].as_str()), (409, Some("not_in_flight")), "{act}");
    let (status, abort) = body(app.api_post(&token, &format!("/api/v1/releases/{id}/abort"), &json!({"reason": "again"})).await).await;
    assert_eq!(status, 409, "{abort}");
}

async fn hook(app: &TestApp, w: &crate::engine::World, name: &str, url: &str) -> serde_json::Value {
    let yaml = format!(
        "name: {name}\nphases: [{{key: p, name: P, activities: [{{key: hook, name: Hook, kind: webhook, config: {{url: \"{url}\"}}}}]}}]\n"
    );
    let id = crate::engine::start(app, w, &yaml, json!({})).await;
    app.run_until_idle().await;
    crate::engine::get(app, w, id).await
}

/// Finding 1: an allow-listed name (or address form) that reaches loopback is refused after
/// resolution, unless the operator opens it; a redirect to another port is not followed.
#[tokio::test]
async fn finding_1_webhooks_never_reach_private_addresses_through_the_tenant_allow_list() {
    use crate::webhooks::{allow, Receiver};
    let app = TestApp::spawn_without_private_allow().await;
    let w = crate::engine::world(&app, &[], &[]).await;
    let rx = Receiver::start().await;
    let port = rx.port;
    allow(&app, &[format!("localhost:{port}"), format!("127.0.0.1:{port}"), format!("[::1]:{port}")]).await;
    for (name, url) in [
        ("By name", format!("http://localhost:{port}/by-name")),
        ("Loopback", format!("http://127.0.0.1:{port}/direct")),
        ("Decimal", format!("http://2130706433:{port}/decimal")),
        ("Octal", format!("http://0177.0.0.1:{port}/octal")),
        ("IPv6", format!("http://[::1]:{port}/v6")),
    ] {
        let r = hook(&app, &w, name, &url).await;
        assert_eq!(r["status"], "OnHold", "{name}: {r}");
        let reason = r["status_reason"].as_str().unwrap_or_default();
        assert!(
            reason.contains("private, loopback or link-local") || reason.contains("is not on the account's webhook allow-list"),
            "{name}: {reason}"
        );
    }
    assert!(rx.received.lock().unwrap().is_empty(), "the receiver saw nothing: {:?}", rx.received.lock().unwrap());
}

/// Finding 1 (redirects): with loopback opened by the operator, a redirect to another port of
/// the same host is still not followed; the first receiver answers, the second sees nothing.
#[tokio::test]
async fn finding_1_redirects_stay_on_the_same_scheme_host_and_port() {
    use crate::webhooks::{allow, Receiver};
    let app = TestApp::spawn().await;
    let w = crate::engine::world(&app, &[], &[]).await;
    let target = Receiver::start().await;
    let location = format!("http://127.0.0.1:{}/stolen", target.port);
    let redirector = actix_web::HttpServer::new(move || {
        let location = location.clone();
        actix_web::App::new().default_service(actix_web::web::to(move || {
            let location = location.clone();
            async move { actix_web::HttpResponse::Found().insert_header(("Location", location)).finish() }
        }))
    })
    .workers(1)
    .bind("127.0.0.1:0")
    .unwrap();
    let port = redirector.addrs()[0].port();
    tokio::spawn(redirector.run());
    allow(&app, &[format!("127.0.0.1:{port}"), format!("127.0.0.1:{}", target.port)]).await;
    let r = hook(&app, &w, "Redirected", &format!("http://127.0.0.1:{port}/start")).await;
    assert_eq!(r["status"], "OnHold", "{r}");
    assert!(r["status_reason"].as_str().unwrap_or_default().contains("HTTP 302"), "{r}");
    assert!(target.received.lock().unwrap().is_empty(), "the other port saw nothing");
}

/// Finding 1 (operator): `RAILYARD_WEBHOOK_PRIVATE_ALLOW` covering the receiver lets the call through.
#[tokio::test]
async fn finding_1_the_operator_opens_a_private_receiver() {
    use crate::webhooks::{allow, Receiver};
    let rx = Receiver::start().await;
    let port = rx.port;
    let app = TestApp::spawn_with(|s| s.webhook_private_allow = format!("127.0.0.1:{port}")).await;
    let w = crate::engine::world(&app, &[], &[]).await;
    allow(&app, &[format!("127.0.0.1:{port}")]).await;
    let r = hook(&app, &w, "Opened", &format!("http://127.0.0.1:{port}/ok")).await;
    assert_eq!(r["status"], "Success", "{r}");
    assert_eq!(rx.to("/ok").len(), 1);
}

/// Finding 2: error texts are built from the masked URL; a secret input in the URL never lands
/// in the release's reason or on the audit trail.
#[tokio::test]
async fn finding_2_webhook_errors_never_contain_secret_inputs() {
    let app = TestApp::spawn().await;
    let w = crate::engine::world(&app, &[], &[]).await;
    crate::webhooks::allow(&app, &["127.0.0.1:9".to_string()]).await;
    let yaml = "name: Leaky\ninputs: [{name: token, type: string, secret: true, required: true}]\nphases: [{key: p, name: P, activities: [{key: hook, name: Hook, kind: webhook, config: {url: \"http://127.0.0.1:9/hook?token=${inputs.token}\"}}]}]\n";
    let id = crate::engine::start(&app, &w, yaml, json!({"inputs": {"token": "s3cr3t-value-xyz"}})).await;
    app.run_until_idle().await;
    let r = crate::engine::get(&app, &w, id).await;
    assert_eq!(r["status"], "OnHold", "{r}");
    assert!(!r.to_string().contains("s3cr3t-value-xyz"), "{r}");
    let mut conn = app.conn().await;
    #[derive(diesel::QueryableByName)]
    struct Leak {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let leak: Leak = diesel_async::RunQueryDsl::get_result(
        diesel::sql_query(
            "SELECT count(*) AS n FROM audit_events WHERE details::text LIKE '%s3cr3t-value-xyz%' OR reason LIKE '%s3cr3t-value-xyz%'",
        ),
        &mut conn,
    )
    .await
    .unwrap();
    assert_eq!(leak.n, 0, "the audit trail holds no secret");
}

/// Finding 10 (page): a `page` near 2^63 answers an empty page, not a 500.
#[tokio::test]
async fn finding_10_an_overflowing_page_is_not_a_server_error() {
    let app = TestApp::spawn().await;
    let (_, admin, client) = app.admin_session("acme").await;
    let token = app.api_token(&admin).await;
    let (status, list) = body(app.api_get(&token, "/api/v1/releases?page=9223372036854775807").await).await;
    assert_eq!(status, 200, "{list}");
    let res = client.get("/releases?page=9223372036854775807").await;
    assert_eq!(res.status(), 200);
    let (status, _) = body(app.api_get(&token, "/api/v1/releases?page=99999999999999999999999").await).await;
    assert_eq!(status, 400);
}

/// Findings 7 and 8: parallel wrong passwords get at most the allowed guesses, and throttled
/// tries reach the audit once per window, not once each.
#[tokio::test]
async fn findings_7_and_8_the_log_in_throttle_is_atomic_and_audits_once() {
    let app = TestApp::spawn().await;
    let account = app.create_account("acme").await;
    app.create_user(account, "ann@acme.example.com", "viewer", "").await;
    let mut tries = Vec::new();
    for _ in 0..16 {
        let client = app.new_client();
        tries.push(tokio::spawn(async move {
            let token = client.csrf("/login").await;
            let res = client
                .post_form_raw(
                    "/login",
                    &[("csrf_token", &token), ("email", "ann@acme.example.com"), ("password", "wrong-guess-123"), ("next", "/")],
                )
                .await;
            res.status().as_u16()
        }));
    }
    let mut statuses = Vec::new();
    for t in tries {
        statuses.push(t.await.unwrap());
    }
    let throttled = statuses.iter().filter(|s| **s == 429).count();
    let guesses = statuses.len() - throttled;
    assert!(guesses <= 5, "at most 5 guesses, got {guesses}: {statuses:?}");
    assert!(throttled >= 11, "{statuses:?}");
    let mut conn = app.conn().await;
    #[derive(diesel::QueryableByName)]
    struct N {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let n: N = diesel_async::RunQueryDsl::get_result(
        diesel::sql_query("SELECT count(*) AS n FROM audit_events WHERE action = 'login.throttled'"),
        &mut conn,
    )
    .await
    .unwrap();
    assert_eq!(n.n, 1, "one throttling event per window");
}

/// Finding 10 (hash): numbers that jsonb writes differently (-0.0, large floats) still verify.
#[tokio::test]
async fn finding_10_audit_hashes_survive_jsonb_number_forms() {
    use diesel_async::AsyncConnection;
    let app = TestApp::spawn().await;
    let account = app.create_account("acme").await;
    let mut conn = app.conn().await;
    let event = railyard::db::audit::NewEvent::account(account, "user:test", "test.numbers", "n")
        .with_details(json!({"negative_zero": -0.0, "big": 1e20, "small": 1.5e-7, "int": 12345678901234567i64}));
    let now = app.clock_now();
    conn.transaction(async |c| railyard::db::audit::append(c, event, now).await).await.unwrap();
    let report = railyard::db::audit::verify(&mut conn, Some(account)).await.unwrap();
    assert_eq!(report.broken, None, "{report:?}");
}

/// Finding 3: a small definition with nested anchors (billion laughs) is refused at once, by line.
#[tokio::test]
async fn finding_3_yaml_anchors_and_aliases_are_refused() {
    let app = TestApp::spawn().await;
    let (_, admin, _) = app.admin_session("acme").await;
    let token = app.api_token(&admin).await;
    let mut bomb = String::from("a0: &a0 [\"lol\", \"lol\", \"lol\", \"lol\", \"lol\", \"lol\", \"lol\", \"lol\", \"lol\"]\n");
    for i in 1..10 {
        let prev = i - 1;
        bomb.push_str(&format!("a{i}: &a{i} [*a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}]\n"));
    }
    bomb.push_str("name: Bomb\nphases: [{key: p, name: P, activities: [{key: a, name: A, kind: manual, description: *a9}]}]\n");
    let (status, e) = body(app.api_post(&token, "/api/v1/processes", &json!({"definition": bomb})).await).await;
    assert_eq!(status, 422, "{e}");
    assert_eq!(e["error"]["code"], "definition_refused", "{e}");
    let message = e["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("line 1") && message.contains("anchors and aliases"), "{message}");
    let (_, listed) = body(app.api_get(&token, "/api/v1/processes").await).await;
    assert_eq!(listed["processes"].as_array().map(Vec::len), Some(0), "nothing saved");
}

/// Finding 10 (separation of duties): an approver's delegation to the release's manager does
/// not let the manager approve their own release.
#[tokio::test]
async fn finding_10_a_delegation_does_not_undo_separation_of_duties() {
    let app = TestApp::spawn().await;
    let w = crate::engine::world(&app, &["qa1"], &[("qa", &["qa1"])]).await;
    let yaml = "name: Sign-off\nphases:\n  - key: p\n    name: Approve\n    activities:\n      - {key: ok, name: Go/no-go, kind: approval, approvers: \"group:qa\", separation_of_duties: true}\n";
    let id = crate::engine::start(&app, &w, yaml, json!({})).await;
    app.run_until_idle().await;
    let qa1 = app.new_client();
    assert_eq!(qa1.login("qa1@acme.example.com", PASSWORD).await.status(), 303);
    let delegation = [("delegate", "rm@acme.example.com"), ("starts_at", "2026-11-28T08:00"), ("ends_at", "2026-12-05T08:00")];
    assert_eq!(qa1.post_form("/profile/delegations", &delegation).await.status(), 303);
    let (status, e) = crate::engine::act(&app, &w.rm_token, id, "p", "ok", "approve", json!({})).await;
    assert_eq!(status, 403, "{e}");
    assert!(e["error"]["message"].as_str().unwrap_or_default().contains("separation of duties"), "{e}");
    let (status, _) = crate::engine::act(&app, &w.tokens["qa1"], id, "p", "ok", "approve", json!({})).await;
    assert_eq!(status, 200);
}

/// Finding 10 (cross-org reads): another org's input set is not prefilled, another org's
/// deployments are not listed, and list totals count only visible releases.
#[tokio::test]
async fn finding_10_no_cross_org_reads() {
    let app = TestApp::spawn().await;
    let (account, admin, _) = app.admin_session("acme").await;
    let admin_token = app.api_token(&admin).await;
    let res = app.api_send(reqwest::Method::PATCH, &admin_token, "/api/v1/settings", &json!({"release_level": "organization"})).await;
    assert_eq!(res.status(), 200);
    app.create_org(account, "payments").await;
    app.create_org(account, "retail").await;
    let (status, env) = body(app.api_post(&admin_token, "/api/v1/environments", &json!({"name": "PROD1", "production": true})).await).await;
    assert_eq!(status, 201, "{env}");
    let yaml = "name: Retail deploy\ninputs: [{name: token, type: string, secret: true}, {name: version, type: string, required: true}]\nphases:\n  - key: p\n    name: P\n    activities:\n      - {key: ship, name: Ship, kind: manual, deploys: {service: till, version: \"${inputs.version}\", environment: PROD1}}\n";
    let (status, p) = body(app.api_post(&admin_token, "/api/v1/processes", &json!({"definition": yaml, "org": "retail"})).await).await;
    assert_eq!(status, 201, "{p}");
    let pid = p["id"].as_i64().unwrap();
    let (status, set) = body(
        app.api_post(
            &admin_token,
            &format!("/api/v1/processes/{pid}/input-sets"),
            &json!({"name": "prod", "values": {"token": "retail-secret-42", "version": "1.0"}}),
        )
        .await,
    )
    .await;
    assert_eq!(status, 201, "{set}");
    let (status, r) = body(
        app.api_post(
            &admin_token,
            "/api/v1/releases",
            &json!({"process_id": pid, "name": "Till 1.0", "org": "retail", "inputs": {"version": "1.0"}, "activate": true}),
        )
        .await,
    )
    .await;
    assert_eq!(status, 201, "{r}");
    let id = r["id"].as_i64().unwrap();
    app.run_until_idle().await;
    let (status, _) =
        body(app.api_post(&admin_token, &format!("/api/v1/releases/{id}/activities/p/ship/complete"), &json!({})).await).await;
    assert_eq!(status, 200);
    app.run_until_idle().await;

    app.create_user(account, "prm@acme.example.com", "org_release_manager", "payments").await;
    let prm = app.new_client();
    assert_eq!(prm.login("prm@acme.example.com", PASSWORD).await.status(), 303);
    let res = prm.get(&format!("/releases/new?process_id={pid}&input_set=prod")).await;
    assert_eq!(res.status(), 403);
    assert!(!res.text().await.unwrap().contains("retail-secret-42"));
    let mut conn = app.conn().await;
    let user = railyard::db::models::users::User::by_email(&mut conn, "prm@acme.example.com").await.unwrap().unwrap();
    let token = app.api_token(&user).await;
    let (_, deployments) = body(app.api_get(&token, "/api/v1/deployments").await).await;
    assert_eq!(deployments["deployments"].as_array().map(Vec::len), Some(0), "{deployments}");
    let (_, list) = body(app.api_get(&token, "/api/v1/releases").await).await;
    assert_eq!(list["total"], 0, "{list}");
    let (_, all) = body(app.api_get(&admin_token, "/api/v1/deployments").await).await;
    assert_eq!(all["deployments"].as_array().map(Vec::len), Some(1));
}

/// Finding 10 (password change): guessing the current password on the profile page is
/// throttled like log-in.
#[tokio::test]
async fn finding_10_the_current_password_check_is_throttled() {
    let app = TestApp::spawn().await;
    let (_, _, client) = app.admin_session("acme").await;
    let mut statuses = Vec::new();
    for i in 0..8 {
        let guess = format!("guess-number-{i}");
        let res = client
            .post_form(
                "/profile/password",
                &[("current_password", &guess), ("new_password", "a-new-password"), ("confirm_password", "a-new-password")],
            )
            .await;
        statuses.push(res.status().as_u16());
    }
    assert!(statuses.iter().filter(|s| **s == 429).count() >= 3, "{statuses:?}");
    assert!(statuses[..5].iter().all(|s| *s != 429), "{statuses:?}");
}

/// Finding 10 (sign-off links): once the e-mail is sent, no plaintext sign-off token stays in
/// the outbox, and the in-app notification never had one.
#[tokio::test]
async fn finding_10_sign_off_tokens_do_not_stay_behind() {
    let app = TestApp::spawn().await;
    let w = crate::engine::world(&app, &["qa1"], &[("qa", &["qa1"])]).await;
    let yaml = "name: Sign-off\nphases:\n  - key: p\n    name: Approve\n    activities:\n      - {key: ok, name: Go/no-go, kind: approval, approvers: \"group:qa\"}\n";
    crate::engine::start(&app, &w, yaml, json!({})).await;
    app.run_until_idle().await;
    let mut conn = app.conn().await;
    #[derive(diesel::QueryableByName)]
    struct N {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let sent: N = diesel_async::RunQueryDsl::get_result(
        diesel::sql_query("SELECT count(*) AS n FROM notification_outbox WHERE kind = 'approval.waiting' AND delivered_at IS NOT NULL"),
        &mut conn,
    )
    .await
    .unwrap();
    assert!(sent.n >= 2, "the approval's e-mail and in-app rows went out");
    let left: N = diesel_async::RunQueryDsl::get_result(
        diesel::sql_query(
            "SELECT (SELECT count(*) FROM notification_outbox WHERE payload::text LIKE '%/signoff/%') + \
                    (SELECT count(*) FROM notifications WHERE link LIKE '%/signoff/%') AS n",
        ),
        &mut conn,
    )
    .await
    .unwrap();
    assert_eq!(left.n, 0);
}

/// Finding 8 (client address): `X-Forwarded-For` counts only from `RAILYARD_TRUSTED_PROXIES`.
#[tokio::test]
async fn finding_8_forwarded_for_is_believed_only_from_trusted_proxies() {
    async fn failed_from(app: &TestApp, forwarded: &str) -> Vec<String> {
        let client = app.new_client();
        let token = client.csrf("/login").await;
        let res = client
            .http
            .post(format!("{}/login", app.address))
            .header("X-Forwarded-For", forwarded)
            .form(&[("csrf_token", token.as_str()), ("email", "ann@acme.example.com"), ("password", "wrong-guess-123"), ("next", "/")])
            .send()
            .await
            .unwrap();
        assert_ne!(res.status(), 303);
        let mut conn = app.conn().await;
        #[derive(diesel::QueryableByName)]
        struct Addr {
            #[diesel(sql_type = diesel::sql_types::Text)]
            client_addr: String,
        }
        let rows: Vec<Addr> =
            diesel_async::RunQueryDsl::load(diesel::sql_query("SELECT client_addr FROM login_failures ORDER BY id"), &mut conn)
                .await
                .unwrap();
        rows.into_iter().map(|r| r.client_addr).collect()
    }
    let direct = TestApp::spawn().await;
    let account = direct.create_account("acme").await;
    direct.create_user(account, "ann@acme.example.com", "viewer", "").await;
    assert_eq!(failed_from(&direct, "203.0.113.7").await, ["127.0.0.1"], "a forged header is ignored");

    let proxied = TestApp::spawn_with(|s| s.trusted_proxies = "127.0.0.1".into()).await;
    let account = proxied.create_account("acme").await;
    proxied.create_user(account, "ann@acme.example.com", "viewer", "").await;
    assert_eq!(failed_from(&proxied, "198.51.100.1, 203.0.113.7").await, ["203.0.113.7"], "the proxy's word");
}

/// Finding 9: sends run concurrently, so a slow endpoint does not hold up another release's.
/// The slow endpoint answers only once the other request has arrived (or fails after 5 s):
/// sent one by one, it would fail.
#[tokio::test]
async fn finding_9_a_slow_endpoint_does_not_hold_up_other_sends() {
    use std::sync::Arc;
    let fast_seen = Arc::new(tokio::sync::Notify::new());
    let seen = fast_seen.clone();
    let server = actix_web::HttpServer::new(move || {
        let seen = seen.clone();
        actix_web::App::new()
            .route(
                "/slow",
                actix_web::web::post().to({
                    let seen = seen.clone();
                    move || {
                        let seen = seen.clone();
                        async move {
                            match tokio::time::timeout(std::time::Duration::from_secs(5), seen.notified()).await {
                                Ok(()) => actix_web::HttpResponse::Ok().json(json!({"waited": true})),
                                Err(_) => actix_web::HttpResponse::InternalServerError().finish(),
                            }
                        }
                    }
                }),
            )
            .route(
                "/fast",
                actix_web::web::post().to(move || {
                    let seen = seen.clone();
                    async move {
                        seen.notify_waiters();
                        seen.notify_one();
                        actix_web::HttpResponse::Ok().json(json!({}))
                    }
                }),
            )
    })
    .workers(2)
    .bind("127.0.0.1:0")
    .unwrap();
    let port = server.addrs()[0].port();
    tokio::spawn(server.run());
    let app = TestApp::spawn().await;
    let w = crate::engine::world(&app, &[], &[]).await;
    crate::webhooks::allow(&app, &[format!("127.0.0.1:{port}")]).await;
    let mut ids = Vec::new();
    for (name, path) in [("Slow", "slow"), ("Fast", "fast")] {
        let yaml = format!("name: {name}\nphases: [{{key: p, name: P, activities: [{{key: hook, name: Hook, kind: webhook, config: {{url: \"http://127.0.0.1:{port}/{path}\"}}}}]}}]\n");
        ids.push(crate::engine::start(&app, &w, &yaml, json!({})).await);
    }
    app.run_until_idle().await;
    for id in ids {
        let r = crate::engine::get(&app, &w, id).await;
        assert_eq!(r["status"], "Success", "{r}");
    }
}

#[tokio::test]
async fn finding_10_https_answers_carry_hsts_and_plain_http_does_not() {
    let app = TestApp::spawn_with(|s| {
        s.base_url = "https://railyard.example.com".into();
        s.secret_key = Some(vec![7u8; 64]);
    })
    .await;
    for path in ["/healthz", "/login", "/api/v1/me"] {
        let res = app.client.get(path).await;
        let hsts = res.headers().get("strict-transport-security").map(|v| v.to_str().unwrap_or("").to_string());
        assert_eq!(hsts.as_deref(), Some("max-age=31536000; includeSubDomains"), "{path}");
    }
    let plain = TestApp::spawn().await;
    assert!(plain.client.get("/login").await.headers().get("strict-transport-security").is_none());
}

#[tokio::test]
async fn faults_an_exhausted_pool_answers_503_after_a_short_wait_and_recovers() {
    let app = TestApp::spawn_with(|s| {
        s.pool_size = 2;
        s.pool_wait = std::time::Duration::from_millis(300);
    })
    .await;
    let account = app.create_account("busy").await;
    let user = app.create_user(account, "dev@busy.example.com", "viewer", "").await;
    let token = app.api_token(&user).await;
    let browser = app.new_client();
    assert_eq!(browser.login(&user.email, crate::common::PASSWORD).await.status(), 303);
    let held = (app.state.pool.get().await.expect("one"), app.state.pool.get().await.expect("two"));

    let started = std::time::Instant::now();
    let res = app.api_get(&token, "/api/v1/releases").await;
    assert_eq!(res.status(), 503, "waits, then answers instead of hanging");
    assert_eq!(res.headers().get("retry-after").and_then(|v| v.to_str().ok()), Some("5"));
    let (_, error) = body(res).await;
    assert_eq!(error["error"]["code"], "unavailable", "{error}");
    assert!(started.elapsed() < std::time::Duration::from_secs(5), "bounded by the pool's wait");
    let page = browser.get("/releases").await;
    assert_eq!(page.status(), 503, "pages too");
    assert!(page.text().await.unwrap_or_default().contains("try again"), "as a readable page");

    drop(held);
    assert_eq!(app.api_get(&token, "/api/v1/releases").await.status(), 200, "recovers when connections return");
}

// ---- Security review II (issue 29) ----

/// `name: x # c<U+2028>variables: [{… &a [x, x, …]}, {… [*a, *a, …]}]`: a comment to a YAML 1.2
/// scanner, anchors to libyaml.
fn hidden_anchor_payload(width: usize) -> String {
    let xs = vec!["x"; width].join(", ");
    let refs = vec!["*a"; width].join(", ");
    format!("name: x # c\u{2028}variables: [{{name: a, value: &a [{xs}]}}, {{name: b, value: [{refs}]}}]\nphases: []\n")
}

/// Review II, finding 1 (high): the hidden-anchor payload is refused with 422 naming the line
/// break, through POST and PUT of the API and through the YAML editor; a definition past the
/// 100,000-value bound is refused with 422 too.
#[tokio::test]
async fn review_2_finding_1_hidden_anchors_and_oversized_definitions_get_422() {
    let app = TestApp::spawn().await;
    let (_, admin, client) = app.admin_session("acme").await;
    let token = app.api_token(&admin).await;
    let payload = hidden_anchor_payload(2000);
    assert!(payload.len() < 64 * 1024);
    let (status, e) = body(app.api_post(&token, "/api/v1/processes", &json!({"definition": payload})).await).await;
    assert_eq!(status, 422, "{e}");
    assert_eq!(e["error"]["code"], "definition_refused", "{e}");
    assert!(e["error"]["message"].as_str().unwrap_or_default().contains("U+2028"), "{e}");

    let good = "name: Fine\nphases: [{key: p, name: P, activities: [{key: a, name: A, kind: manual}]}]\n";
    let (status, made) = body(app.api_post(&token, "/api/v1/processes", &json!({"definition": good})).await).await;
    assert_eq!(status, 201, "{made}");
    let id = made["id"].as_i64().expect("id");
    let (status, e) =
        body(app.api_send(reqwest::Method::PUT, &token, &format!("/api/v1/processes/{id}"), &json!({"definition": payload})).await).await;
    assert_eq!(status, 422, "{e}");

    let res = client.post_form(&format!("/processes/{id}/yaml"), &[("yaml", &payload)]).await;
    assert_eq!(res.status(), 422);
    let html = res.text().await.expect("page");
    assert!(html.contains("U+2028"), "the editor names the line break");

    let many = vec!["0"; 100_001].join(",");
    let json_text = format!("{{\"name\": \"Big\", \"phases\": [], \"variables\": [{{\"name\": \"a\", \"value\": [{many}]}}]}}");
    let big: serde_json::Value = serde_json::from_str(&json_text).expect("json");
    let (status, e) = body(app.api_post(&token, "/api/v1/processes", &json!({"definition": big})).await).await;
    assert_eq!(status, 422, "{e}");
    assert!(e["error"]["message"].as_str().unwrap_or_default().contains("100000 values"), "{e}");
    let (status, e) = body(app.api_post(&token, "/api/v1/processes", &json!({"definition": json_text})).await).await;
    assert_eq!(status, 422, "the same as YAML text: {e}");
}

/// A listener that records every connection made to it: standing in an environment proxy
/// variable, it must see none.
struct RecordingProxy {
    url: String,
    connections: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl RecordingProxy {
    async fn start() -> RecordingProxy {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("address"));
        let connections = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let seen = connections.clone();
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                drop(socket);
            }
        });
        RecordingProxy { url, connections }
    }

    fn seen(&self) -> usize {
        self.connections.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// Review II, finding 4: with `HTTP_PROXY`, `HTTPS_PROXY` and `ALL_PROXY` set in the environment
/// of a `railyard serve` child, a webhook and the chat webhook still reach their receivers
/// directly (the address checks hold), and the proxy sees nothing.
#[tokio::test]
async fn review_2_finding_4_environment_proxies_are_never_used_for_webhooks() {
    use crate::webhooks::{admin_token, allow, Receiver};
    let app = TestApp::spawn().await;
    app.clock.set(chrono::Utc::now());
    let w = crate::engine::world(&app, &[], &[]).await;
    let rx = Receiver::start().await;
    let proxy = RecordingProxy::start().await;
    allow(&app, &[format!("127.0.0.1:{}", rx.port)]).await;
    let admin = admin_token(&app).await;
    let res =
        app.api_send(reqwest::Method::PATCH, &admin, "/api/v1/settings", &json!({"chat_webhook_url": format!("{}/chat", rx.base)})).await;
    assert_eq!(res.status(), 200);
    let mut server = tokio::process::Command::new(env!("CARGO_BIN_EXE_railyard"))
        .arg("serve")
        .env("DATABASE_URL", &app.database_url)
        .env("RAILYARD_BIND", "127.0.0.1:0")
        .env("RAILYARD_WEBHOOK_PRIVATE_ALLOW", "127.0.0.1")
        .env("RUST_LOG", "warn")
        .envs(["HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"].map(|k| (k, proxy.url.as_str())))
        .env_remove("NO_PROXY")
        .env_remove("no_proxy")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("start railyard serve");
    let yaml = format!(
        "name: Proxied\nphases: [{{key: p, name: P, activities: [{{key: hook, name: Hook, kind: webhook, config: {{url: \"{}/hook\"}}}}]}}]\n",
        rx.base
    );
    let id = crate::engine::start(&app, &w, &yaml, json!({})).await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let r = crate::engine::get(&app, &w, id).await;
        let chat = rx.to("/chat");
        if r["status"] == "Success" && !chat.is_empty() {
            break;
        }
        assert!(server.try_wait().expect("child").is_none(), "railyard serve stopped");
        assert!(std::time::Instant::now() < deadline, "not done in 60 s: {} {r}, chat posts {}", r["status"], chat.len());
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    assert_eq!(rx.to("/hook").len(), 1, "the webhook reached its receiver directly");
    assert_eq!(proxy.seen(), 0, "the proxy saw no connection");
    let _ = server.kill().await;
}

/// A receiver that echoes the request's `Authorization` header: 404 with it in a text body on
/// `/fail`, 200 with it in a JSON answer on `/ok`.
async fn echoing_receiver() -> String {
    let server = actix_web::HttpServer::new(|| {
        actix_web::App::new().default_service(actix_web::web::to(|req: actix_web::HttpRequest| async move {
            let auth = req.headers().get("authorization").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
            if req.path() == "/ok" {
                actix_web::HttpResponse::Ok().json(json!({"seen": auth, "nested": {"list": [auth.clone()]}, "version": "1.2.3"}))
            } else {
                actix_web::HttpResponse::NotFound().body(format!("<h1>Not found</h1><pre>Authorization: {auth}</pre>"))
            }
        }))
    })
    .workers(1)
    .bind("127.0.0.1:0")
    .expect("bind");
    let base = format!("http://127.0.0.1:{}", server.addrs()[0].port());
    tokio::spawn(server.run());
    base
}

/// Review II, finding 5: a receiver echoing the secret (`Authorization: Bearer …`) in a 404 page
/// and in a 2xx JSON answer: the secret appears nowhere — release JSON, release page and its
/// attempt list, audit trail, stored attempts and outputs.
#[tokio::test]
async fn review_2_finding_5_secrets_echoed_by_a_receiver_are_masked_before_storing() {
    let app = TestApp::spawn().await;
    let w = crate::engine::world(&app, &[], &[]).await;
    let base = echoing_receiver().await;
    let port = base.rsplit(':').next().unwrap().to_string();
    crate::webhooks::allow(&app, &[format!("127.0.0.1:{port}")]).await;
    let secret = "tok-9f8e7d6c5b4a-secret";
    let yaml = format!(
        "name: Echo\ninputs: [{{name: token, type: string, secret: true, required: true}}]\nphases: [{{key: p, name: P, activities: [\
         {{key: ok, name: Ok, kind: webhook, config: {{url: \"{base}/ok\", headers: {{Authorization: \"Bearer ${{inputs.token}}\"}}}}}}, \
         {{key: fail, name: Fail, kind: webhook, depends_on: [ok], config: {{url: \"{base}/fail\", headers: {{Authorization: \"Bearer ${{inputs.token}}\"}}}}}}]}}]\n"
    );
    let id = crate::engine::start(&app, &w, &yaml, json!({"inputs": {"token": secret}})).await;
    app.run_until_idle().await;
    let r = crate::engine::get(&app, &w, id).await;
    assert_eq!(r["status"], "OnHold", "{r}");
    assert!(!r.to_string().contains(secret), "release JSON: {r}");
    let ok = crate::engine::activity(&r, "p", "ok");
    assert_eq!(ok["outputs"]["version"], "1.2.3", "outputs are still read: {ok}");
    assert_eq!(ok["outputs"]["seen"], "Bearer ********", "{ok}");

    let client = app.new_client();
    assert_eq!(client.login("admin@acme.example.com", PASSWORD).await.status(), 303);
    let page = client.get_html(&format!("/releases/{id}")).await;
    assert!(page.contains("Not found") || page.contains("404"), "the attempt list shows the answer");
    assert!(!page.contains(secret), "release page");
    let (_, audit) = body(app.api_get(&w.rm_token, &format!("/api/v1/releases/{id}/audit")).await).await;
    assert!(!audit.to_string().contains(secret), "audit: {audit}");

    let mut conn = app.conn().await;
    #[derive(diesel::QueryableByName)]
    struct Leak {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let like = format!("%{secret}%");
    let leak: Leak = diesel_async::RunQueryDsl::get_result(
        diesel::sql_query(
            "SELECT (SELECT count(*) FROM webhook_attempts WHERE response_body LIKE $1 OR error LIKE $1) \
                  + (SELECT count(*) FROM release_activities WHERE outputs::text LIKE $1 OR coalesce(status_reason, '') LIKE $1) \
                  + (SELECT count(*) FROM audit_events WHERE details::text LIKE $1 OR coalesce(reason, '') LIKE $1) AS n",
        )
        .bind::<diesel::sql_types::Text, _>(&like),
        &mut conn,
    )
    .await
    .unwrap();
    assert_eq!(leak.n, 0, "nothing stored holds the secret");
}

/// Review II, finding 7 (headers): a tenant's header may not pose as the engine's own.
#[tokio::test]
async fn review_2_finding_7_reserved_headers_are_refused_at_save() {
    let app = TestApp::spawn().await;
    let (_, admin, _) = app.admin_session("acme").await;
    let token = app.api_token(&admin).await;
    for name in ["idempotency-key", "Railyard-Callback-Url"] {
        let yaml = format!(
            "name: Forged\nphases: [{{key: p, name: P, activities: [{{key: h, name: H, kind: webhook, config: {{url: 'https://ci.example.com/x', headers: {{{name}: forged}}}}}}]}}]\n"
        );
        let (status, e) = body(app.api_post(&token, "/api/v1/processes", &json!({"definition": yaml})).await).await;
        assert_eq!(status, 422, "{e}");
        assert_eq!(e["error"]["code"], "reserved_header", "{e}");
        assert_eq!(e["error"]["field"], format!("phases.p.activities.h.config.headers.{name}"), "{e}");
    }
}

/// Review II, finding 7 (demo CI): `railyard demo-ci` calls back only to
/// `<RAILYARD_BASE_URL>/api/v1/callbacks/…`; any other `Railyard-Callback-Url` gets nothing.
#[tokio::test]
async fn review_2_finding_7_the_demo_ci_calls_back_only_to_railyard_s_callback_path() {
    use crate::webhooks::Receiver;
    let railyard = Receiver::start().await;
    let elsewhere = Receiver::start().await;
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("address").port()
    };
    let _ci = tokio::process::Command::new(env!("CARGO_BIN_EXE_railyard"))
        .args(["demo-ci", "--address", &format!("127.0.0.1:{port}"), "--speed", "0.01"])
        .env("RAILYARD_BASE_URL", &railyard.base)
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("start demo-ci");
    let http = reqwest::Client::new();
    let ci = format!("http://127.0.0.1:{port}");
    for _ in 0..100 {
        if http.get(format!("{ci}/healthz")).send().await.is_ok() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let job = |callback: String| {
        http.post(format!("{ci}/smoke")).header("Railyard-Callback-Url", callback).json(&json!({"version": "1.0"})).send()
    };
    for bad in [
        format!("{}/api/v1/callbacks/t0k", elsewhere.base),
        format!("{}/anything", railyard.base),
        format!("{}/api/v1/callbacks/t0k/../../admin", railyard.base),
    ] {
        let res = job(bad.clone()).await.expect("demo-ci answers");
        assert_eq!(res.status(), 400, "{bad}");
    }
    let res = job(format!("{}/api/v1/callbacks/good-token", railyard.base)).await.expect("demo-ci answers");
    assert_eq!(res.status(), 202);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while railyard.to("/api/v1/callbacks/good-token").is_empty() {
        assert!(std::time::Instant::now() < deadline, "no callback arrived");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(elsewhere.received.lock().unwrap().is_empty(), "nothing went elsewhere");
    assert_eq!(railyard.received.lock().unwrap().len(), 1, "only the real callback: {:?}", railyard.received.lock().unwrap());
}

/// Review II, item 9: `from`/`to` take a date on the calendar and the release list; a 300 KB
/// phase name is refused with 422 naming the field; a 1 MB completion comment too.
#[tokio::test]
async fn review_2_item_9_dates_as_bounds_and_text_limits() {
    let app = TestApp::spawn().await;
    let w = crate::engine::world(&app, &[], &[]).await;
    for path in ["/api/v1/calendar?from=2026-12-01&to=2026-12-31", "/api/v1/releases?from=2026-12-01&to=2026-12-31"] {
        let (status, answer) = body(app.api_get(&w.rm_token, path).await).await;
        assert_eq!(status, 200, "{path}: {answer}");
    }
    let (status, e) = body(app.api_get(&w.rm_token, "/api/v1/calendar?from=someday").await).await;
    assert_eq!((status, e["error"]["field"].as_str()), (400, Some("from")), "{e}");

    let long = "P".repeat(300 * 1024);
    let definition =
        json!({"name": "Long", "phases": [{"key": "p", "name": long, "activities": [{"key": "a", "name": "A", "kind": "manual"}]}]});
    let (status, e) = body(app.api_post(&w.rm_token, "/api/v1/processes", &json!({"definition": definition})).await).await;
    assert_eq!(status, 422, "{}", e.to_string().chars().take(300).collect::<String>());
    assert_eq!(e["error"]["field"], "phases.p.name");

    let id = crate::engine::start(
        &app,
        &w,
        "name: Task\nphases: [{key: p, name: P, activities: [{key: a, name: A, kind: manual, owner: 'user:rm@acme.example.com'}]}]\n",
        json!({}),
    )
    .await;
    app.run_until_idle().await;
    let comment = "c".repeat(1024 * 1024 - 100);
    let (status, e) =
        body(app.api_post(&w.rm_token, &format!("/api/v1/releases/{id}/activities/p/a/complete"), &json!({"comment": comment})).await)
            .await;
    assert_eq!((status, e["error"]["field"].as_str()), (422, Some("comment")), "{}", e.to_string().chars().take(300).collect::<String>());
}

/// Review II, finding 8 (links): the release page names only the linked releases the reader may
/// see, and counts the others.
#[tokio::test]
async fn review_2_finding_8_the_release_page_names_only_visible_linked_releases() {
    let app = TestApp::spawn().await;
    let (account, admin, admin_client) = app.admin_session("acme").await;
    let admin_token = app.api_token(&admin).await;
    app.create_org(account, "payments").await;
    app.create_org(account, "retail").await;
    let yaml = "name: Plain\nphases: [{key: p, name: P, activities: [{key: a, name: A, kind: manual}]}]\n";
    let (_, account_process) = body(app.api_post(&admin_token, "/api/v1/processes", &json!({"definition": yaml})).await).await;
    let (status, main) =
        body(app.api_post(&admin_token, "/api/v1/releases", &json!({"process_id": account_process["id"], "name": "Weekly train"})).await)
            .await;
    assert_eq!(status, 201, "{main}");
    let (status, hotfix) = body(
        app.api_post(&admin_token, "/api/v1/releases", &json!({"process_id": account_process["id"], "name": "Secret retail hotfix"})).await,
    )
    .await;
    assert_eq!(status, 201, "{hotfix}");
    let (main_id, hotfix_id) = (main["id"].as_i64().unwrap(), hotfix["id"].as_i64().unwrap());
    // An org's hotfix of the account's train (made here as the data would stand).
    {
        let mut conn = app.conn().await;
        diesel_async::RunQueryDsl::execute(
            diesel::sql_query("UPDATE releases SET org_id = (SELECT id FROM organizations WHERE slug = 'retail') WHERE id = $1")
                .bind::<diesel::sql_types::BigInt, _>(hotfix_id),
            &mut conn,
        )
        .await
        .unwrap();
        diesel_async::RunQueryDsl::execute(
            diesel::sql_query("INSERT INTO release_links (account_id, release_id, kind, target_id) VALUES ($1, $2, 'hotfix_for', $3)")
                .bind::<diesel::sql_types::BigInt, _>(account)
                .bind::<diesel::sql_types::BigInt, _>(hotfix_id)
                .bind::<diesel::sql_types::BigInt, _>(main_id),
            &mut conn,
        )
        .await
        .unwrap();
    }
    app.create_user(account, "pv@acme.example.com", "viewer", "payments").await;
    let viewer = app.new_client();
    assert_eq!(viewer.login("pv@acme.example.com", PASSWORD).await.status(), 303);
    let page = viewer.get_html(&format!("/releases/{main_id}")).await;
    assert!(!page.contains("Secret retail hotfix") && !page.contains(&format!("#{hotfix_id} ")), "not named");
    assert!(page.contains("1 linked release you cannot see"), "counted");
    let page = admin_client.get_html(&format!("/releases/{main_id}")).await;
    assert!(page.contains("Secret retail hotfix") && !page.contains("you cannot see"), "the admin sees it");
}

/// Review II, finding 8 (status links): a link works for the days chosen at creation (30 by
/// default) and then answers 404.
#[tokio::test]
async fn review_2_finding_8_status_links_expire() {
    let app = TestApp::spawn().await;
    let (_, admin, client) = app.admin_session("acme").await;
    let token = app.api_token(&admin).await;
    let yaml = "name: Plain\nphases: [{key: p, name: P, activities: [{key: a, name: A, kind: manual}]}]\n";
    let (_, p) = body(app.api_post(&token, "/api/v1/processes", &json!({"definition": yaml})).await).await;
    let (_, r) = body(app.api_post(&token, "/api/v1/releases", &json!({"process_id": p["id"], "name": "Shared"})).await).await;
    let id = r["id"].as_i64().unwrap();
    let link_of = |html: &str| {
        html.split("/status/")
            .nth(1)
            .map(|s| s.split(|c: char| !c.is_ascii_alphanumeric() && c != '-' && c != '_').next().unwrap_or("").to_string())
    };
    let res = client.post_form(&format!("/releases/{id}/status-link"), &[("expires_in_days", "1")]).await;
    assert_eq!(res.status(), 303);
    let short = link_of(&client.get_html(&format!("/releases/{id}")).await).expect("the link is shown once");
    let res = client.post_form(&format!("/releases/{id}/status-link"), &[]).await;
    assert_eq!(res.status(), 303);
    let default = link_of(&client.get_html(&format!("/releases/{id}")).await).expect("the link is shown once");
    let res = client.post_form(&format!("/releases/{id}/status-link"), &[("expires_in_days", "5000")]).await;
    assert_eq!(res.status(), 422, "a lifetime past the longest is refused");
    let anonymous = app.new_client();
    assert_eq!(anonymous.get(&format!("/status/{short}")).await.status(), 200);
    app.clock.advance(chrono::TimeDelta::days(2));
    assert_eq!(anonymous.get(&format!("/status/{short}")).await.status(), 404, "expired after a day");
    assert_eq!(anonymous.get(&format!("/status/{default}")).await.status(), 200);
    app.clock.advance(chrono::TimeDelta::days(29));
    assert_eq!(anonymous.get(&format!("/status/{default}")).await.status(), 404, "expired after 30 days");
}
