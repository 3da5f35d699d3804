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
