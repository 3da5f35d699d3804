//! Single sign-on against a real OpenID Connect provider (`oidc-provider` from npm, started here).

use crate::common::oidc::{free_port, settings, sign_in, Provider};
use crate::common::{TestApp, PASSWORD};
use serde_json::json;

async fn app_with_provider_port() -> (TestApp, u16) {
    let port = free_port();
    let app = TestApp::spawn_with(|s| s.oidc = Some(settings(port))).await;
    (app, port)
}

async fn roles_of(app: &TestApp, email: &str) -> Vec<String> {
    let mut conn = app.conn().await;
    let Some(user) = railyard::db::models::users::User::by_email(&mut conn, email).await.unwrap() else { return vec!["<no user>".into()] };
    let mut roles: Vec<String> = railyard::db::models::sso::bindings_of(&mut conn, user.id)
        .await
        .unwrap()
        .into_iter()
        .map(|(_, b, _)| b.role.as_str().to_string())
        .collect();
    roles.sort();
    roles
}

async fn audited(app: &TestApp, action: &str) -> Vec<serde_json::Value> {
    use diesel::prelude::*;
    use diesel_async::RunQueryDsl;
    use railyard::db::schema::audit_events::dsl as a;
    let mut conn = app.conn().await;
    a::audit_events.filter(a::action.eq(action)).select(a::details).load(&mut conn).await.unwrap()
}

#[tokio::test]
async fn sso_creates_users_maps_groups_refuses_the_disabled_and_survives_a_provider_down_at_start() {
    let (app, port) = app_with_provider_port().await;
    let (account, admin, admin_client) = app.admin_session("acme").await;

    // The provider is down at start-up: the server runs, the page says so, passwords work.
    let page = app.new_client().get_html("/login").await;
    assert!(page.contains("id=\"sso-unavailable\"") && page.contains("Acme ID"), "{page}");
    assert_eq!(app.new_client().login("admin@acme.example.com", PASSWORD).await.status(), 303, "password log-in works");

    // The account creates users and maps a group to a role.
    assert_eq!(admin_client.post_form("/admin/settings/sso", &[("sso_create_users", "on")]).await.status(), 303);
    let res = admin_client
        .post_form("/admin/settings/sso/mappings", &[("provider_group", "release-managers"), ("role", "account_release_manager")])
        .await;
    assert_eq!(res.status(), 303);
    let dora = app.create_user(account, "dora@acme.example.com", "viewer", "").await;
    {
        let mut conn = app.conn().await;
        let actor = railyard::ops::Actor::user(admin.id, account, &admin.email);
        railyard::ops::users::set_disabled(&mut conn, &actor, dora.id, true, app.clock_now()).await.unwrap();
    }

    let provider = Provider::start(
        port,
        &format!("{}/login/sso/callback", app.address),
        json!({
            "alice": {"email": "alice@acme.example.com", "name": "Alice Example", "groups": ["release-managers", "staff"]},
            "dora": {"email": "dora@acme.example.com", "groups": ["release-managers"]},
            "eve": {"email": "eve@acme.example.com", "email_verified": false, "groups": ["release-managers"]},
        }),
    )
    .await;
    assert_eq!(provider.issuer, format!("http://127.0.0.1:{port}"));

    // Alice: created just in time, with the role her group maps to, and a session.
    let alice = app.new_client();
    let (url, res) = sign_in(&alice, "alice").await;
    assert_eq!(res.status(), 303, "{url}");
    assert_eq!(res.headers()["location"], "/");
    assert!(alice.get_html("/").await.contains("Alice Example"), "signed in on the dashboard");
    assert_eq!(roles_of(&app, "alice@acme.example.com").await, ["account_release_manager"]);
    assert!(!audited(&app, "user.create").await.is_empty());
    assert!(audited(&app, "login.success").await.iter().any(|d| d["via"] == "sso"));
    assert_eq!(app.new_client().login("alice@acme.example.com", "any").await.status(), 422, "no password for a user made by SSO");

    // The group removed at the provider: the mapped role goes at the next log-in.
    provider.set_accounts(json!({"alice": {"email": "alice@acme.example.com", "name": "Alice Example", "groups": ["staff"]}}));
    let again = app.new_client();
    let (_, res) = sign_in(&again, "alice").await;
    assert_eq!(res.status(), 303);
    assert!(roles_of(&app, "alice@acme.example.com").await.is_empty(), "the mapped role is gone");
    let changes = audited(&app, "user.roles_from_provider").await;
    assert!(changes.iter().any(|d| d["removed"][0]["role"] == "account_release_manager"), "{changes:?}");

    // A disabled Railyard user cannot get in, and the refusal is audited; no session is made.
    provider.set_accounts(json!({"dora": {"email": "dora@acme.example.com", "groups": ["release-managers"]}}));
    let d = app.new_client();
    let (_, res) = sign_in(&d, "dora").await;
    assert_eq!(res.status(), 403);
    assert!(res.text().await.unwrap().contains("disabled"));
    assert_eq!(d.get("/").await.status(), 303, "no session");
    assert!(audited(&app, "login.failed").await.iter().any(|x| x["reason"] == "disabled" && x["via"] == "sso"));
    assert_eq!(roles_of(&app, "dora@acme.example.com").await, ["viewer"], "nothing changed for her");

    // An unverified e-mail creates nobody.
    provider.set_accounts(json!({"eve": {"email": "eve@acme.example.com", "email_verified": false, "groups": []}}));
    let e = app.new_client();
    let (_, res) = sign_in(&e, "eve").await;
    assert_eq!(res.status(), 403);
    assert_eq!(roles_of(&app, "eve@acme.example.com").await, ["<no user>"]);

    // A forged callback (a state this server never issued) is refused and makes no session.
    let f = app.new_client();
    let res = f.get("/login/sso/callback?code=forged&state=not-ours").await;
    assert_eq!(res.status(), 403);
    assert!(res.text().await.unwrap().contains("expired or was already used"));
    assert_eq!(f.get("/").await.status(), 303, "no session");
}

#[tokio::test]
async fn with_sso_required_only_break_glass_admins_use_a_password() {
    let (app, _port) = app_with_provider_port().await;
    let (account, _admin, admin_client) = app.admin_session("acme").await;
    app.create_user(account, "rm@acme.example.com", "account_release_manager", "").await;
    let res = admin_client.post_form("/admin/settings/sso", &[("sso_required", "on"), ("sso_break_glass", "")]).await;
    assert_eq!(res.status(), 422, "a break-glass admin is needed");
    assert!(res.text().await.unwrap().contains("break-glass"));
    let res = admin_client.post_form("/admin/settings/sso", &[("sso_required", "on"), ("sso_break_glass", "rm@acme.example.com")]).await;
    assert_eq!(res.status(), 422, "only admins");
    let res = admin_client.post_form("/admin/settings/sso", &[("sso_required", "on"), ("sso_break_glass", "admin@acme.example.com")]).await;
    assert_eq!(res.status(), 303);

    let rm = app.new_client();
    let res = rm.login("rm@acme.example.com", PASSWORD).await;
    assert_eq!(res.status(), 422, "refused");
    let right_password = res.text().await.unwrap();
    assert!(right_password.contains("use the button below"), "points to single sign-on");
    // Review II, finding 8: the answer is the same with a wrong password and for nobody at all,
    // so it confirms neither the password nor the person.
    let wrong = app.new_client().login("rm@acme.example.com", "wrong-password-here").await.text().await.unwrap();
    let nobody = app.new_client().login("nobody@acme.example.com", PASSWORD).await.text().await.unwrap();
    let message = |html: &str| html.split("role=\"alert\"").nth(1).map(|s| s.split('<').next().unwrap_or("").to_string());
    assert_eq!(message(&right_password), message(&wrong));
    assert_eq!(message(&right_password), message(&nobody));
    assert_eq!(rm.get("/").await.status(), 303, "no session");
    assert!(audited(&app, "login.failed").await.iter().any(|d| d["reason"] == "sso_required"));
    assert_eq!(app.new_client().login("admin@acme.example.com", PASSWORD).await.status(), 303, "the break-glass admin gets in");
}

/// Review II, finding 3: a callback URL completed in another browser (no cookie of the one that
/// started the log-in) gets no session there; the browser that started it still can finish.
#[tokio::test]
async fn review_2_finding_3_the_sso_flow_is_bound_to_the_browser_that_started_it() {
    let (app, port) = app_with_provider_port().await;
    let (account, _, _) = app.admin_session("acme").await;
    app.create_user(account, "mallory@acme.example.com", "viewer", "").await;
    let _provider = Provider::start(
        port,
        &format!("{}/login/sso/callback", app.address),
        json!({"mallory": {"email": "mallory@acme.example.com", "groups": []}}),
    )
    .await;
    let attacker = app.new_client();
    let url = crate::common::oidc::callback_url(&attacker, "mallory").await;
    assert!(url.contains("code=") && url.contains("state="), "{url}");

    let victim = app.new_client();
    let res = victim.http.get(&url).send().await.expect("GET callback");
    assert_eq!(res.status(), 403, "refused in another browser");
    assert_eq!(victim.get("/").await.status(), 303, "no session there");

    let res = attacker.http.get(&url).send().await.expect("GET callback");
    assert_eq!(res.status(), 303, "the browser that started it finishes it");
    assert_eq!(attacker.get("/").await.status(), 200);

    // Review II, finding 8: each start stores a row, so starts are throttled per client, and a
    // huge `next` is not kept.
    let flood = app.new_client();
    let long_next = format!("/releases?q={}", "x".repeat(10_000));
    let mut statuses = Vec::new();
    for _ in 0..25 {
        statuses.push(flood.get(&format!("/login/sso?next={long_next}")).await.status().as_u16());
    }
    assert!(statuses[..20].iter().all(|s| *s == 303), "{statuses:?}");
    assert_eq!(statuses[24], 429, "{statuses:?}");
    let mut conn = app.conn().await;
    use diesel::prelude::*;
    use diesel_async::RunQueryDsl;
    use railyard::db::schema::sso_logins::dsl as l;
    let longest: Option<i32> = l::sso_logins
        .select(diesel::dsl::max(diesel::dsl::sql::<diesel::sql_types::Integer>("length(next)")))
        .first(&mut conn)
        .await
        .unwrap();
    assert!(longest.unwrap_or(0) <= 2048, "{longest:?}");
}

/// Review II, finding 6: (issuer, subject) is bound at the first SSO log-in, and another subject
/// with the same verified e-mail is refused and audited; a break-glass admin keeps their role
/// under provider-only roles; a key rotation at the provider needs no restart; "SSO required"
/// is refused for an account the provider does not serve.
#[tokio::test]
async fn review_2_finding_6_sso_identity_binding_break_glass_roles_and_key_rotation() {
    let (app, port) = app_with_provider_port().await;
    let (account, _admin, admin_client) = app.admin_session("acme").await;
    app.create_user(account, "alice@acme.example.com", "viewer", "").await;
    let res = admin_client
        .post_form(
            "/admin/settings/sso",
            &[("sso_roles_only_from_provider", "on"), ("sso_required", "on"), ("sso_break_glass", "admin@acme.example.com")],
        )
        .await;
    assert_eq!(res.status(), 303);
    let accounts = json!({
        "alice": {"email": "alice@acme.example.com", "groups": []},
        "alice-again": {"email": "alice@acme.example.com", "groups": []},
        "root": {"email": "admin@acme.example.com", "groups": []},
    });
    let redirect = format!("{}/login/sso/callback", app.address);
    let provider = Provider::start(port, &redirect, accounts.clone()).await;

    let (_, res) = sign_in(&app.new_client(), "alice").await;
    assert_eq!(res.status(), 303, "the first log-in binds alice's subject");
    let (_, res) = sign_in(&app.new_client(), "alice-again").await;
    assert_eq!(res.status(), 403, "another subject with the same e-mail");
    assert!(res.text().await.unwrap().contains("another identity"));
    assert!(audited(&app, "login.failed")
        .await
        .iter()
        .any(|d| d["reason"] == "another_identity" && d["provider_subject"] == "alice-again"));

    let (_, res) = sign_in(&app.new_client(), "root").await;
    assert_eq!(res.status(), 303);
    assert_eq!(roles_of(&app, "admin@acme.example.com").await, ["account_admin"], "the break-glass admin keeps the role");

    // The provider rotates its signing key (a new process, a new key): no restart here.
    drop(provider);
    let _provider = Provider::start(port, &redirect, accounts).await;
    let (_, res) = sign_in(&app.new_client(), "alice").await;
    assert_eq!(res.status(), 303, "the new key was fetched");

    // Another account cannot require SSO: the provider does not serve it.
    let (_, _, other_admin) = app.admin_session("globex").await;
    let res =
        other_admin.post_form("/admin/settings/sso", &[("sso_required", "on"), ("sso_break_glass", "admin@globex.example.com")]).await;
    assert_eq!(res.status(), 422);
    assert!(res.text().await.unwrap().contains("does not serve this account"));
}
