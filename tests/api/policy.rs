use crate::common::{TestApp, PASSWORD};
use serde_json::json;

#[tokio::test]
async fn a_viewer_is_refused_admin_pages_and_create_forms_saying_why() {
    let app = TestApp::spawn().await;
    let account = app.create_account("acme").await;
    let viewer = app.create_user(account, "vera@acme.example.com", "viewer", "").await;
    let client = app.new_client();
    assert_eq!(client.login(&viewer.email, PASSWORD).await.status(), 303);

    let page = client.get("/admin/users").await;
    assert_eq!(page.status(), 403);
    let html = page.text().await.unwrap();
    assert!(html.contains("You may not manage users at account level: your roles (viewer) do not allow it."), "{html}");

    // The create forms of the admin area, and posting them anyway.
    for path in ["/admin/environments", "/admin/groups", "/admin/orgs", "/admin/services", "/admin/settings"] {
        assert_eq!(client.get(path).await.status(), 403, "{path}");
    }
    let res = client
        .post_form("/admin/users", &[("email", "x@acme.example.com"), ("name", "X"), ("password", PASSWORD), ("role", "account_admin")])
        .await;
    assert_eq!(res.status(), 403);
    // The navigation does not offer what the server refuses.
    let dashboard = client.get_html("/").await;
    assert!(!dashboard.contains("/admin/users"));

    let token = app.api_token(&viewer).await;
    let res = app.api_post(&token, "/api/v1/environments", &json!({"name": "PROD1"})).await;
    assert_eq!(res.status(), 403);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["error"]["code"], "forbidden");
    assert!(body["error"]["message"].as_str().unwrap().contains("manage organizations, groups, environments and services"));
    let res = app.api_send(reqwest::Method::PATCH, &token, "/api/v1/settings", &json!({"release_level": "organization"})).await;
    assert_eq!(res.status(), 403);
    assert_eq!(app.api_get(&token, "/api/v1/settings").await.status(), 200, "reading settings is allowed");
}

#[tokio::test]
async fn release_managers_are_not_admins() {
    let app = TestApp::spawn().await;
    let account = app.create_account("acme").await;
    app.create_org(account, "payments").await;
    for (email, role, org) in
        [("arm@acme.example.com", "account_release_manager", ""), ("orm@acme.example.com", "org_release_manager", "payments")]
    {
        let user = app.create_user(account, email, role, org).await;
        let client = app.new_client();
        assert_eq!(client.login(&user.email, PASSWORD).await.status(), 303);
        assert_eq!(client.get("/admin/users").await.status(), 403, "{role}");
        assert_eq!(client.get("/").await.status(), 200, "{role}");
    }
}

#[tokio::test]
async fn an_admin_manages_users_and_roles_as_a_union() {
    let app = TestApp::spawn().await;
    let (account, _, admin) = app.admin_session("acme").await;
    app.create_org(account, "payments").await;
    let res = admin
        .post_form(
            "/admin/users",
            &[("email", "Pat@Acme.example.com"), ("name", "Pat"), ("password", PASSWORD), ("role", "viewer"), ("org", "")],
        )
        .await;
    assert_eq!(res.status(), 303);
    let location = res.headers()["location"].to_str().unwrap().to_string();
    let id = location.rsplit('/').next().unwrap().to_string();
    let res = admin.post_form(&format!("/admin/users/{id}/roles"), &[("role", "org_release_manager"), ("org", "payments")]).await;
    assert_eq!(res.status(), 303);
    let html = admin.get_html(&location).await;
    assert!(html.contains("viewer") && html.contains("org_release_manager (payments)"), "{html}");

    let pat = app.new_client();
    assert_eq!(pat.login("pat@acme.example.com", PASSWORD).await.status(), 303, "e-mails are case-insensitive");
    let res = admin.post_form(&format!("/admin/users/{id}/roles"), &[("role", "org_release_manager"), ("org", "")]).await;
    assert_eq!(res.status(), 422);
    assert!(res.text().await.unwrap().contains("org_release_manager needs an organization"));
}
