use crate::common::{TestApp, PASSWORD};
use serde_json::json;

#[tokio::test]
async fn forms_name_the_field_and_keep_what_was_typed() {
    let app = TestApp::spawn().await;
    let (_, _, admin) = app.admin_session("acme").await;
    let long = "x".repeat(10_000);

    let res = admin.post_form("/admin/users", &[("email", ""), ("name", ""), ("password", ""), ("role", "viewer")]).await;
    assert_eq!(res.status(), 422);
    let html = res.text().await.unwrap();
    for expected in ["E-mail is required", "Name is required", "Password must be at least 8 characters"] {
        assert!(html.contains(expected), "{expected}");
    }

    let res =
        admin.post_form("/admin/users", &[("email", "not-an-email"), ("name", &long), ("password", PASSWORD), ("role", "overlord")]).await;
    assert_eq!(res.status(), 422);
    let html = res.text().await.unwrap();
    assert!(html.contains("is not a valid e-mail address"));
    assert!(html.contains("Name must be at most 200 characters"));
    assert!(html.contains("Role &#34;overlord&#34; is not a role; use one of"), "{html}");
    assert!(html.contains(r#"value="not-an-email""#), "typed input is kept");
    assert!(!html.contains(PASSWORD), "a typed password is never echoed");

    // htmx gets the same form as a 200, so it swaps it in.
    let token = admin.csrf("/profile").await;
    let res = admin
        .http
        .post(format!("{}/admin/environments", app.address))
        .header("HX-Request", "true")
        .header("X-CSRF-Token", token)
        .form(&[("name", "PROD 1!")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.text().await.unwrap().contains("Name may contain only letters"));

    // Duplicates are a field error too, and a huge form body is refused with 413.
    assert_eq!(admin.post_form("/admin/services", &[("name", "ledger")]).await.status(), 303);
    let dup = admin.post_form("/admin/services", &[("name", "ledger")]).await;
    assert_eq!(dup.status(), 422);
    assert!(dup.text().await.unwrap().contains("a service &#34;ledger&#34; already exists"));
    let huge = "y".repeat(200 * 1024);
    let token = admin.csrf("/profile").await;
    let res = admin
        .http
        .post(format!("{}/admin/services", app.address))
        .header("X-CSRF-Token", token)
        .form(&[("name", huge.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 413);

    let res = admin
        .post_form(
            "/admin/settings",
            &[
                ("release_level", "galaxy"),
                ("time_zone", "Mars/Base"),
                ("reminder_interval_minutes", "soon"),
                ("webhook_allow_list", "ci.example.com\nhttps://bad"),
            ],
        )
        .await;
    assert_eq!(res.status(), 422);
    let html = res.text().await.unwrap();
    assert!(html.contains("Reminder interval must be a whole number of minutes"));
    assert!(html.contains(r#"value="Mars/Base""#));
}

#[tokio::test]
async fn the_api_names_the_field_for_bad_input() {
    let app = TestApp::spawn().await;
    let (_, admin, _) = app.admin_session("acme").await;
    let token = app.api_token(&admin).await;
    let post_raw = |path: &'static str, body: Vec<u8>| {
        let http = app.client.http.clone();
        let url = format!("{}{path}", app.address);
        let token = token.clone();
        async move { http.post(url).bearer_auth(token).header("content-type", "application/json").body(body).send().await.unwrap() }
    };
    let error = |res: reqwest::Response| async move {
        let status = res.status().as_u16();
        let body: serde_json::Value = res.json().await.unwrap();
        (status, body["error"].clone())
    };

    let (status, e) = error(post_raw("/api/v1/environments", b"{\"name\": ".to_vec()).await).await;
    assert_eq!(status, 400);
    assert!(e["message"].as_str().unwrap().contains("malformed JSON"), "{e}");

    let (status, e) = error(post_raw("/api/v1/environments", br#"{"name": "PROD1", "production": "yes"}"#.to_vec()).await).await;
    assert_eq!(status, 400);
    assert_eq!(e["field"], "production");

    let (status, e) = error(app.api_post(&token, "/api/v1/environments", &json!({"name": ""})).await).await;
    assert_eq!((status, e["code"].as_str(), e["field"].as_str()), (422, Some("invalid"), Some("name")));

    let (status, e) = error(app.api_post(&token, "/api/v1/services", &json!({"name": "s".repeat(10_000)})).await).await;
    assert_eq!((status, e["field"].as_str()), (422, Some("name")));

    let (status, e) = error(app.api_post(&token, "/api/v1/groups", &json!({"name": "qa", "members": ["not-an-email"]})).await).await;
    assert_eq!((status, e["field"].as_str()), (422, Some("members")));

    let (status, e) = error(app.api_post(&token, "/api/v1/orgs", &json!({"slug": "Bad Slug", "name": "x"})).await).await;
    assert_eq!((status, e["field"].as_str()), (422, Some("slug")));

    let (status, e) = error(app.api_post(&token, "/api/v1/orgs", &json!({"slug": "ok", "name": "x", "colour": "red"})).await).await;
    assert_eq!(status, 400);
    assert!(e["message"].as_str().unwrap().contains("unknown field"), "{e}");

    let (status, e) =
        error(app.api_send(reqwest::Method::PATCH, &token, "/api/v1/settings", &json!({"release_level": "galaxy"})).await).await;
    assert_eq!((status, e["field"].as_str()), (422, Some("release_level")));
    let (status, e) =
        error(app.api_send(reqwest::Method::PATCH, &token, "/api/v1/settings", &json!({"webhook_allow_list": ["https://x/y"]})).await)
            .await;
    assert_eq!((status, e["field"].as_str()), (422, Some("webhook_allow_list")));

    let big = format!("{{\"name\": \"{}\"}}", "z".repeat(2 * 1024 * 1024));
    let (status, e) = error(post_raw("/api/v1/services", big.into_bytes()).await).await;
    assert_eq!((status, e["code"].as_str()), (413, Some("payload_too_large")));

    let (status, e) = error(app.api_get(&token, "/api/v1/no-such-thing").await).await;
    assert_eq!((status, e["code"].as_str()), (404, Some("not_found")));

    // The server is still fine.
    assert_eq!(app.client.get("/healthz").await.status(), 200);
}
