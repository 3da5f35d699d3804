//! API tokens: made on the profile page or the CLI (never with a token), listed, revoked and expiring; a
//! password reset and disabling the user revoke them (DESIGN §10, issue 14 item 8).

use crate::common::{body, TestApp, PASSWORD};
use chrono::TimeDelta;
use serde_json::json;

#[tokio::test]
async fn tokens_are_listed_and_revoked_through_the_api_but_never_made_with_one() {
    let app = TestApp::spawn().await;
    let account = app.create_account("tok").await;
    let user = app.create_user(account, "dev@tok.example.com", "viewer", "").await;
    let first = app.api_token(&user).await;
    let second = app.api_token(&user).await;

    // Security review II, finding 2: a leaked short-lived token must not mint a lasting one.
    let (status, refused) = body(app.api_post(&first, "/api/v1/me/tokens", &json!({"name": "forever"})).await).await;
    assert_eq!(status, 403, "{refused}");
    assert_eq!(refused["error"]["code"], "token_from_token", "{refused}");
    assert!(refused.get("token").is_none());

    let (status, list) = body(app.api_get(&second, "/api/v1/me/tokens").await).await;
    assert_eq!(status, 200);
    let tokens = list["tokens"].as_array().expect("tokens");
    assert_eq!(tokens.len(), 2, "the refused request made nothing: {list}");
    assert!(tokens.iter().all(|t| t.get("token").is_none() && t["active"] == true), "{list}");

    let id = tokens.iter().map(|t| t["id"].as_i64().expect("id")).max().expect("newest");
    let res = app.api_send(reqwest::Method::DELETE, &first, &format!("/api/v1/me/tokens/{id}"), &json!({})).await;
    assert_eq!(res.status(), 204);
    let (status, error) = body(app.api_get(&second, "/api/v1/me").await).await;
    assert_eq!(status, 401, "a revoked token is refused at once: {error}");

    // Another user's token is not found.
    let other = app.create_user(account, "ops@tok.example.com", "viewer", "").await;
    let other_token = app.api_token(&other).await;
    let (_, others) = body(app.api_get(&other_token, "/api/v1/me/tokens").await).await;
    let other_id = others["tokens"][0]["id"].as_i64().expect("id");
    let res = app.api_send(reqwest::Method::DELETE, &first, &format!("/api/v1/me/tokens/{other_id}"), &json!({})).await;
    assert_eq!(res.status(), 404);
    assert_eq!(app.api_get(&other_token, "/api/v1/me").await.status(), 200);
}

#[tokio::test]
async fn an_expired_token_gets_401() {
    let app = TestApp::spawn().await;
    let account = app.create_account("exp").await;
    let user = app.create_user(account, "dev@exp.example.com", "viewer", "").await;
    let token = app.api_token(&user).await;
    let expires = app.clock_now() + TimeDelta::hours(2);
    let short = {
        let mut conn = app.conn().await;
        railyard::db::models::api_tokens::create(&mut conn, account, user.id, "short", Some(expires), app.clock_now())
            .await
            .expect("token")
            .1
    };
    assert_eq!(app.api_get(&short, "/api/v1/me").await.status(), 200);
    app.clock.advance(TimeDelta::hours(3));
    assert_eq!(app.api_get(&short, "/api/v1/me").await.status(), 401, "expired");
    let (_, list) = body(app.api_get(&token, "/api/v1/me/tokens").await).await;
    assert!(list["tokens"].as_array().expect("tokens").iter().any(|t| t["name"] == "short" && t["active"] == false), "{list}");
}

#[tokio::test]
async fn a_token_revoked_on_the_profile_page_gets_401_at_once() {
    let app = TestApp::spawn().await;
    let account = app.create_account("prof").await;
    let user = app.create_user(account, "dev@prof.example.com", "viewer", "").await;
    let client = app.new_client();
    assert_eq!(client.login(&user.email, PASSWORD).await.status(), 303);

    let res = client.post_form("/profile/tokens", &[("name", "laptop <script>"), ("expires_at", "")]).await;
    assert_eq!(res.status(), 200);
    let html = res.text().await.expect("page");
    assert!(html.contains("laptop &#60;script&#62;"), "the name is listed, escaped");
    let token = html.split("id=\"new-token\">").nth(1).and_then(|rest| rest.split('<').next()).expect("the new token, shown once");
    assert_eq!(app.api_get(token, "/api/v1/me").await.status(), 200);
    assert!(!client.get_html("/profile").await.contains(token), "shown only once");

    let (_, list) = body(app.api_get(token, "/api/v1/me/tokens").await).await;
    let id = list["tokens"][0]["id"].as_i64().expect("id");
    let res = client.post_form(&format!("/profile/tokens/{id}/revoke"), &[]).await;
    assert_eq!(res.status(), 303);
    assert_eq!(app.api_get(token, "/api/v1/me").await.status(), 401);

    // A field error keeps what was typed.
    let res = client.post_form("/profile/tokens", &[("name", "backup"), ("expires_at", "yesterday")]).await;
    assert_eq!(res.status(), 422);
    let html = res.text().await.expect("page");
    assert!(html.contains("value=\"backup\"") && html.contains("yesterday"), "kept the input and named the field");
}

#[tokio::test]
async fn a_password_reset_or_disabling_the_user_revokes_the_tokens() {
    let app = TestApp::spawn().await;
    let (account, _admin, admin_client) = app.admin_session("rev").await;
    let reset = app.create_user(account, "reset@rev.example.com", "viewer", "").await;
    let disabled = app.create_user(account, "gone@rev.example.com", "viewer", "").await;
    let (reset_token, disabled_token) = (app.api_token(&reset).await, app.api_token(&disabled).await);

    let res = admin_client.post_form(&format!("/admin/users/{}/password", reset.id), &[("password", "another-long-password")]).await;
    assert!(res.status().is_redirection() || res.status().is_success(), "{}", res.status());
    assert_eq!(app.api_get(&reset_token, "/api/v1/me").await.status(), 401);

    let res = admin_client.post_form(&format!("/admin/users/{}/disable", disabled.id), &[]).await;
    assert!(res.status().is_redirection() || res.status().is_success(), "{}", res.status());
    let res = admin_client.post_form(&format!("/admin/users/{}/enable", disabled.id), &[]).await;
    assert!(res.status().is_redirection() || res.status().is_success(), "{}", res.status());
    assert_eq!(app.api_get(&disabled_token, "/api/v1/me").await.status(), 401, "re-enabling does not bring tokens back");
}
