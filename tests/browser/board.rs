//! The release board of a 12-service system release, in chromium (DESIGN §8).

use crate::common::{body, TestApp, PASSWORD};
use crate::harness;
use serde_json::{json, Value};

const SERVICES: [&str; 12] = [
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

const TRAIN: &str = "name: Train\ninputs: [{name: manifest, type: service_versions, required: true}]\nphases:\n  - key: prod1\n    name: Prod1\n    activities:\n      - {key: deploy, name: Deploy, kind: manual, for_each: \"${inputs.manifest}\", max_parallel: 12, deploys: {service: \"${item.service}\", version: \"${item.version}\", environment: PROD1}}\n";

async fn train(app: &TestApp, token: &str, process: &Value, name: &str, version_of: impl Fn(usize) -> String) -> i64 {
    let manifest: serde_json::Map<String, Value> =
        SERVICES.iter().enumerate().map(|(i, s)| (s.to_string(), json!(version_of(i)))).collect();
    let req = json!({"process_id": process["id"], "name": name, "inputs": {"manifest": manifest}, "activate": true});
    let (status, r) = body(app.api_post(token, "/api/v1/releases", &req).await).await;
    assert_eq!(status, 201, "{r}");
    app.run_until_idle().await;
    r["id"].as_i64().unwrap()
}

async fn deploy(app: &TestApp, token: &str, id: i64, service: &str) {
    let path = format!("/api/v1/releases/{id}/activities/prod1/deploy%5B{service}%5D/complete");
    let (status, r) = body(app.api_post(token, &path, &json!({})).await).await;
    assert_eq!(status, 200, "{r}");
    app.run_until_idle().await;
}

async fn count(browser: &harness::Browser, selector: &str) -> i64 {
    let script = format!("return document.querySelectorAll({selector:?}).length;");
    browser.client.execute(&script, vec![]).await.unwrap().as_i64().unwrap_or(-1)
}

#[tokio::test]
async fn the_board_of_a_twelve_service_release_marks_what_changes_and_follows_each_deploy() {
    let app = TestApp::spawn().await;
    let account = app.create_account("acme").await;
    let admin = app.create_user(account, "ada@acme.example.com", "account_admin", "").await;
    let rm = app.create_user(account, "rhea@acme.example.com", "account_release_manager", "").await;
    let admin_token = app.api_token(&admin).await;
    let token = app.api_token(&rm).await;
    assert_eq!(app.api_post(&admin_token, "/api/v1/environments", &json!({"name": "PROD1", "production": true})).await.status(), 201);
    for s in SERVICES {
        assert_eq!(app.api_post(&admin_token, "/api/v1/services", &json!({"name": s})).await.status(), 201);
    }
    let (status, process) = body(app.api_post(&token, "/api/v1/processes", &json!({"definition": TRAIN})).await).await;
    assert_eq!(status, 201, "{process}");

    // Last week's train put 2.<i>.0 of every service in PROD1.
    let last = train(&app, &token, &process, "Train 47", |i| format!("2.{i}.0")).await;
    for s in SERVICES {
        deploy(&app, &token, last, s).await;
    }
    // This week's changes half of them.
    let id = train(&app, &token, &process, "Train 48", |i| if i < 6 { format!("2.{i}.0") } else { format!("2.{i}.1") }).await;

    let browser = harness::Browser::open().await;
    browser.log_in(&app.address, &rm.email, PASSWORD).await;
    browser.goto(&format!("{}/releases/{id}", app.address)).await;
    browser.wait_text("#board-table").await;
    assert_eq!(count(&browser, "#board-table tbody tr").await, 12, "a row per service");
    assert_eq!(count(&browser, "#board-table td.board-cell.changed").await, 6, "the six services whose version differs");
    let pricing = "#board-table tr[data-service=pricing] td.board-cell";
    assert!(browser.text(pricing).await.contains("2.7.0"), "what PROD1 runs now");
    assert_eq!(count(&browser, "#board-table tr[data-service=pricing] td.board-cell.changed").await, 1);
    assert_eq!(count(&browser, "#board-table tr[data-service=ledger] td.board-cell.changed").await, 0);
    assert_eq!(count(&browser, "details.instances li.instance").await, 12, "the instances, listed compactly under their activity");

    // One deploy instance finishes: its row follows without a reload.
    deploy(&app, &token, id, "pricing").await;
    browser.wait_for_text(pricing, "Success").await;
    assert!(browser.text(pricing).await.contains("2.7.1"));
    assert_eq!(count(&browser, "#board-table td.board-cell.changed").await, 5);

    // Last week's fan-out has finished: its instances are listed when its summary is opened.
    browser.goto(&format!("{}/releases/{last}", app.address)).await;
    browser.wait_text("#instances-prod1-deploy summary").await;
    assert_eq!(count(&browser, "#instances-prod1-deploy li.instance").await, 0, "not sent with the page");
    browser.click("#instances-prod1-deploy summary").await;
    for _ in 0..100 {
        if count(&browser, "#instances-prod1-deploy li.instance").await == 12 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(count(&browser, "#instances-prod1-deploy li.instance[data-status=Success]").await, 12);
    browser.goto(&format!("{}/releases/{id}", app.address)).await;
    browser.wait_text("#board-table").await;

    let board = browser.client.find(fantoccini::Locator::Css("#board")).await.unwrap();
    let png = board.screenshot().await.unwrap();
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("release-board.png"), &png).unwrap();
    browser.close().await;
}
