use crate::common::{csrf_from, TestApp};
use serde_json::json;

#[tokio::test]
async fn posts_need_this_sessions_csrf_token() {
    let app = TestApp::spawn().await;
    let (_, admin, alice) = app.admin_session("acme").await;
    let (_, _, bob) = app.admin_session("other").await;
    let bobs_token = bob.csrf("/profile").await;
    let form = |token: Option<&str>| {
        let mut f = vec![("name".to_string(), "PROD1".to_string())];
        if let Some(t) = token {
            f.push(("csrf_token".into(), t.to_string()));
        }
        f
    };
    let post = |fields: Vec<(String, String)>| {
        let http = alice.http.clone();
        let url = format!("{}/admin/environments", app.address);
        async move { http.post(url).form(&fields).send().await.unwrap() }
    };

    let missing = post(form(None)).await;
    assert_eq!(missing.status(), 403);
    assert!(missing.text().await.unwrap().contains("missing its security token"));
    assert_eq!(post(form(Some("not-a-token"))).await.status(), 403);
    assert_eq!(post(form(Some(&bobs_token))).await.status(), 403, "another session's token");
    // A header works as well as the form field (htmx sends it from hx-headers).
    let own = alice.csrf("/profile").await;
    let via_header = alice
        .http
        .post(format!("{}/admin/services", app.address))
        .header("X-CSRF-Token", &own)
        .form(&[("name", "ledger")])
        .send()
        .await
        .unwrap();
    assert_eq!(via_header.status(), 303);
    assert_eq!(post(form(Some(&own))).await.status(), 303, "own token works");

    // Nothing was created by the refused requests.
    let token = app.api_token(&admin).await;
    let envs: serde_json::Value = app.api_get(&token, "/api/v1/environments").await.json().await.unwrap();
    assert_eq!(envs["environments"].as_array().unwrap().len(), 1);

    // The API with a Bearer token needs no CSRF token.
    let res = app.api_post(&token, "/api/v1/services", &json!({"name": "payments-api"})).await;
    assert_eq!(res.status(), 201);
}

#[tokio::test]
async fn log_in_needs_the_pre_login_token_and_a_session_gets_a_new_one() {
    let app = TestApp::spawn().await;
    let account = app.create_account("acme").await;
    app.create_user(account, "ana@acme.example.com", "viewer", "").await;
    let client = app.new_client();
    let res = client.post_form_raw("/login", &[("email", "ana@acme.example.com"), ("password", crate::common::PASSWORD)]).await;
    assert_eq!(res.status(), 403);
    let prelogin = client.csrf("/login").await;
    let res = client
        .post_form_raw("/login", &[("csrf_token", "forged"), ("email", "ana@acme.example.com"), ("password", crate::common::PASSWORD)])
        .await;
    assert_eq!(res.status(), 403);
    let res = client
        .post_form_raw("/login", &[("csrf_token", &prelogin), ("email", "ana@acme.example.com"), ("password", crate::common::PASSWORD)])
        .await;
    assert_eq!(res.status(), 303);
    let session_token = csrf_from(&client.get_html("/profile").await).unwrap();
    assert_ne!(session_token, prelogin, "a new session gets a new token");
}
