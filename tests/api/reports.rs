//! Reports, insights and the audit pages and API (DESIGN §8).

use crate::common::{body, TestApp};
use chrono::TimeDelta;
use diesel_async::AsyncConnection;
use railyard::db::audit::{self, NewEvent};
use serde_json::{json, Value};

const DEPLOY: &str = "name: Deploy payments\ninputs:\n  - {name: version, type: string, required: true}\n  - {name: targets, type: environment_list, required: true}\nphases:\n  - key: p\n    name: P\n    activities:\n      - {key: ship, name: Ship, kind: manual, deploys: {service: payment-service, version: \"${inputs.version}\", environment: \"${inputs.targets}\"}}\n";

struct Fixture {
    account: i64,
    token: String,
    process_id: Value,
}

async fn fixture(app: &TestApp) -> Fixture {
    let (account, admin, _) = app.admin_session("acme").await;
    let token = app.api_token(&admin).await;
    // Releases here deploy the same service to PROD1 at once on purpose: no deploy lock.
    for (name, production) in [("QA", false), ("PROD1", true)] {
        let env = json!({"name": name, "production": production, "deploy_lock": "none"});
        let (status, env) = body(app.api_post(&token, "/api/v1/environments", &env).await).await;
        assert_eq!(status, 201, "{env}");
    }
    let (status, p) = body(app.api_post(&token, "/api/v1/processes", &json!({"definition": DEPLOY})).await).await;
    assert_eq!(status, 201, "{p}");
    Fixture { account, token, process_id: p["id"].clone() }
}

/// Creates and activates a release; `ship_after` later its deploy activity is completed.
async fn create(app: &TestApp, f: &Fixture, name: &str, version: &str, targets: &[&str], extra: Value) -> i64 {
    let mut req = json!({"process_id": f.process_id, "name": name, "inputs": {"version": version, "targets": targets}, "activate": true});
    if let (Some(obj), Value::Object(more)) = (req.as_object_mut(), extra) {
        obj.extend(more);
    }
    let (status, r) = body(app.api_post(&f.token, "/api/v1/releases", &req).await).await;
    assert_eq!(status, 201, "{r}");
    app.run_until_idle().await;
    r["id"].as_i64().unwrap()
}

async fn ship(app: &TestApp, f: &Fixture, id: i64) {
    let (status, done) = body(app.api_post(&f.token, &format!("/api/v1/releases/{id}/activities/p/ship/complete"), &json!({})).await).await;
    assert_eq!(status, 200, "{done}");
    app.run_until_idle().await;
}

async fn text(app: &TestApp, token: &str, path: &str) -> (u16, String) {
    let res = app.api_get(token, path).await;
    (res.status().as_u16(), res.text().await.unwrap())
}

fn csv_rows(text: &str) -> Vec<Vec<String>> {
    csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(text.as_bytes())
        .records()
        .map(|r| r.unwrap().iter().map(String::from).collect())
        .collect()
}

#[tokio::test]
async fn deployed_and_history_reports_agree_in_json_csv_and_html() {
    let app = TestApp::spawn().await;
    let f = fixture(&app).await;
    let first = create(&app, &f, "Payments 1.2.0", "1.2.0", &["PROD1"], json!({})).await;
    ship(&app, &f, first).await;
    app.clock.advance(TimeDelta::minutes(5));
    let second = create(&app, &f, "Payments 1.3.0", "1.3.0", &["PROD1", "QA"], json!({})).await;
    ship(&app, &f, second).await;

    let (status, report) = body(app.api_get(&f.token, "/api/v1/reports/deployed").await).await;
    assert_eq!(status, 200, "{report}");
    let cells = report["cells"].as_array().unwrap();
    assert_eq!(cells.len(), 2, "{report}");
    for cell in cells {
        assert_eq!(cell["service"], "payment-service");
        assert_eq!(cell["version"], "1.3.0", "{cell}");
        assert_eq!(cell["release_id"], second);
        assert_eq!(cell["release_name"], "Payments 1.3.0");
    }
    let (status, csv) = text(&app, &f.token, "/api/v1/reports/deployed?format=csv").await;
    assert_eq!(status, 200);
    let rows = csv_rows(&csv);
    assert_eq!(rows[0], ["service", "environment", "version", "release_id", "release_name", "deployed_at"]);
    assert_eq!(rows.len(), 3, "{csv}");
    assert!(rows[1..].iter().all(|r| r[2] == "1.3.0"), "{csv}");
    // Filtered to one environment.
    let (_, prod) = body(app.api_get(&f.token, "/api/v1/reports/deployed?environment=PROD1").await).await;
    assert_eq!(prod["cells"].as_array().unwrap().len(), 1);

    let (status, history) = body(app.api_get(&f.token, "/api/v1/reports/history?service=payment-service").await).await;
    assert_eq!(status, 200, "{history}");
    let versions: Vec<(&str, &str)> = history["deployments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| (d["version"].as_str().unwrap(), d["environment"].as_str().unwrap()))
        .collect();
    assert_eq!(versions.len(), 3, "{history}");
    assert_eq!(versions[2], ("1.2.0", "PROD1"));
    assert!(versions[..2].iter().all(|(v, _)| *v == "1.3.0"));
    let (_, csv) = text(&app, &f.token, "/api/v1/reports/history?service=payment-service&format=csv").await;
    let rows = csv_rows(&csv);
    assert_eq!(rows.len(), 4, "{csv}");
    assert_eq!(rows[3][2], "1.2.0");

    let (status, releases) = body(app.api_get(&f.token, "/api/v1/reports/releases?from=2026-11-01&to=2026-12-31").await).await;
    assert_eq!(status, 200, "{releases}");
    let listed = releases["releases"].as_array().unwrap();
    assert_eq!(listed.len(), 2, "{releases}");
    assert_eq!(listed[0]["status"], "Success");
    assert!(listed[0]["duration_seconds"].is_number());
    let (status, bad) = body(app.api_get(&f.token, "/api/v1/reports/releases?from=yesterday").await).await;
    assert_eq!(status, 400);
    assert_eq!(bad["error"]["field"], "from");

    let client = app.new_client();
    client.login("admin@acme.example.com", crate::common::PASSWORD).await;
    let html = client.get_html("/reports/deployed").await;
    assert!(html.contains("1.3.0") && html.contains(&format!("/releases/{second}")), "{html}");
    let html = client.get_html("/reports/history?service=payment-service").await;
    assert!(html.matches("1.3.0").count() >= 2);
    assert!(html.contains("1.2.0"));
    let html = client.get_html("/reports/releases?from=2026-11-01&to=2026-12-31").await;
    assert!(html.contains("Payments 1.2.0") && html.contains("Payments 1.3.0"));
    let page = client.get_html(&format!("/releases/{second}")).await;
    let contents = page.split("id=\"release-deployments\"").nth(1).unwrap_or_default();
    assert!(contents.contains("QA") && contents.contains("PROD1") && contents.contains("1.3.0"), "{page}");
    assert!(page.contains("release.activate") || page.contains("release.create"), "{page}");
    assert!(f.account > 0);
}

#[tokio::test]
async fn insights_match_a_history_worked_out_by_hand() {
    let app = TestApp::spawn().await;
    let f = fixture(&app).await;
    // R1: created, deployed 10 h later.
    let r1 = create(&app, &f, "R1", "1.0.0", &["PROD1"], json!({})).await;
    app.clock.advance(TimeDelta::hours(10));
    ship(&app, &f, r1).await;
    // R2 fails 2 h after creation.
    let r2 = create(&app, &f, "R2", "1.1.0", &["PROD1"], json!({})).await;
    app.clock.advance(TimeDelta::hours(2));
    app.force_release(r2, "active", "Failed", Some(app.clock_now())).await;
    // R3 restores 28 h after R2 failed (lead time 4 h).
    app.clock.advance(TimeDelta::hours(24));
    let r3 = create(&app, &f, "R3", "1.1.1", &["PROD1"], json!({})).await;
    app.clock.advance(TimeDelta::hours(4));
    ship(&app, &f, r3).await;
    // R4 (lead 12 h) gets a hotfix a day later, which ships after 6 h: R4 restored after 30 h.
    let r4 = create(&app, &f, "R4", "1.2.0", &["PROD1"], json!({})).await;
    app.clock.advance(TimeDelta::hours(12));
    ship(&app, &f, r4).await;
    app.clock.advance(TimeDelta::hours(24));
    let r5 = create(&app, &f, "R5", "1.2.1", &["PROD1"], json!({"type": "hotfix", "links": {"hotfix_for": r4}})).await;
    app.clock.advance(TimeDelta::hours(6));
    ship(&app, &f, r5).await;
    // A QA deployment does not count.
    let qa = create(&app, &f, "QA only", "2.0.0", &["QA"], json!({})).await;
    ship(&app, &f, qa).await;

    let (status, insights) = body(app.api_get(&f.token, "/api/v1/insights?from=2026-11-28T00:00:00Z&to=2026-12-05T00:00:00Z").await).await;
    assert_eq!(status, 200, "{insights}");
    let rows = insights["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 1, "{insights}");
    let row = &rows[0];
    assert_eq!(row["service"], "payment-service");
    assert_eq!(row["environment"], "PROD1");
    assert_eq!(row["deployments"], 4);
    assert_eq!(row["deployments_per_week"], 4.0);
    // Lead times 10, 4, 12, 6 h: median 8, p90 10 + 0.7 × 2 = 11.4.
    assert_eq!(row["lead_time_hours"]["median"], 8.0);
    assert!((row["lead_time_hours"]["p90"].as_f64().unwrap() - 11.4).abs() < 1e-9, "{row}");
    // R2 failed and R4 was hotfixed: 2 of 5.
    assert_eq!(row["change_failure_rate"], 0.4);
    // Restores of 28 h and 30 h.
    assert_eq!(row["time_to_restore_hours"]["median"], 29.0);

    let (_, csv) = text(&app, &f.token, "/api/v1/insights?from=2026-11-28&to=2026-12-04&format=csv").await;
    let rows = csv_rows(&csv);
    assert_eq!(rows.len(), 2, "{csv}");
    assert_eq!(rows[1][..4], ["payment-service", "PROD1", "4", "4.00"]);
    let client = app.new_client();
    client.login("admin@acme.example.com", crate::common::PASSWORD).await;
    let html = client.get_html("/insights?from=2026-11-28&to=2026-12-04").await;
    assert!(html.contains("<svg") && html.contains("payment-service"), "{html}");
}

#[tokio::test]
async fn the_audit_api_pages_filters_streams_csv_and_keeps_orgs_apart() {
    let app = TestApp::spawn().await;
    let (account, admin, _) = app.admin_session("acme").await;
    app.create_org(account, "payments").await;
    app.create_org(account, "retail").await;
    let admin_token = app.api_token(&admin).await;
    let res = app.api_send(reqwest::Method::PATCH, &admin_token, "/api/v1/settings", &json!({"release_level": "organization"})).await;
    assert_eq!(res.status(), 200);
    let org_rm = app.create_user(account, "orm@acme.example.com", "org_release_manager", "payments").await;
    let org_token = app.api_token(&org_rm).await;
    let yaml = |org: &str| {
        format!("name: Tiny {org}\nphases:\n  - key: p\n    name: P\n    activities:\n      - {{key: a, name: A, kind: manual}}\n")
    };
    let mut ids = Vec::new();
    for org in ["payments", "retail"] {
        let (status, p) = body(app.api_post(&admin_token, "/api/v1/processes", &json!({"definition": yaml(org), "org": org})).await).await;
        assert_eq!(status, 201, "{p}");
        let (status, r) = body(
            app.api_post(&admin_token, "/api/v1/releases", &json!({"process_id": p["id"], "name": format!("{org} weekly"), "org": org}))
                .await,
        )
        .await;
        assert_eq!(status, 201, "{r}");
        ids.push(r["id"].as_i64().unwrap());
    }
    // A hostile value, as any user-typed text could be.
    let mut conn = app.conn().await;
    for i in 0..3 {
        let event =
            NewEvent::account(account, "user:mallory@acme.example.com", "test.formula", "=HYPERLINK(\"https://evil.example\",\"x\")")
                .with_reason(format!("-{i}"));
        let now = app.clock_now();
        conn.transaction(async |c| audit::append(c, event, now).await).await.unwrap();
    }

    // The org release manager sees their org's release events only.
    let (status, page) = body(app.api_get(&org_token, "/api/v1/audit?limit=1000").await).await;
    assert_eq!(status, 200, "{page}");
    let events = page["events"].as_array().unwrap();
    assert!(!events.is_empty());
    assert!(events.iter().all(|e| e["release_id"] == ids[0]), "{page}");
    let (_, other) = body(app.api_get(&org_token, &format!("/api/v1/audit?release={}", ids[1])).await).await;
    assert_eq!(other["events"].as_array().unwrap().len(), 0, "{other}");
    let html = app.new_client();
    html.login("orm@acme.example.com", crate::common::PASSWORD).await;
    let page_html = html.get_html("/audit").await;
    assert!(
        !page_html.contains("retail weekly") && !page_html.contains("HYPERLINK") && page_html.contains("release.create"),
        "{page_html}"
    );
    // Exporting is for account auditors.
    let res = app.api_get(&org_token, "/api/v1/audit?format=csv").await;
    assert_eq!(res.status(), 403);

    // Keyset pages: two at a time, no event twice, all of them in the end.
    let (_, all) = body(app.api_get(&admin_token, "/api/v1/audit?limit=1000").await).await;
    let total = all["events"].as_array().unwrap().len();
    let mut seen = Vec::new();
    let mut after = String::new();
    loop {
        let (status, page) = body(app.api_get(&admin_token, &format!("/api/v1/audit?limit=2{after}")).await).await;
        assert_eq!(status, 200, "{page}");
        seen.extend(page["events"].as_array().unwrap().iter().map(|e| e["id"].as_i64().unwrap()));
        match page["next"].as_str() {
            Some(next) => after = format!("&after={next}"),
            None => break,
        }
    }
    assert_eq!(seen.len(), total);
    assert!(seen.windows(2).all(|w| w[0] > w[1]));

    // A filtered CSV: the header, then one row per event, formulas neutralised.
    let (status, csv) = text(&app, &admin_token, "/api/v1/audit?action=test.formula&format=csv").await;
    assert_eq!(status, 200, "{csv}");
    let rows = csv_rows(&csv);
    assert_eq!(rows[0], ["id", "chain", "seq", "at", "actor", "action", "subject", "release_id", "reason", "details"]);
    assert_eq!(rows.len(), 4, "{csv}");
    for row in &rows[1..] {
        assert_eq!(row[6], "'=HYPERLINK(\"https://evil.example\",\"x\")");
        assert!(row[8].starts_with("'-"), "{row:?}");
    }
    // The release's own trail, as JSON and CSV.
    let (status, own) = body(app.api_get(&admin_token, &format!("/api/v1/releases/{}/audit", ids[1])).await).await;
    assert_eq!(status, 200);
    assert!(own["events"].as_array().unwrap().iter().all(|e| e["release_id"] == ids[1]));
    let (status, _) = text(&app, &org_token, &format!("/api/v1/releases/{}/audit", ids[1])).await;
    assert_eq!(status, 403);
    let (_, bad) = body(app.api_get(&admin_token, "/api/v1/audit?limit=5000").await).await;
    assert_eq!(bad["error"]["field"], "limit");
}

#[tokio::test]
async fn the_dashboard_shows_what_runs_what_failed_what_comes_and_freezes() {
    let app = TestApp::spawn().await;
    let f = fixture(&app).await;
    let client = app.new_client();
    client.login("admin@acme.example.com", crate::common::PASSWORD).await;
    let empty = client.get_html("/").await;
    for words in [
        "No releases are running or on hold.",
        "No release failed, rolled back or was aborted in the last 7 days.",
        "Nothing is scheduled in the next 7 days.",
        "No freeze window now or in the next 7 days.",
    ] {
        assert!(empty.contains(words), "{words}: {empty}");
    }

    let running = create(&app, &f, "Payments running", "1.0.0", &["PROD1"], json!({})).await;
    let failed = create(&app, &f, "Payments failed", "0.9.0", &["PROD1"], json!({})).await;
    app.force_release(failed, "active", "Failed", Some(app.clock_now())).await;
    let start = app.clock_now() + TimeDelta::days(2);
    let scheduled = json!({"schedule": {"start": start.format("%Y-%m-%dT%H:%M").to_string(), "end": (start + TimeDelta::hours(2)).format("%Y-%m-%dT%H:%M").to_string(), "time_zone": "UTC"}, "activate": false});
    let (status, later) = body(
        app.api_post(
            &f.token,
            "/api/v1/releases",
            &json!({"process_id": f.process_id, "name": "Payments next week", "inputs": {"version": "1.1.0", "targets": ["PROD1"]}, "schedule": scheduled["schedule"]}),
        )
        .await,
    )
    .await;
    assert_eq!(status, 201, "{later}");
    let mut conn = app.conn().await;
    let freeze = railyard::ops::freezes::FreezeInput {
        reason: "Year-end freeze".into(),
        environments: "PROD1".into(),
        time_zone: "UTC".into(),
        starts_at: (app.clock_now() + TimeDelta::days(3)).format("%Y-%m-%dT%H:%M").to_string(),
        ends_at: (app.clock_now() + TimeDelta::days(10)).format("%Y-%m-%dT%H:%M").to_string(),
        rrule: String::new(),
        duration: String::new(),
        org: String::new(),
    };
    railyard::ops::freezes::create(&mut conn, &railyard::ops::Actor::system(f.account, "test"), &freeze, app.clock_now()).await.unwrap();

    let html = client.get_html("/").await;
    let section =
        |id: &str| html.split(&format!("id=\"{id}\"")).nth(1).and_then(|s| s.split("</section>").next()).unwrap_or_default().to_string();
    assert!(section("running").contains(&format!("/releases/{running}")) && section("running").contains("0 of 1"), "{html}");
    assert!(section("failures").contains("Payments failed"), "{html}");
    assert!(section("upcoming").contains("Payments next week"), "{html}");
    assert!(section("freezes").contains("Year-end freeze"), "{html}");
}
