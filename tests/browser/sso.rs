//! Single sign-on in chromium, through the real provider's own log-in and consent pages.

use crate::common::oidc::{free_port, settings, Provider};
use crate::common::TestApp;
use crate::harness;

#[tokio::test]
async fn a_new_person_signs_in_through_the_provider_and_lands_on_the_dashboard_with_their_groups_role() {
    let port = free_port();
    let app = TestApp::spawn_with(|s| s.oidc = Some(settings(port))).await;
    let account = app.create_account("acme").await;
    {
        let mut conn = app.conn().await;
        let actor = railyard::ops::Actor::system(account, "test");
        let choices = railyard::ops::sso::SsoSettingsInput { create_users: true, ..Default::default() };
        railyard::ops::sso::update_settings(&mut conn, &actor, &choices, app.clock_now()).await.unwrap();
        railyard::ops::sso::add_mapping(&mut conn, &actor, ("release-managers", "account_release_manager", ""), app.clock_now())
            .await
            .unwrap();
    }
    let _provider = Provider::start(
        port,
        &format!("{}/login/sso/callback", app.address),
        serde_json::json!({"alice": {"email": "alice@acme.example.com", "name": "Alice Example", "groups": ["release-managers"]}}),
    )
    .await;
    // The provider was down when the server started; the next SSO request discovers it.
    assert_eq!(app.new_client().get("/login/sso").await.status(), 303);

    let browser = harness::Browser::open().await;
    browser.goto(&format!("{}/login", app.address)).await;
    browser.wait_text("#sso-login").await;
    browser.click("#sso-login").await;
    // The provider's own pages: sign-in, then consent.
    browser.fill("input[name=login]", "alice").await;
    browser.fill("input[name=password]", "anything").await;
    browser.click("button[type=submit]").await;
    browser.wait_for_text("h1", "Authorize").await;
    browser.click("button[type=submit]").await;
    browser.wait_for_text("h1", "Welcome, Alice Example").await;
    let url = browser.client.current_url().await.unwrap();
    assert_eq!((url.host_str(), url.port(), url.path()), (Some("127.0.0.1"), Some(app.port), "/"), "on the dashboard");
    browser.close().await;

    let mut conn = app.conn().await;
    let user =
        railyard::db::models::users::User::by_email(&mut conn, "alice@acme.example.com").await.unwrap().expect("created just in time");
    let roles: Vec<String> = railyard::db::models::sso::bindings_of(&mut conn, user.id)
        .await
        .unwrap()
        .into_iter()
        .map(|(_, b, _)| b.role.as_str().to_string())
        .collect();
    assert_eq!(roles, ["account_release_manager"]);
}
