use crate::common::TestApp;
use serde_json::json;

#[tokio::test]
async fn another_accounts_objects_answer_404_in_pages_and_api() {
    let app = TestApp::spawn().await;
    let (account_a, admin_a, _) = app.admin_session("alpha").await;
    let (_, admin_b, browser_b) = app.admin_session("beta").await;
    let token_a = app.api_token(&admin_a).await;
    let token_b = app.api_token(&admin_b).await;

    let env: serde_json::Value =
        app.api_post(&token_a, "/api/v1/environments", &json!({"name": "SECRET-PROD", "production": true})).await.json().await.unwrap();
    let group: serde_json::Value =
        app.api_post(&token_a, "/api/v1/groups", &json!({"name": "alpha-ops", "members": [admin_a.email]})).await.json().await.unwrap();
    let env_id = env["id"].as_i64().unwrap();
    let group_id = group["id"].as_i64().unwrap();
    assert!(account_a > 0);

    for path in [format!("/admin/environments/{env_id}"), format!("/admin/groups/{group_id}")] {
        let res = browser_b.get(&path).await;
        assert_eq!(res.status(), 404, "{path}");
        assert!(!res.text().await.unwrap().contains("SECRET-PROD"));
    }
    // Changing them is refused the same way, and changes nothing.
    assert_eq!(browser_b.post_form(&format!("/admin/environments/{env_id}/delete"), &[]).await.status(), 404);
    assert_eq!(browser_b.post_form(&format!("/admin/groups/{group_id}/delete"), &[]).await.status(), 404);
    assert_eq!(browser_b.post_form(&format!("/admin/environments/{env_id}"), &[("name", "MINE")]).await.status(), 404);

    for path in ["/api/v1/environments/SECRET-PROD", "/api/v1/groups/alpha-ops"] {
        let res = app.api_get(&token_b, path).await;
        assert_eq!(res.status(), 404, "{path}");
        let body: serde_json::Value = res.json().await.unwrap();
        assert_eq!(body["error"]["code"], "not_found");
    }
    assert_eq!(app.api_send(reqwest::Method::DELETE, &token_b, "/api/v1/environments/SECRET-PROD", &json!({})).await.status(), 404);
    let listed: serde_json::Value = app.api_get(&token_b, "/api/v1/environments").await.json().await.unwrap();
    assert_eq!(listed["environments"], json!([]));
    // A group in B cannot take A's users as members.
    let res = app.api_post(&token_b, "/api/v1/groups", &json!({"name": "b-team", "members": [admin_a.email]})).await;
    assert_eq!(res.status(), 422);

    assert_eq!(app.api_get(&token_a, "/api/v1/environments/SECRET-PROD").await.status(), 200, "still there for its owner");
    assert_eq!(app.api_get(&token_a, "/api/v1/groups/alpha-ops").await.status(), 200);
}
