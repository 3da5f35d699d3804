use crate::common::TestApp;
use diesel_async::{AsyncConnection, RunQueryDsl};
use railyard::db::audit::{self, NewEvent};
use serde_json::json;

async fn run_cli(app: &TestApp, args: &[&str]) -> std::process::Output {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_railyard"))
        .args(args)
        .env("DATABASE_URL", &app.database_url)
        .env("RUST_LOG", "error")
        .output()
        .await
        .expect("run railyard")
}

#[tokio::test]
async fn the_audit_trail_is_append_only_and_verifies_with_concurrent_appends() {
    let app = TestApp::spawn().await;
    let (account, admin, _) = app.admin_session("acme").await;

    // 24 appends at once, on the account chain and on two release chains.
    let mut tasks = Vec::new();
    for i in 0..24i64 {
        let url = app.database_url.clone();
        let now = app.clock_now();
        tasks.push(tokio::spawn(async move {
            let mut conn = diesel_async::AsyncPgConnection::establish(&url).await.unwrap();
            let mut event = NewEvent::account(account, "user:test", "test.concurrent", format!("item:{i}"))
                .with_details(json!({"i": i, "nested": {"b": 1, "a": [1, 2]}}));
            if i % 3 == 1 {
                event.release_id = Some(1000 + i % 2);
            }
            conn.transaction(async |conn| audit::append(conn, event, now).await).await.unwrap();
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }

    let mut conn = app.conn().await;
    let report = audit::verify(&mut conn, None).await.unwrap();
    assert_eq!(report.broken, None);
    assert_eq!(report.chains, 3);
    assert!(report.events >= 24 + 2, "{report:?}");

    let out = run_cli(&app, &["audit", "verify"]).await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("audit trail intact: 3 chains"));

    // The database refuses changes to the trail.
    let update = diesel::sql_query("UPDATE audit_events SET actor = 'user:mallory' WHERE seq = 1").execute(&mut conn).await;
    assert!(update.unwrap_err().to_string().contains("append-only"));
    let delete = diesel::sql_query("DELETE FROM audit_events").execute(&mut conn).await;
    assert!(delete.unwrap_err().to_string().contains("append-only"));
    let truncate = diesel::sql_query("TRUNCATE audit_events").execute(&mut conn).await;
    assert!(truncate.is_err());

    // Tampering past the trigger (as a superuser could) is found, naming the row.
    diesel::sql_query("ALTER TABLE audit_events DISABLE TRIGGER audit_events_no_update").execute(&mut conn).await.unwrap();
    diesel::sql_query(format!("UPDATE audit_events SET actor = 'user:mallory' WHERE chain = 'account:{account}' AND seq = 2"))
        .execute(&mut conn)
        .await
        .unwrap();
    let out = run_cli(&app, &["audit", "verify", "--account", "acme"]).await;
    assert!(!out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains(&format!("BROKEN at chain account:{account} seq 2")), "{stdout}");
    assert!(admin.id > 0);
}

#[tokio::test]
async fn cli_adds_accounts_orgs_users_and_tokens() {
    let app = TestApp::spawn().await;
    let out = run_cli(&app, &["account", "add", "--slug", "initech", "--name", "Initech"]).await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let again = run_cli(&app, &["account", "add", "--slug", "initech", "--name", "Initech"]).await;
    assert_eq!(again.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&again.stderr).contains("already exists"));
    assert!(run_cli(&app, &["org", "add", "--account", "initech", "--slug", "payments", "--name", "Payments"]).await.status.success());

    let add_user = |email: &'static str, role: &'static str, org: Option<&'static str>| {
        let url = app.database_url.clone();
        async move {
            use tokio::io::AsyncWriteExt;
            let mut args =
                vec!["user", "add", "--account", "initech", "--email", email, "--name", "Peter", "--role", role, "--password-stdin"];
            if let Some(o) = org {
                args.extend(["--org", o]);
            }
            let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_railyard"))
                .args(&args)
                .env("DATABASE_URL", url)
                .env("RUST_LOG", "error")
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap();
            child.stdin.take().unwrap().write_all(b"tps-report-cover\n").await.unwrap();
            child.wait_with_output().await.unwrap()
        }
    };
    assert!(add_user("peter@initech.example.com", "org_release_manager", Some("payments")).await.status.success());
    let dup = add_user("PETER@initech.example.com", "viewer", None).await;
    assert_eq!(dup.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&dup.stderr).contains("already has an account"));
    let bad_role = add_user("milton@initech.example.com", "stapler_keeper", None).await;
    assert_eq!(bad_role.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&bad_role.stderr).contains("--role \"stapler_keeper\" is not a role"));
    let no_org = add_user("bill@initech.example.com", "org_release_manager", None).await;
    assert!(String::from_utf8_lossy(&no_org.stderr).contains("--org org_release_manager needs an organization"));

    let out = run_cli(&app, &["token", "create", "--email", "peter@initech.example.com"]).await;
    assert!(out.status.success());
    let token = String::from_utf8(out.stdout).unwrap();
    assert_eq!(token.lines().count(), 1, "the token alone on stdout");
    let me: serde_json::Value = app.api_get(token.trim(), "/api/v1/me").await.json().await.unwrap();
    assert_eq!(me["email"], "peter@initech.example.com");
    assert_eq!(me["roles"][0]["org"], "payments");

    let out =
        run_cli(&app, &["token", "create", "--email", "peter@initech.example.com", "--name", "deploy-bot", "--expires-in", "90d"]).await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = run_cli(&app, &["token", "list", "--email", "peter@initech.example.com"]).await;
    let listed = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(listed.contains("deploy-bot") && listed.contains("2 token(s)"), "{listed}");
    let (_, tokens) = crate::common::body(app.api_get(token.trim(), "/api/v1/me/tokens").await).await;
    let cli_id = tokens["tokens"].as_array().unwrap().iter().find(|t| t["name"] == "cli").unwrap()["id"].as_i64().unwrap();
    let out = run_cli(&app, &["token", "revoke", "--id", &cli_id.to_string()]).await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(app.api_get(token.trim(), "/api/v1/me").await.status(), 401, "revoked from the CLI");
    let out = run_cli(&app, &["token", "revoke", "--id", "999999"]).await;
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("no API token with id 999999"));
}

#[tokio::test]
async fn seed_demo_twice_duplicates_nothing() {
    #[derive(diesel::QueryableByName)]
    struct Name {
        #[diesel(sql_type = diesel::sql_types::Text)]
        name: String,
    }
    let app = TestApp::spawn().await;
    let first = run_cli(&app, &["seed-demo"]).await;
    assert!(first.status.success(), "{}", String::from_utf8_lossy(&first.stderr));
    let first_out = String::from_utf8_lossy(&first.stdout).to_string();
    assert!(first_out.contains("Demo history told in"), "{first_out}");
    let totals = "SELECT (SELECT count(*) FROM releases) AS users, (SELECT count(*) FROM audit_events) AS envs, \
                  (SELECT count(*) FROM deployments) AS members, (SELECT count(*) FROM release_groups) AS orgs";
    let mut conn = app.conn().await;
    let before: Counts = diesel::sql_query(totals).get_result(&mut conn).await.unwrap();
    // Months of history in every outcome, releases in flight, drafts, a group and a chain that verifies.
    assert!(before.users >= 30 && before.members >= 100 && before.orgs == 2, "{:?}", (before.users, before.members));
    let outcomes: Vec<String> = diesel::sql_query("SELECT DISTINCT status AS name FROM releases ORDER BY 1")
        .load::<Name>(&mut conn)
        .await
        .unwrap()
        .into_iter()
        .map(|n| n.name)
        .collect();
    for status in ["Aborted", "Failed", "NotStarted", "OnHold", "PartialSuccess", "RolledBack", "Running", "Success"] {
        assert!(outcomes.iter().any(|s| s == status), "{status} missing from {outcomes:?}");
    }
    let verify = run_cli(&app, &["audit", "verify"]).await;
    assert!(verify.status.success(), "{}", String::from_utf8_lossy(&verify.stdout));
    let second = run_cli(&app, &["seed-demo"]).await;
    assert!(second.status.success());
    let after: Counts = diesel::sql_query(totals).get_result(&mut conn).await.unwrap();
    assert_eq!((before.users, before.envs, before.members), (after.users, after.envs, after.members), "a second run changes nothing");
    let stdout = String::from_utf8_lossy(&second.stdout);
    assert!(stdout.contains("admin@demo.railyard.dev") && stdout.contains("demo-admin-pass"), "{stdout}");
    #[derive(diesel::QueryableByName)]
    struct Counts {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        users: i64,
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        envs: i64,
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        members: i64,
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        orgs: i64,
    }
    let c: Counts = diesel::sql_query(
        "SELECT (SELECT count(*) FROM users) AS users, (SELECT count(*) FROM environments) AS envs, \
         (SELECT count(*) FROM group_members) AS members, (SELECT count(*) FROM organizations) AS orgs",
    )
    .get_result(&mut conn)
    .await
    .unwrap();
    assert_eq!((c.users, c.envs, c.members, c.orgs), (6, 7, 9, 2));
    let login = app.new_client().login("payments.manager@demo.railyard.dev", "demo-payments-pass").await;
    assert_eq!(login.status(), 303);
    // The reports have something to say about the demo's past.
    let token = run_cli(&app, &["token", "create", "--email", "release.manager@demo.railyard.dev"]).await;
    let token = String::from_utf8_lossy(&token.stdout).trim().to_string();
    let (status, report) = crate::common::body(app.api_get(&token, "/api/v1/reports/releases?from=2026-01-01&to=2027-12-31").await).await;
    assert_eq!(status, 200, "{report}");
    let rows = report["releases"].as_array().unwrap();
    assert!(rows.iter().any(|r| r["approvals"].as_array().is_some_and(|a| !a.is_empty() && a[0]["approver"].is_string())), "{report}");
    assert!(rows.iter().any(|r| r["failure_reasons"].as_array().is_some_and(|f| !f.is_empty())), "{report}");
    let (_, deployed) = crate::common::body(app.api_get(&token, "/api/v1/reports/deployed?environment=PROD1").await).await;
    assert!(!deployed["cells"].as_array().unwrap().is_empty(), "{deployed}");
}
