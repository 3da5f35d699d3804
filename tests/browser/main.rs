//! Browser tests: Debian's chromium driven through chromedriver (one driver per test binary).

#[path = "../common/mod.rs"]
mod common;
mod harness;

use common::{TestApp, PASSWORD};

#[tokio::test]
async fn log_in_through_chromium_and_see_the_dashboard() {
    let app = TestApp::spawn().await;
    let account = app.create_account("acme").await;
    app.create_user(account, "ana@acme.example.com", "account_admin", "").await;
    let browser = harness::Browser::open().await;
    browser.log_in(&app.address, "ana@acme.example.com", PASSWORD).await;
    let heading = browser.text("h1").await;
    assert_eq!(heading, "Welcome, Test ana@acme.example.com");
    assert!(browser.client.current_url().await.unwrap().path() == "/");

    // An htmx form: errors swap in place (200), then a valid submit redirects.
    browser.goto(&format!("{}/admin/environments", app.address)).await;
    browser.fill("#name", "PROD 1").await;
    browser.click("#environment-form button[type=submit]").await;
    let error = browser.wait_text(".field-error").await;
    assert!(error.contains("may contain only letters"), "{error}");
    assert_eq!(browser.value("#name").await, "PROD 1", "the typed value is kept");
    browser.fill("#name", "PROD1").await;
    browser.click("#environment-form button[type=submit]").await;
    let flash = browser.wait_text(".flash-success").await;
    assert!(flash.contains("Environment PROD1 created"), "{flash}");
    browser.close().await;
}

#[tokio::test]
async fn build_a_two_phase_process_in_the_editor() {
    let app = TestApp::spawn().await;
    let account = app.create_account("acme").await;
    app.create_user(account, "rhea@acme.example.com", "account_release_manager", "").await;
    let browser = harness::Browser::open().await;
    browser.log_in(&app.address, "rhea@acme.example.com", PASSWORD).await;

    browser.goto(&format!("{}/processes", app.address)).await;
    browser.fill("#new-name", "Two Phase Release").await;
    browser.click("#new-process-form button[type=submit]").await;
    browser.wait_for_text(".flash-success", "Process Two Phase Release created").await;

    browser.fill("#phase-key", "build").await;
    browser.fill("#phase-name", "Build").await;
    browser.click("#phase-form button[type=submit]").await;
    browser.wait_for_text(".flash-success", "Phase build added").await;

    browser.click("#phase-build a.add-activity").await;
    browser.fill("#a-key", "compile").await;
    browser.fill("#a-name", "Compile").await;
    browser.click("#activity-form button[type=submit]").await;
    browser.wait_for_text(".flash-success", "Activity build.compile saved").await;

    browser.fill("#phase-key", "deploy").await;
    browser.fill("#phase-name", "Deploy").await;
    browser.fill("#phase-depends", "build").await;
    browser.click("#phase-form button[type=submit]").await;
    browser.wait_for_text(".flash-success", "Phase deploy added").await;

    browser.click("#phase-deploy a.add-activity").await;
    browser.fill("#a-key", "approve").await;
    browser.fill("#a-name", "Go/no-go").await;
    browser.client.find(fantoccini::Locator::Css("#a-kind")).await.unwrap().select_by_value("approval").await.unwrap();
    browser.fill("#a-approvers", "user:rhea@acme.example.com").await;
    browser.click("#activity-form button[type=submit]").await;
    browser.wait_for_text(".flash-success", "Activity deploy.approve saved").await;

    browser.click("#save-process").await;
    browser.wait_for_text(".flash-success", "Saved as version 1").await;
    assert_eq!(browser.text("#phase-deploy .after").await, "after: build");
    browser.wait_for_text("table.list", "v1").await;

    // What the browser saved is the stored version 1.
    let mut conn = app.conn().await;
    use diesel::prelude::*;
    use diesel_async::RunQueryDsl;
    use railyard::db::schema::process_versions::dsl as v;
    let stored: serde_json::Value = v::process_versions.filter(v::version.eq(1)).select(v::definition).first(&mut conn).await.unwrap();
    assert_eq!(stored["phases"][1]["depends_on"], serde_json::json!(["build"]));
    assert_eq!(stored["phases"][1]["activities"][0]["kind"], "approval");
    browser.close().await;
}
