use crate::common::{TestApp, PASSWORD};
use serde_json::json;

#[tokio::test]
async fn log_in_through_the_form_reaches_the_dashboard() {
    let app = TestApp::spawn().await;
    let account = app.create_account("acme").await;
    app.create_user(account, "ana@acme.example.com", "viewer", "").await;
    let client = app.new_client();

    let anonymous = client.get("/").await;
    assert_eq!(anonymous.status(), 303);
    assert_eq!(anonymous.headers()["location"], "/login?next=/");

    let res = client.login("ana@acme.example.com", PASSWORD).await;
    assert_eq!(res.status(), 303);
    assert_eq!(res.headers()["location"], "/");
    let dashboard = client.get("/").await;
    assert_eq!(dashboard.status(), 200);
    let html = dashboard.text().await.unwrap();
    assert!(html.contains("Welcome, Test ana@acme.example.com"), "{html}");
    assert!(html.contains("My work"));
}

#[tokio::test]
async fn wrong_password_keeps_the_email_and_the_sixth_attempt_is_throttled() {
    let app = TestApp::spawn().await;
    let account = app.create_account("acme").await;
    app.create_user(account, "ana@acme.example.com", "viewer", "").await;
    let client = app.new_client();

    for attempt in 1..=5 {
        let res = client.login("ana@acme.example.com", "not-the-password").await;
        assert_eq!(res.status(), 422, "attempt {attempt}");
        let html = res.text().await.unwrap();
        assert!(html.contains("E-mail or password is not correct."), "attempt {attempt}");
        assert!(html.contains(r#"value="ana@acme.example.com""#), "the e-mail is kept");
    }
    let sixth = client.login("ana@acme.example.com", PASSWORD).await;
    assert_eq!(sixth.status(), 429, "even the right password waits once throttled");
    let retry_after: i64 = sixth.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!(retry_after > 0 && retry_after <= 15 * 60);

    // The same throttle applies to an unknown e-mail, so a 429 reveals nothing.
    for _ in 0..5 {
        assert_eq!(client.login("nobody@acme.example.com", "x").await.status(), 422);
    }
    assert_eq!(client.login("nobody@acme.example.com", "x").await.status(), 429);

    // After the window the user may try again, and a success resets the count.
    app.clock.advance(chrono::TimeDelta::minutes(16));
    assert_eq!(client.login("ana@acme.example.com", PASSWORD).await.status(), 303);

    let mut conn = app.conn().await;
    let report = railyard::db::audit::verify(&mut conn, Some(account)).await.unwrap();
    assert!(report.broken.is_none());
    use diesel::prelude::*;
    use diesel_async::RunQueryDsl;
    use railyard::db::schema::audit_events::dsl as a;
    let actions: Vec<String> =
        a::audit_events.filter(a::account_id.eq(account)).order(a::seq).select(a::action).load(&mut conn).await.unwrap();
    assert_eq!(actions.iter().filter(|x| *x == "login.failed").count(), 5);
    assert_eq!(actions.iter().filter(|x| *x == "login.throttled").count(), 1);
}

#[tokio::test]
async fn log_out_revokes_the_session() {
    let app = TestApp::spawn().await;
    let (_, _, client) = app.admin_session("acme").await;
    let cookie_jar_client = client.http.clone();
    assert_eq!(client.get("/").await.status(), 200);
    let res = client.post_form("/logout", &[]).await;
    assert_eq!(res.status(), 303);
    assert_eq!(cookie_jar_client.get(format!("{}/", app.address)).send().await.unwrap().status(), 303);
}

#[tokio::test]
async fn passwords_are_argon2id_and_a_change_ends_other_sessions() {
    let app = TestApp::spawn().await;
    let account = app.create_account("acme").await;
    let user = app.create_user(account, "ana@acme.example.com", "viewer", "").await;
    assert!(user.password_hash.starts_with("$argon2id$"), "{}", user.password_hash);

    let laptop = app.new_client();
    let phone = app.new_client();
    assert_eq!(laptop.login(&user.email, PASSWORD).await.status(), 303);
    assert_eq!(phone.login(&user.email, PASSWORD).await.status(), 303);
    let res = laptop
        .post_form(
            "/profile/password",
            &[("current_password", PASSWORD), ("new_password", "a-new-password"), ("confirm_password", "a-new-password")],
        )
        .await;
    assert_eq!(res.status(), 303);
    assert_eq!(laptop.get("/").await.status(), 200, "the browser that changed it continues");
    assert_eq!(phone.get("/").await.status(), 303, "every other session ended");
    assert_eq!(app.new_client().login(&user.email, "a-new-password").await.status(), 303);
}

#[tokio::test]
async fn disabling_a_user_revokes_sessions_on_every_server_and_tokens() {
    let mut app = TestApp::spawn().await;
    let (account, _, admin) = app.admin_session("acme").await;
    let ana = app.create_user(account, "ana@acme.example.com", "viewer", "").await;
    let token = app.api_token(&ana).await;
    let browser = app.new_client();
    assert_eq!(browser.login(&ana.email, PASSWORD).await.status(), 303);
    let second = app.spawn_second_server().await;
    let on_second = browser.at(&second);
    assert_eq!(on_second.get("/").await.status(), 200, "the session cookie works on the second server");
    assert_eq!(app.api_get(&token, "/api/v1/me").await.status(), 200);

    let res = admin.post_form(&format!("/admin/users/{}/disable", ana.id), &[]).await;
    assert_eq!(res.status(), 303);

    let replay = on_second.get("/").await;
    assert_eq!(replay.status(), 303, "the old cookie is refused on the second server");
    assert!(replay.headers()["location"].to_str().unwrap().starts_with("/login"));
    assert_eq!(browser.get("/").await.status(), 303);
    let api = app.api_get(&token, "/api/v1/me").await;
    assert_eq!(api.status(), 401);
    let body: serde_json::Value = api.json().await.unwrap();
    assert_eq!(body["error"]["code"], "unauthorized");
    assert_eq!(app.new_client().login(&ana.email, PASSWORD).await.status(), 422, "a disabled user cannot log in");
}

#[tokio::test]
async fn api_me_describes_the_token_owner() {
    let app = TestApp::spawn().await;
    let account = app.create_account("acme").await;
    app.create_org(account, "payments").await;
    let user = app.create_user(account, "rm@acme.example.com", "org_release_manager", "payments").await;
    let token = app.api_token(&user).await;
    let res = app.api_get(&token, "/api/v1/me").await;
    assert_eq!(res.status(), 200);
    let me: serde_json::Value = res.json().await.unwrap();
    assert_eq!(me["email"], "rm@acme.example.com");
    assert_eq!(me["account"], "acme");
    assert_eq!(me["time_zone"], "UTC");
    assert_eq!(me["roles"], json!([{"role": "org_release_manager", "org": "payments"}]));
    assert_eq!(app.api_get("ry_wrong", "/api/v1/me").await.status(), 401);
    assert_eq!(app.client.get("/api/v1/me").await.status(), 401);
}
