use crate::common::body;
use crate::common::{TestApp, PASSWORD};
use chrono::TimeDelta;
use reqwest::Method;
use serde_json::{json, Value};

const WEEKLY: &str = include_str!("../fixtures/weekly-production-release.yaml");

struct Setup {
    account: i64,
    token: String,
    process: i64,
}

/// An account with the weekly process, its groups and catalog, and an account release manager.
async fn setup(app: &TestApp) -> Setup {
    let (account, admin, _) = app.admin_session("acme").await;
    let admin_token = app.api_token(&admin).await;
    for env in ["QA", "PROD1"] {
        app.api_post(&admin_token, "/api/v1/environments", &json!({"name": env})).await;
    }
    for s in ["api", "web"] {
        app.api_post(&admin_token, "/api/v1/services", &json!({"name": s})).await;
    }
    let rm = app.create_user(account, "rhea@acme.example.com", "account_release_manager", "").await;
    for g in ["development", "qa", "operations"] {
        app.api_post(&admin_token, "/api/v1/groups", &json!({"name": g, "members": [rm.email]})).await;
    }
    let token = app.api_token(&rm).await;
    let (_, created) = body(app.api_post(&token, "/api/v1/processes", &json!({"definition": WEEKLY})).await).await;
    Setup { account, token, process: created["id"].as_i64().unwrap() }
}

fn release(s: &Setup, name: &str, inputs: Value) -> Value {
    json!({"process_id": s.process, "name": name, "type": "standard", "inputs": inputs})
}

async fn audit_actions(app: &TestApp, release_id: i64) -> Vec<String> {
    use diesel::prelude::*;
    use diesel_async::RunQueryDsl;
    use railyard::db::schema::audit_events::dsl as a;
    let mut conn = app.conn().await;
    a::audit_events.filter(a::release_id.eq(release_id)).order(a::seq).select(a::action).load(&mut conn).await.unwrap()
}

#[tokio::test]
async fn activation_lists_what_is_missing_then_runs() {
    let app = TestApp::spawn().await;
    let s = setup(&app).await;
    let (status, draft) =
        body(app.api_post(&s.token, "/api/v1/releases", &release(&s, "Payments API 2.1.3 to PROD1", json!({"services": ["api"]}))).await)
            .await;
    assert_eq!(status, 201, "{draft}");
    assert_eq!((draft["state"].as_str(), draft["status"].as_str()), (Some("draft"), Some("NotStarted")));
    assert_eq!(draft["owner"], "user:rhea@acme.example.com", "the creator is the default release manager");
    assert_eq!(draft["environments"], json!(["PROD1"]));
    assert_eq!(draft["phases"].as_array().unwrap().len(), 4);
    assert_eq!(draft["phases"][0]["activities"][0]["status"], "NotStarted");
    let id = draft["id"].as_i64().unwrap();

    let (status, e) = body(app.api_post(&s.token, &format!("/api/v1/releases/{id}/activate"), &json!({})).await).await;
    assert_eq!(status, 422);
    assert_eq!(e["error"]["code"], "missing_inputs");
    let message = e["error"]["message"].as_str().unwrap();
    assert!(message.contains("input version is required"), "{e}");
    // ci_token is optional, but the build webhook's header needs it: it would fail at run time.
    assert!(message.contains("${inputs.ci_token} has no value (used by build.compile)"), "{e}");

    // The draft's page shows the same list before anyone presses Activate.
    let client = app.new_client();
    client.login("rhea@acme.example.com", PASSWORD).await;
    let page = client.get_html(&format!("/releases/{id}")).await;
    assert!(page.contains("This draft cannot start yet") && page.contains("${inputs.ci_token} has no value"), "{page}");
    let form = client.get_html(&format!("/releases/{id}/edit")).await;
    assert!(
        form.contains("this draft cannot start yet") && form.contains("${inputs.ci_token} has no value"),
        "the draft form lists it too"
    );
    let csrf = client.csrf(&format!("/releases/{id}")).await;
    client.post_form(&format!("/releases/{id}/activate"), &[("csrf_token", &csrf)]).await;
    let refused = client.get_html(&format!("/releases/{id}")).await;
    assert!(
        refused.contains("The release cannot start") && refused.contains("${inputs.ci_token} has no value"),
        "the page's refusal names it too: {refused}"
    );

    let (status, patched) = body(
        app.api_send(
            Method::PATCH,
            &s.token,
            &format!("/api/v1/releases/{id}"),
            &json!({"inputs": {"version": "2.1.3", "ci_token": "ci-secret"}, "lock_version": 1}),
        )
        .await,
    )
    .await;
    assert_eq!(status, 200, "{patched}");
    assert_eq!(patched["lock_version"], 2);
    let (status, running) = body(app.api_post(&s.token, &format!("/api/v1/releases/{id}/activate"), &json!({})).await).await;
    assert_eq!(status, 200, "{running}");
    assert_eq!((running["state"].as_str(), running["status"].as_str()), (Some("active"), Some("Running")));
    assert!(running["activated_at"].is_string());
    assert!(running["phases"].as_array().unwrap().iter().all(|p| p["status"] == "NotStarted"), "the engine takes over from here");
    assert_eq!(audit_actions(&app, id).await, ["release.create", "release.update", "release.activate"]);
    // Activation notices go to the outbox (release manager, owners through their groups).
    let mut conn = app.conn().await;
    use diesel::prelude::*;
    use diesel_async::RunQueryDsl;
    use railyard::db::schema::notification_outbox::dsl as o;
    let kinds: Vec<String> = o::notification_outbox.select(o::kind).load(&mut conn).await.unwrap();
    assert!(kinds.iter().any(|k| k == "release.activated"));
    // An active release is no longer a draft to edit.
    assert_eq!(app.api_send(Method::PATCH, &s.token, &format!("/api/v1/releases/{id}"), &json!({"name": "x"})).await.status(), 409);
}

#[tokio::test]
async fn the_sweep_activates_due_drafts_once_and_reports_what_is_missing() {
    let app = TestApp::spawn().await;
    let s = setup(&app).await;
    let start = app.clock_now() + TimeDelta::hours(2);
    let schedule = json!({"start": start.to_rfc3339(), "end": (start + TimeDelta::hours(4)).to_rfc3339(), "time_zone": "Europe/Berlin"});
    let mut ready = release(&s, "Payments API 2.1.4 to PROD1", json!({"services": ["api"], "version": "2.1.4", "ci_token": "t"}));
    ready["schedule"] = schedule.clone();
    let (_, ready) = body(app.api_post(&s.token, "/api/v1/releases", &ready).await).await;
    let mut incomplete = release(&s, "Web 3.0 to PROD1", json!({"services": ["web"]}));
    incomplete["schedule"] = schedule;
    let (_, incomplete) = body(app.api_post(&s.token, "/api/v1/releases", &incomplete).await).await;
    let get = |id: &Value| {
        let path = format!("/api/v1/releases/{id}");
        let token = s.token.clone();
        let app = &app;
        async move { body(app.api_get(&token, &path).await).await.1 }
    };

    app.clock.set(start - TimeDelta::seconds(1));
    app.run_sweeps().await;
    assert_eq!(get(&ready["id"]).await["state"], "draft", "one second early: left alone");

    app.clock.set(start);
    // Two sweeps at once (as on two servers): the draft is activated exactly once.
    let (a, b) = tokio::join!(railyard::worker::run_sweeps(&app.state), async {
        let mut conn = app.conn().await;
        railyard::ops::releases::activation_sweep(&mut conn, start).await.map(|n| (n, 0)).map_err(|e| anyhow::anyhow!("{e}"))
    });
    assert_eq!(a.unwrap().0 + b.unwrap().0, 1);
    let activated = get(&ready["id"]).await;
    assert_eq!((activated["state"].as_str(), activated["status"].as_str()), (Some("active"), Some("Running")));
    let rid = ready["id"].as_i64().unwrap();
    assert_eq!(audit_actions(&app, rid).await.iter().filter(|a| *a == "release.activate").count(), 1);

    let still = get(&incomplete["id"]).await;
    assert_eq!(still["state"], "draft");
    assert!(still["status_reason"].as_str().unwrap().contains("input version is required"));
    let mut conn = app.conn().await;
    use diesel::prelude::*;
    use diesel_async::RunQueryDsl;
    use railyard::db::schema::notification_outbox::dsl as o;
    let refusals: Vec<Value> = o::notification_outbox
        .filter(o::kind.eq("release.activation_refused"))
        .filter(o::channel.eq("in_app"))
        .select(o::payload)
        .load(&mut conn)
        .await
        .unwrap();
    assert_eq!(refusals.len(), 1, "the release manager is told once");
    assert_eq!(refusals[0]["to"], "rhea@acme.example.com");
    assert!(refusals[0]["body"].as_str().unwrap().contains("input version is required"));
    app.run_sweeps().await;
    let again: i64 = o::notification_outbox
        .filter(o::kind.eq("release.activation_refused"))
        .filter(o::channel.eq("in_app"))
        .count()
        .get_result(&mut conn)
        .await
        .unwrap();
    assert_eq!(again, 1, "not again for the same problem");
}

#[tokio::test]
async fn one_sweep_starts_a_batch_of_due_drafts_each_with_its_own_notices() {
    let app = TestApp::spawn().await;
    let s = setup(&app).await;
    let start = app.clock_now() + TimeDelta::hours(1);
    let schedule = json!({"start": start.to_rfc3339(), "end": (start + TimeDelta::hours(2)).to_rfc3339()});
    let mut ids = Vec::new();
    for version in ["2.1.4", "2.1.5", "2.1.6"] {
        let mut draft = release(&s, &format!("Payments API {version}"), json!({"services": ["api"], "version": version, "ci_token": "t"}));
        draft["schedule"] = schedule.clone();
        let (status, saved) = body(app.api_post(&s.token, "/api/v1/releases", &draft).await).await;
        assert_eq!(status, 201, "{saved}");
        ids.push(saved["id"].as_i64().unwrap());
    }
    let mut incomplete = release(&s, "Web 3.0", json!({"services": ["web"]}));
    incomplete["schedule"] = schedule;
    let (_, incomplete) = body(app.api_post(&s.token, "/api/v1/releases", &incomplete).await).await;

    let mut conn = app.conn().await;
    // The workers sleep until then (what is already due does not count).
    let next = railyard::db::wake::next_due(&mut conn, start - TimeDelta::minutes(1)).await.unwrap();
    assert_eq!(next.map(|at| at.timestamp()), Some(start.timestamp()));
    assert_eq!(railyard::db::wake::next_due(&mut conn, start).await.unwrap(), None);
    app.clock.set(start);
    assert_eq!(railyard::ops::releases::activation_sweep(&mut conn, start).await.unwrap(), 3, "one sweep, the three ready drafts");
    use diesel::prelude::*;
    use diesel_async::RunQueryDsl;
    use railyard::db::schema::notification_outbox::dsl as o;
    let notices: Vec<Value> = o::notification_outbox
        .filter(o::kind.eq("release.activated"))
        .filter(o::channel.eq("in_app"))
        .select(o::payload)
        .load(&mut conn)
        .await
        .unwrap();
    for id in &ids {
        let (status, r) = body(app.api_get(&s.token, &format!("/api/v1/releases/{id}")).await).await;
        assert_eq!((status, r["state"].as_str(), r["status"].as_str()), (200, Some("active"), Some("Running")));
        assert_eq!(audit_actions(&app, *id).await.iter().filter(|a| *a == "release.activate").count(), 1);
        let own: Vec<&Value> = notices.iter().filter(|n| n["link"] == format!("/releases/{id}")).collect();
        assert!(own.iter().any(|n| n["to"] == "rhea@acme.example.com"), "the release manager hears of release {id}: {notices:?}");
        assert!(own.iter().all(|n| n["body"].as_str().unwrap().contains(&format!("#{id}"))), "{own:?}");
        assert_eq!(own.len(), notices.len() / 3, "each release tells the same people");
    }
    let (_, still) = body(app.api_get(&s.token, &format!("/api/v1/releases/{}", incomplete["id"])).await).await;
    assert_eq!(still["state"], "draft");
    assert!(still["status_reason"].as_str().unwrap().contains("input version is required"));
}

#[tokio::test]
async fn concurrent_patches_exactly_one_wins() {
    let app = TestApp::spawn().await;
    let s = setup(&app).await;
    let (_, draft) = body(
        app.api_post(&s.token, "/api/v1/releases", &release(&s, "Payments API 2.2 draft for PROD1", json!({"services": ["api"]}))).await,
    )
    .await;
    let id = draft["id"].as_i64().unwrap();
    let mut tasks = Vec::new();
    for i in 0..20 {
        let http = app.client.http.clone();
        let url = format!("{}/api/v1/releases/{id}", app.address);
        let token = s.token.clone();
        tasks.push(tokio::spawn(async move {
            let res = http
                .patch(url)
                .bearer_auth(token)
                .json(&json!({"name": format!("Payments API 2.2.{i} to PROD1"), "lock_version": 1}))
                .send()
                .await
                .unwrap();
            (i, res.status().as_u16(), res.json::<Value>().await.unwrap())
        }));
    }
    let mut winners = Vec::new();
    let mut conflicts = 0;
    for t in tasks {
        let (i, status, body) = t.await.unwrap();
        match status {
            200 => winners.push(i),
            409 => {
                conflicts += 1;
                let msg = body["error"]["message"].as_str().unwrap();
                assert!(msg.contains("changed since your version 1") && msg.contains("name"), "{msg} {:?}", audit_details(&app, id).await);
            }
            other => panic!("unexpected {other}: {body}"),
        }
    }
    assert_eq!((winners.len(), conflicts), (1, 19));
    let (_, stored) = body(app.api_get(&s.token, &format!("/api/v1/releases/{id}")).await).await;
    assert_eq!(stored["name"], format!("Payments API 2.2.{} to PROD1", winners[0]));
    assert_eq!(stored["lock_version"], 2);
}

#[tokio::test]
async fn deletion_rules_name_their_reason_and_purge_keeps_the_trail_verifiable() {
    let app = TestApp::spawn().await;
    let s = setup(&app).await;
    let make = |name: &str| release(&s, name, json!({"services": ["api"], "version": "1.0.0", "ci_token": "t"}));
    let (_, running) = body(app.api_post(&s.token, "/api/v1/releases", &json!({"activate": true, "process_id": s.process, "name": "Payments API 1.0.0 to PROD1", "type": "standard", "inputs": {"services": ["api"], "version": "1.0.0", "ci_token": "t"}})).await).await;
    let running_id = running["id"].as_i64().unwrap();
    assert_eq!(running["status"], "Running");
    let (status, e) = body(app.api_send(Method::DELETE, &s.token, &format!("/api/v1/releases/{running_id}"), &json!({})).await).await;
    assert_eq!((status, e["error"]["code"].as_str()), (422, Some("delete_refused")));
    assert!(e["error"]["message"].as_str().unwrap().contains("in flight"), "{e}");

    // Finished inside retention.
    app.force_release(running_id, "active", "Success", Some(app.clock_now())).await;
    let (status, e) = body(app.api_send(Method::DELETE, &s.token, &format!("/api/v1/releases/{running_id}"), &json!({})).await).await;
    assert_eq!(status, 422);
    assert!(e["error"]["message"].as_str().unwrap().contains("retention period of 365 days"), "{e}");

    // Linked to by another release.
    let mut hotfix = make("Payments API 1.0.1 hotfix");
    hotfix["links"] = json!({"hotfix_for": running_id});
    let (_, hotfix) = body(app.api_post(&s.token, "/api/v1/releases", &hotfix).await).await;
    app.clock.advance(TimeDelta::days(400));
    app.force_release(hotfix["id"].as_i64().unwrap(), "active", "Success", Some(app.clock_now() - TimeDelta::days(1))).await;
    let (status, e) = body(app.api_send(Method::DELETE, &s.token, &format!("/api/v1/releases/{running_id}"), &json!({})).await).await;
    assert_eq!(status, 422);
    assert!(e["error"]["message"].as_str().unwrap().contains("links to it (hotfix_for)"), "{e}");

    // A draft can always be deleted; links pointing at it are removed and listed.
    let (_, draft) = body(app.api_post(&s.token, "/api/v1/releases", &make("Ledger 5.0 to PROD1")).await).await;
    let mut dependent = make("Web 5.0 to PROD1");
    dependent["links"] = json!({"depends_on": [draft["id"]]});
    body(app.api_post(&s.token, "/api/v1/releases", &dependent).await).await;
    let (status, deleted) =
        body(app.api_send(Method::DELETE, &s.token, &format!("/api/v1/releases/{}", draft["id"]), &json!({})).await).await;
    assert_eq!(status, 200, "{deleted}");
    assert_eq!(deleted["removed_links"][0]["kind"], "depends_on");

    // Archived by retention, then purged through the one permitted path.
    let (_, archived_one) = body(app.api_post(&s.token, "/api/v1/releases", &make("Identity 7.0 to PROD1")).await).await;
    let old_id = archived_one["id"].as_i64().unwrap();
    app.force_release(old_id, "active", "Success", Some(app.clock_now() - TimeDelta::days(366))).await;
    app.run_sweeps().await;
    let (_, a) = body(app.api_get(&s.token, &format!("/api/v1/releases/{old_id}")).await).await;
    assert_eq!(a["state"], "archived");
    assert!(!audit_actions(&app, old_id).await.is_empty());
    let (status, purged) = body(app.api_send(Method::DELETE, &s.token, &format!("/api/v1/releases/{old_id}"), &json!({})).await).await;
    assert_eq!((status, purged["purged"].as_bool()), (200, Some(true)), "{purged}");
    assert!(audit_actions(&app, old_id).await.is_empty(), "its chain is gone");
    let mut conn = app.conn().await;
    let report = railyard::db::audit::verify(&mut conn, None).await.unwrap();
    assert_eq!(report.broken, None, "audit verify still passes");
    let cli = tokio::process::Command::new(env!("CARGO_BIN_EXE_railyard"))
        .args(["audit", "verify"])
        .env("DATABASE_URL", &app.database_url)
        .env("RUST_LOG", "error")
        .output()
        .await
        .unwrap();
    assert!(cli.status.success(), "railyard audit verify: {}", String::from_utf8_lossy(&cli.stdout));
    use diesel::prelude::*;
    use diesel_async::RunQueryDsl;
    use railyard::db::schema::audit_events::dsl as ev;
    let purge: Value = ev::audit_events.filter(ev::action.eq("release.purge")).select(ev::details).first(&mut conn).await.unwrap();
    assert_eq!(purge["name"], "Identity 7.0 to PROD1");
    assert_eq!(purge["final_status"], "Success");
    assert_eq!(purge["removed_chain_last_hash"].as_str().unwrap().len(), 64);
    assert!(s.account > 0);
}

#[tokio::test]
async fn release_level_is_either_or() {
    let app = TestApp::spawn().await;
    let s = setup(&app).await;
    app.create_org(s.account, "payments").await;
    let orm = app.create_user(s.account, "orm@acme.example.com", "org_release_manager", "payments").await;
    let orm_token = app.api_token(&orm).await;
    let admin_token = {
        let mut conn = app.conn().await;
        let admin = railyard::db::models::users::User::by_email(&mut conn, "admin@acme.example.com").await.unwrap().unwrap();
        app.api_token(&admin).await
    };
    let mut org_release = release(&s, "Payments API 3.0 to PROD1", json!({"services": ["api"]}));
    org_release["org"] = json!("payments");
    let (status, e) = body(app.api_post(&orm_token, "/api/v1/releases", &org_release).await).await;
    assert_eq!((status, e["error"]["code"].as_str()), (422, Some("release_level")), "{e}");

    // A draft at account level blocks switching to organization level.
    let (_, draft) = body(app.api_post(&s.token, "/api/v1/releases", &release(&s, "Ledger 3.0 to PROD1", json!({}))).await).await;
    let (status, e) =
        body(app.api_send(Method::PATCH, &admin_token, "/api/v1/settings", &json!({"release_level": "organization"})).await).await;
    assert_eq!((status, e["error"]["code"].as_str()), (422, Some("release_level")));
    assert!(e["error"]["message"].as_str().unwrap().contains("1 release(s) of the other level"));
    app.api_send(Method::DELETE, &s.token, &format!("/api/v1/releases/{}", draft["id"]), &json!({})).await;
    assert_eq!(
        app.api_send(Method::PATCH, &admin_token, "/api/v1/settings", &json!({"release_level": "organization"})).await.status(),
        200
    );

    let (status, e) = body(app.api_post(&s.token, "/api/v1/releases", &release(&s, "Ledger 3.1 to PROD1", json!({}))).await).await;
    assert_eq!((status, e["error"]["code"].as_str()), (422, Some("release_level")));
    let (status, created) = body(app.api_post(&orm_token, "/api/v1/releases", &org_release).await).await;
    assert_eq!(status, 201, "{created}");
    assert_eq!((created["level"].as_str(), created["org"].as_str()), (Some("organization"), Some("payments")));
    assert_eq!(created["owner"], "user:orm@acme.example.com");
}

#[tokio::test]
async fn retention_archives_only_what_finished_long_ago() {
    let app = TestApp::spawn().await;
    let s = setup(&app).await;
    let mk = |n: &str| release(&s, n, json!({"services": ["api"], "version": "1"}));
    let (_, done) = body(app.api_post(&s.token, "/api/v1/releases", &mk("Payments API 0.9 to PROD1")).await).await;
    let (_, flying) = body(app.api_post(&s.token, "/api/v1/releases", &mk("Payments API 0.8 to PROD1")).await).await;
    app.force_release(done["id"].as_i64().unwrap(), "active", "Success", Some(app.clock_now())).await;
    app.force_release(flying["id"].as_i64().unwrap(), "active", "Running", None).await;
    app.clock.advance(TimeDelta::days(366));
    let (_, archived) = app.run_sweeps().await;
    assert_eq!(archived, 1);
    let (_, listed) = body(app.api_get(&s.token, "/api/v1/releases").await).await;
    let ids: Vec<i64> = listed["releases"].as_array().unwrap().iter().map(|r| r["id"].as_i64().unwrap()).collect();
    assert!(!ids.contains(&done["id"].as_i64().unwrap()) && ids.contains(&flying["id"].as_i64().unwrap()));
    let (_, archive) = body(app.api_get(&s.token, "/api/v1/releases?state=archived").await).await;
    assert_eq!(archive["releases"][0]["id"], done["id"]);
    // It runs at most daily, even if several servers call it.
    assert_eq!(app.run_sweeps().await.1, 0);
}

#[tokio::test]
async fn run_now_and_restart() {
    let app = TestApp::spawn().await;
    let s = setup(&app).await;
    let original = app.clock_now() + TimeDelta::days(2);
    let mut scheduled = release(&s, "Payments API 4.0 to PROD1", json!({"services": ["api"], "version": "4.0", "ci_token": "t"}));
    scheduled["schedule"] = json!({"start": "2026-11-30T10:00", "end": "2026-11-30T14:00", "time_zone": "Europe/Berlin"});
    let (status, draft) = body(app.api_post(&s.token, "/api/v1/releases", &scheduled).await).await;
    assert_eq!(status, 201, "{draft}");
    assert_eq!(draft["schedule"]["start"], "2026-11-30T09:00:00Z", "local time in the release's zone");
    assert!(original > app.clock_now());
    let id = draft["id"].as_i64().unwrap();
    let (status, e) = body(app.api_post(&s.token, &format!("/api/v1/releases/{id}/run-now"), &json!({})).await).await;
    assert_eq!((status, e["error"]["field"].as_str()), (422, Some("reason")));
    let (status, started) =
        body(app.api_post(&s.token, &format!("/api/v1/releases/{id}/run-now"), &json!({"reason": "CAB approved an early slot"})).await)
            .await;
    assert_eq!(status, 200, "{started}");
    assert_eq!(started["schedule"]["start"], "2026-11-28T09:00:00Z", "now became the start");
    assert_eq!(started["schedule"]["end"], "2026-11-28T13:00:00Z", "the window keeps its length");
    let mut conn = app.conn().await;
    use diesel::prelude::*;
    use diesel_async::RunQueryDsl;
    use railyard::db::schema::audit_events::dsl as a;
    let (reason, details): (Option<String>, Value) =
        a::audit_events.filter(a::action.eq("release.run_now")).select((a::reason, a::details)).first(&mut conn).await.unwrap();
    assert_eq!(reason.as_deref(), Some("CAB approved an early slot"));
    assert_eq!(details["original_start"], "2026-11-30T09:00:00Z");

    let (status, aborted) =
        body(app.api_post(&s.token, &format!("/api/v1/releases/{id}/abort"), &json!({"reason": "wrong build"})).await).await;
    assert_eq!((status, aborted["status"].as_str()), (200, Some("Aborted")));
    assert!(aborted["phases"].as_array().unwrap().iter().all(|p| p["status"] == "Aborted"));
    let (status, restarted) = body(app.api_post(&s.token, &format!("/api/v1/releases/{id}/restart"), &json!({})).await).await;
    assert_eq!(status, 201);
    assert_eq!((restarted["state"].as_str(), restarted["links"]["restarted_from"].as_i64()), (Some("draft"), Some(id)));
    assert_eq!(restarted["inputs"]["version"], "4.0");
    let (_, old) = body(app.api_get(&s.token, &format!("/api/v1/releases/{id}")).await).await;
    assert_eq!(old["status"], "Aborted", "an aborted release never runs again");
    assert_eq!(app.api_post(&s.token, &format!("/api/v1/releases/{id}/activate"), &json!({})).await.status(), 409);
}

#[tokio::test]
async fn bad_input_names_the_field_and_saves_nothing() {
    let app = TestApp::spawn().await;
    let s = setup(&app).await;
    let cases = vec![
        (json!({"process_id": s.process, "name": "Ledger 1 to PROD1", "inputs": {"services": "api, nope"}}), "inputs.services"),
        (json!({"process_id": 999_999, "name": "Ledger 1 to PROD1"}), "process_id"),
        (
            json!({"process_id": s.process, "name": "Ledger 1", "schedule": {"start": "2026-12-01T10:00", "end": "2026-12-01T09:00", "time_zone": "UTC"}}),
            "schedule.end",
        ),
        (
            json!({"process_id": s.process, "name": "Ledger 1", "schedule": {"start": "2026-12-01T10:00", "end": "2026-12-01T11:00", "time_zone": "Mars/Olympus"}}),
            "schedule.time_zone",
        ),
        (json!({"process_id": s.process, "name": "x".repeat(10_000)}), "name"),
        (json!({"process_id": s.process, "name": "Ledger 1 to PROD1", "owner": "user:ghost@acme.example.com"}), "owner"),
        (json!({"process_id": s.process, "name": "Ledger 1 to PROD1", "type": "urgent"}), "type"),
        (json!({"process_id": s.process, "name": "Ledger 1 to PROD1", "variables": {"nope": 1}}), "variables.nope"),
    ];
    for (body_json, field) in cases {
        let (status, e) = body(app.api_post(&s.token, "/api/v1/releases", &body_json).await).await;
        assert_eq!(status, 422, "{field}: {e}");
        assert_eq!(e["error"]["field"], field, "{e}");
    }
    let (status, e) = body(app.api_post(&s.token, "/api/v1/releases", &json!({"process_id": "one", "name": "x"})).await).await;
    assert_eq!((status, e["error"]["field"].as_str()), (400, Some("process_id")));
    let (_, listed) = body(app.api_get(&s.token, "/api/v1/releases").await).await;
    assert_eq!(listed["total"], 0, "nothing saved");
    // A generic name is allowed, with a warning.
    let (status, created) = body(app.api_post(&s.token, "/api/v1/releases", &release(&s, "Release 1", json!({}))).await).await;
    assert_eq!(status, 201);
    assert!(created["warnings"][0].as_str().unwrap().contains("generic name"));
    let viewer = app.create_user(s.account, "vera@acme.example.com", "viewer", "").await;
    let vt = app.api_token(&viewer).await;
    assert_eq!(app.api_post(&vt, "/api/v1/releases", &release(&s, "Viewer's release", json!({}))).await.status(), 403);
    let browser = app.new_client();
    assert_eq!(browser.login(&viewer.email, PASSWORD).await.status(), 303);
}

async fn audit_details(app: &TestApp, release_id: i64) -> Vec<Value> {
    use diesel::prelude::*;
    use diesel_async::RunQueryDsl;
    use railyard::db::schema::audit_events::dsl as a;
    let mut conn = app.conn().await;
    a::audit_events.filter(a::release_id.eq(release_id)).order(a::seq).select(a::details).load(&mut conn).await.unwrap()
}

#[tokio::test]
async fn drafts_rebase_onto_the_newest_version_and_pages_show_conflicts() {
    let app = TestApp::spawn().await;
    let s = setup(&app).await;
    let (_, draft) = body(
        app.api_post(
            &s.token,
            "/api/v1/releases",
            &release(&s, "Payments API 6.0 to PROD1", json!({"services": ["api"], "version": "6.0"})),
        )
        .await,
    )
    .await;
    let id = draft["id"].as_i64().unwrap();
    let (_, process) = body(app.api_get(&s.token, &format!("/api/v1/processes/{}", s.process)).await).await;
    let mut def = process["definition"].clone();
    def["phases"][2]["activities"]
        .as_array_mut()
        .unwrap()
        .push(json!({"key": "smoke", "name": "Smoke test", "kind": "manual", "depends_on": ["deploy"]}));
    assert_eq!(
        app.api_send(Method::PUT, &s.token, &format!("/api/v1/processes/{}", s.process), &json!({"definition": def})).await.status(),
        200
    );
    let (status, rebased) = body(app.api_post(&s.token, &format!("/api/v1/releases/{id}/rebase"), &json!({})).await).await;
    assert_eq!(status, 200, "{rebased}");
    assert_eq!(rebased["process_version"], 2);
    assert_eq!(rebased["inputs"]["version"], "6.0", "inputs kept and checked again");
    assert_eq!(rebased["phases"][2]["activities"][1]["key"], "smoke");
    let (status, e) = body(app.api_post(&s.token, &format!("/api/v1/releases/{id}/rebase"), &json!({})).await).await;
    assert_eq!((status, e["error"]["code"].as_str()), (409, Some("up_to_date")));

    // Two browsers edit the same draft: the second save is refused, naming what changed.
    let first = app.new_client();
    let second = app.new_client();
    for c in [&first, &second] {
        assert_eq!(c.login("rhea@acme.example.com", PASSWORD).await.status(), 303);
    }
    let lock = rebased["lock_version"].to_string();
    let form = |name: &'static str| {
        vec![
            ("process_id", s.process.to_string()),
            ("name", name.to_string()),
            ("type", "standard".to_string()),
            ("lock_version", lock.clone()),
            ("in.version", "6.0".to_string()),
            ("in.services", "api".to_string()),
        ]
    };
    let to_refs = |v: &Vec<(&'static str, String)>| v.iter().map(|(k, v)| (*k, v.clone())).collect::<Vec<_>>();
    let a = to_refs(&form("Payments API 6.0.1 to PROD1"));
    let a: Vec<(&str, &str)> = a.iter().map(|(k, v)| (*k, v.as_str())).collect();
    assert_eq!(first.post_form(&format!("/releases/{id}/edit"), &a).await.status(), 303);
    let b = to_refs(&form("Payments API 6.0.2 to PROD1"));
    let b: Vec<(&str, &str)> = b.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let res = second.post_form(&format!("/releases/{id}/edit"), &b).await;
    assert_eq!(res.status(), 422);
    let html = res.text().await.unwrap();
    assert!(html.contains("changed since your version") && html.contains("name"), "{html}");
    assert!(html.contains("Payments API 6.0.2 to PROD1"), "the typed name is kept");
    let (_, stored) = body(app.api_get(&s.token, &format!("/api/v1/releases/{id}")).await).await;
    assert_eq!(stored["name"], "Payments API 6.0.1 to PROD1");
    let (_, by_owner) = body(app.api_get(&s.token, "/api/v1/releases?owner=rhea@acme.example.com").await).await;
    assert_eq!(by_owner["total"], 1);
}

#[tokio::test]
async fn the_release_of_a_current_deployment_cannot_be_deleted() {
    let app = TestApp::spawn().await;
    let (account, admin, _) = app.admin_session("acme").await;
    let rm = app.create_user(account, "rm@acme.example.com", "account_release_manager", "").await;
    let token = app.api_token(&rm).await;
    let admin_token = app.api_token(&admin).await;
    let (status, env) = body(app.api_post(&admin_token, "/api/v1/environments", &json!({"name": "PROD1", "production": true})).await).await;
    assert_eq!(status, 201, "{env}");
    let yaml = "name: Deploy\ninputs: [{name: version, type: string, required: true}]\nphases:\n  - key: p\n    name: P\n    activities:\n      - {key: ship, name: Ship, kind: manual, deploys: {service: payment-service, version: \"${inputs.version}\", environment: PROD1}}\n";
    let (status, p) = body(app.api_post(&token, "/api/v1/processes", &json!({"definition": yaml})).await).await;
    assert_eq!(status, 201, "{p}");
    let mut ids = Vec::new();
    for version in ["1.2.0", "1.3.0"] {
        let req = json!({"process_id": p["id"], "name": format!("Payments {version}"), "inputs": {"version": version}, "activate": true});
        let (status, r) = body(app.api_post(&token, "/api/v1/releases", &req).await).await;
        assert_eq!(status, 201, "{r}");
        let id = r["id"].as_i64().unwrap();
        app.run_until_idle().await;
        let (status, done) =
            body(app.api_post(&token, &format!("/api/v1/releases/{id}/activities/p/ship/complete"), &json!({})).await).await;
        assert_eq!(status, 200, "{done}");
        app.run_until_idle().await;
        ids.push(id);
        app.clock.advance(TimeDelta::minutes(5));
    }
    app.clock.advance(TimeDelta::days(366));
    // 1.3.0 is what PROD1 runs: its release stays.
    let (status, e) = body(app.api_send(Method::DELETE, &token, &format!("/api/v1/releases/{}", ids[1]), &json!({})).await).await;
    assert_eq!(status, 422, "{e}");
    assert_eq!(e["error"]["code"], "delete_refused");
    let message = e["error"]["message"].as_str().unwrap();
    assert!(message.contains("/reports/deployed") && message.contains("payment-service in PROD1"), "{message}");
    // 1.2.0 was replaced: the report no longer points at it.
    let mut conn = app.conn().await;
    let current = railyard::db::models::deployments::Deployment::current_of(&mut conn, account, ids[0]).await.unwrap();
    assert!(current.is_empty(), "{current:?}");
    let current = railyard::db::models::deployments::Deployment::current_of(&mut conn, account, ids[1]).await.unwrap();
    assert_eq!(current, vec![("payment-service".to_string(), "PROD1".to_string())]);
    // Purging the replaced release keeps its deployment in the history, under its name.
    let (status, e) = body(app.api_send(Method::DELETE, &token, &format!("/api/v1/releases/{}", ids[0]), &json!({})).await).await;
    assert_eq!(status, 200, "{e}");
    let (status, history) = body(app.api_get(&token, "/api/v1/reports/history?service=payment-service").await).await;
    assert_eq!(status, 200, "{history}");
    let oldest = &history["deployments"][1];
    assert_eq!((oldest["version"].as_str(), oldest["release_name"].as_str()), (Some("1.2.0"), Some("Payments 1.2.0")), "{history}");
    assert!(oldest["release_id"].is_null());
}

#[tokio::test]
async fn drafts_that_cannot_start_never_keep_a_newly_due_one_waiting() {
    let app = TestApp::spawn().await;
    let s = setup(&app).await;
    let start = app.clock_now() + TimeDelta::hours(1);
    let at = |t: chrono::DateTime<chrono::Utc>| json!({"start": t.to_rfc3339(), "end": (t + TimeDelta::hours(1)).to_rfc3339()});
    // A whole batch of drafts that cannot start (an input is missing), due first.
    for i in 0..railyard::ops::releases::ACTIVATION_BATCH {
        let mut incomplete = release(&s, &format!("Web 3.0.{i}"), json!({"services": ["web"]}));
        incomplete["schedule"] = at(start);
        let (status, saved) = body(app.api_post(&s.token, "/api/v1/releases", &incomplete).await).await;
        assert_eq!(status, 201, "{saved}");
    }
    app.clock.set(start);
    let mut conn = app.conn().await;
    let swept = railyard::ops::releases::sweep_due(&mut conn, start).await.unwrap();
    assert_eq!((swept.claimed, swept.activated), (railyard::ops::releases::ACTIVATION_BATCH, 0));

    let mut ready = release(&s, "Payments API 2.1.4", json!({"services": ["api"], "version": "2.1.4", "ci_token": "t"}));
    ready["schedule"] = at(start + TimeDelta::minutes(1));
    let (_, ready) = body(app.api_post(&s.token, "/api/v1/releases", &ready).await).await;
    let later = start + TimeDelta::minutes(1);
    app.clock.set(later);
    let swept = railyard::ops::releases::sweep_due(&mut conn, later).await.unwrap();
    assert_eq!(swept.activated, 1, "the newly due draft goes first: {swept:?}");
    let (_, r) = body(app.api_get(&s.token, &format!("/api/v1/releases/{}", ready["id"])).await).await;
    assert_eq!(r["state"], "active");
}
