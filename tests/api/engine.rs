//! The engine, driven through the API with the worker stepped by hand (`run_until_idle`).

use crate::common::TestApp;
use chrono::{TimeDelta, TimeZone, Utc};
use serde_json::{json, Value};

pub struct World {
    pub rm_token: String,
    pub tokens: std::collections::HashMap<String, String>,
    pub account: i64,
}

/// An account with a release manager `rm`, users by name, and groups of them.
pub async fn world(app: &TestApp, users: &[&str], groups: &[(&str, &[&str])]) -> World {
    let (account, admin, _) = app.admin_session("acme").await;
    let admin_token = app.api_token(&admin).await;
    let rm = app.create_user(account, "rm@acme.example.com", "account_release_manager", "").await;
    let mut tokens = std::collections::HashMap::new();
    for u in users {
        let user = app.create_user(account, &format!("{u}@acme.example.com"), "viewer", "").await;
        tokens.insert(u.to_string(), app.api_token(&user).await);
    }
    for (g, members) in groups {
        let members: Vec<String> = members.iter().map(|m| format!("{m}@acme.example.com")).collect();
        assert_eq!(app.api_post(&admin_token, "/api/v1/groups", &json!({"name": g, "members": members})).await.status(), 201);
    }
    World { rm_token: app.api_token(&rm).await, tokens, account }
}

pub use crate::common::body;

/// Imports `yaml` and creates and activates a release of it; returns the release id.
pub async fn start(app: &TestApp, w: &World, yaml: &str, extra: Value) -> i64 {
    let (status, p) = body(app.api_post(&w.rm_token, "/api/v1/processes", &json!({"definition": yaml})).await).await;
    assert_eq!(status, 201, "{p}");
    let mut req = json!({"process_id": p["id"], "name": "Ledger 9.1 to PROD1", "activate": true});
    if let Some(obj) = extra.as_object() {
        for (k, v) in obj {
            req[k] = v.clone();
        }
    }
    let (status, r) = body(app.api_post(&w.rm_token, "/api/v1/releases", &req).await).await;
    assert_eq!(status, 201, "{r}");
    r["id"].as_i64().unwrap()
}

pub async fn get(app: &TestApp, w: &World, id: i64) -> Value {
    body(app.api_get(&w.rm_token, &format!("/api/v1/releases/{id}")).await).await.1
}

pub fn activity<'a>(r: &'a Value, phase: &str, key: &str) -> &'a Value {
    r["phases"].as_array().unwrap().iter().find(|p| p["key"] == phase).unwrap()["activities"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["key"] == key)
        .unwrap()
}

pub async fn act(app: &TestApp, token: &str, id: i64, phase: &str, key: &str, verb: &str, body_json: Value) -> (u16, Value) {
    body(app.api_post(token, &format!("/api/v1/releases/{id}/activities/{phase}/{key}/{verb}"), &body_json).await).await
}

const TWO_STEP: &str = "name: Two Step
phases:
  - key: prepare
    name: Prepare
    activities:
      - {key: db, name: Migrate database, kind: manual, owner: \"user:ops1@acme.example.com\"}
      - {key: flags, name: Set feature flags, kind: manual, owner: \"group:ops\"}
  - key: signoff
    name: Sign-off
    depends_on: [prepare]
    activities:
      - {key: qa, name: QA approval, kind: approval, approvers: \"group:qa\", required_approvals: 2}
";

#[tokio::test]
async fn two_phases_run_to_success_with_the_right_roll_up_at_every_step() {
    let app = TestApp::spawn().await;
    let w = world(&app, &["ops1", "ops2", "qa1", "qa2", "qa3"], &[("ops", &["ops2"]), ("qa", &["qa1", "qa2", "qa3"])]).await;
    let id = start(&app, &w, TWO_STEP, json!({})).await;
    assert_eq!(get(&app, &w, id).await["status"], "Running", "just activated");

    app.run_until_idle().await;
    let r = get(&app, &w, id).await;
    assert_eq!(r["status"], "OnHold", "only the task owners can move it");
    assert_eq!(activity(&r, "prepare", "db")["status"], "Running");
    assert_eq!(activity(&r, "prepare", "flags")["status"], "Running", "in parallel");
    assert_eq!(activity(&r, "signoff", "qa")["status"], "NotStarted");

    // A task is completed by its owner (directly or through a group), not by others.
    assert_eq!(act(&app, &w.tokens["qa1"], id, "prepare", "db", "complete", json!({})).await.0, 403);
    let (status, _) =
        act(&app, &w.tokens["ops1"], id, "prepare", "db", "complete", json!({"comment": "migrated", "outputs": {"schema": "v42"}})).await;
    assert_eq!(status, 200);
    app.run_until_idle().await;
    assert_eq!(get(&app, &w, id).await["status"], "OnHold");
    assert_eq!(act(&app, &w.tokens["ops2"], id, "prepare", "flags", "complete", json!({})).await.0, 200);
    app.run_until_idle().await;
    let r = get(&app, &w, id).await;
    assert_eq!(r["phases"][0]["status"], "Success");
    assert_eq!(activity(&r, "prepare", "db")["outputs"]["schema"], "v42");
    assert_eq!(activity(&r, "signoff", "qa")["status"], "Running");
    assert_eq!(r["status"], "OnHold", "only approvers can move it");
    assert!(r["status_reason"].as_str().unwrap().contains("QA approval"));

    assert_eq!(act(&app, &w.tokens["qa1"], id, "signoff", "qa", "approve", json!({})).await.0, 200);
    assert_eq!(act(&app, &w.tokens["qa1"], id, "signoff", "qa", "approve", json!({})).await.0, 409, "one vote each");
    app.run_until_idle().await;
    assert_eq!(get(&app, &w, id).await["status"], "OnHold", "one of two approvals");
    assert_eq!(act(&app, &w.tokens["qa2"], id, "signoff", "qa", "approve", json!({})).await.0, 200);
    app.run_until_idle().await;
    let r = get(&app, &w, id).await;
    assert_eq!(r["status"], "Success");
    assert!(r["finished_at"].is_string());
    assert_eq!(r["phases"][1]["status"], "Success");
}

fn approval(name: &str, threshold: &str, sod: bool) -> String {
    format!(
        "name: {name}\nphases:\n  - key: p\n    name: P\n    activities:\n      - {{key: ok, name: Go, kind: approval, approvers: [\"group:qa\", \"user:rm@acme.example.com\"], {threshold}, separation_of_duties: {sod}}}\n"
    )
}

#[tokio::test]
async fn thresholds_and_separation_of_duties() {
    let app = TestApp::spawn().await;
    let w = world(&app, &["qa1", "qa2", "qa3"], &[("qa", &["qa1", "qa2", "qa3"])]).await;

    // all over a group of three (the release manager excluded by separation of duties).
    let all = start(&app, &w, &approval("All", "threshold: all", true), json!({})).await;
    app.run_until_idle().await;
    let (status, e) = act(&app, &w.rm_token, all, "p", "ok", "approve", json!({})).await;
    assert_eq!(status, 403);
    assert!(e["error"]["message"].as_str().unwrap().contains("separation of duties"), "{e}");
    for (i, qa) in ["qa1", "qa2", "qa3"].iter().enumerate() {
        app.run_until_idle().await;
        assert_eq!(get(&app, &w, all).await["status"], "OnHold", "after {i} approvals");
        assert_eq!(act(&app, &w.tokens[*qa], all, "p", "ok", "approve", json!({})).await.0, 200);
    }
    app.run_until_idle().await;
    assert_eq!(get(&app, &w, all).await["status"], "Success", "three approvals for all");

    // majority of three is two.
    let majority = start(&app, &w, &approval("Majority", "threshold: majority", true), json!({})).await;
    app.run_until_idle().await;
    act(&app, &w.tokens["qa1"], majority, "p", "ok", "approve", json!({})).await;
    app.run_until_idle().await;
    assert_eq!(get(&app, &w, majority).await["status"], "OnHold");
    act(&app, &w.tokens["qa3"], majority, "p", "ok", "approve", json!({})).await;
    app.run_until_idle().await;
    assert_eq!(get(&app, &w, majority).await["status"], "Success");

    // A group shrunk below the threshold: the approval holds, saying why.
    let admin_token = {
        let mut conn = app.conn().await;
        let admin = railyard::db::models::users::User::by_email(&mut conn, "admin@acme.example.com").await.unwrap().unwrap();
        app.api_token(&admin).await
    };
    assert_eq!(
        app.api_send(reqwest::Method::PATCH, &admin_token, "/api/v1/groups/qa", &json!({"members": ["qa1@acme.example.com"]}))
            .await
            .status(),
        200
    );
    let shrunk = start(&app, &w, &approval("Two needed", "required_approvals: 2", true), json!({})).await;
    app.run_until_idle().await;
    let r = get(&app, &w, shrunk).await;
    assert_eq!(r["status"], "OnHold");
    assert_eq!(activity(&r, "p", "ok")["status"], "OnHold");
    assert!(r["status_reason"].as_str().unwrap().contains("only 1 eligible approver(s) for 2 needed"), "{r}");
}

fn failing(on_failure: &str, with_rollback: bool) -> String {
    let rollback = if with_rollback {
        "  - key: rollback\n    name: Roll back\n    rollback: true\n    activities: [{key: revert, name: Revert, kind: manual}]\n"
    } else {
        ""
    };
    let critical = if on_failure == "ignore" { ", critical: false" } else { "" };
    format!(
        "name: Fails {on_failure} {with_rollback}\nphases:\n  - key: deploy\n    name: Deploy\n    activities:\n      - {{key: step, name: Deploy step, kind: manual, on_failure: {on_failure}{critical}}}\n      - {{key: after, name: Verify, kind: manual, depends_on: [step]}}\n{rollback}"
    )
}

async fn fail_step(app: &TestApp, w: &World, yaml: &str) -> i64 {
    let id = start(app, w, yaml, json!({})).await;
    app.run_until_idle().await;
    let (status, e) = act(app, &w.rm_token, id, "deploy", "step", "fail", json!({})).await;
    assert_eq!(status, 422, "a reason is required: {e}");
    assert_eq!(act(app, &w.rm_token, id, "deploy", "step", "fail", json!({"reason": "smoke tests red"})).await.0, 200);
    app.run_until_idle().await;
    id
}

#[tokio::test]
async fn failure_ignore_ends_partial_success() {
    let app = TestApp::spawn().await;
    let w = world(&app, &[], &[]).await;
    let id = fail_step(&app, &w, &failing("ignore", true)).await;
    act(&app, &w.rm_token, id, "deploy", "after", "complete", json!({})).await;
    app.run_until_idle().await;
    let r = get(&app, &w, id).await;
    assert_eq!(r["status"], "PartialSuccess");
    assert_eq!(r["phases"][1]["status"], "Skipped", "the rollback did not run");
}

#[tokio::test]
async fn failure_fail_runs_the_rollback_and_ends_rolled_back() {
    let app = TestApp::spawn().await;
    let w = world(&app, &[], &[]).await;
    let id = fail_step(&app, &w, &failing("fail", true)).await;
    let r = get(&app, &w, id).await;
    assert_eq!(activity(&r, "deploy", "after")["status"], "Skipped");
    assert_eq!(activity(&r, "rollback", "revert")["status"], "Running");
    act(&app, &w.rm_token, id, "rollback", "revert", "complete", json!({})).await;
    app.run_until_idle().await;
    assert_eq!(get(&app, &w, id).await["status"], "RolledBack");
}

#[tokio::test]
async fn failure_manual_retry() {
    let app = TestApp::spawn().await;
    let w = world(&app, &[], &[]).await;
    let id = fail_step(&app, &w, &failing("manual", true)).await;
    let r = get(&app, &w, id).await;
    assert_eq!(r["status"], "OnHold");
    assert!(r["status_reason"].as_str().unwrap().contains("a release manager decides"));
    assert_eq!(act(&app, &w.rm_token, id, "deploy", "step", "retry", json!({"reason": "flaky"})).await.0, 200);
    app.run_until_idle().await;
    let r = get(&app, &w, id).await;
    assert_eq!(activity(&r, "deploy", "step")["status"], "Running");
    assert_eq!(activity(&r, "deploy", "step")["attempts"], 2, "a new attempt");
}

#[tokio::test]
async fn failure_manual_ignore_with_reason() {
    let app = TestApp::spawn().await;
    let w = world(&app, &[], &[]).await;
    let id = fail_step(&app, &w, &failing("manual", false)).await;
    assert_eq!(act(&app, &w.rm_token, id, "deploy", "step", "ignore", json!({})).await.0, 422, "a reason is required");
    assert_eq!(act(&app, &w.rm_token, id, "deploy", "step", "ignore", json!({"reason": "known issue"})).await.0, 200);
    app.run_until_idle().await;
    act(&app, &w.rm_token, id, "deploy", "after", "complete", json!({})).await;
    app.run_until_idle().await;
    assert_eq!(get(&app, &w, id).await["status"], "PartialSuccess");
}

#[tokio::test]
async fn failure_manual_fix_and_continue() {
    let app = TestApp::spawn().await;
    let w = world(&app, &[], &[]).await;
    let id = fail_step(&app, &w, &failing("manual", false)).await;
    assert_eq!(act(&app, &w.rm_token, id, "deploy", "step", "fix", json!({"reason": "restarted the pod by hand"})).await.0, 200);
    app.run_until_idle().await;
    act(&app, &w.rm_token, id, "deploy", "after", "complete", json!({})).await;
    app.run_until_idle().await;
    assert_eq!(get(&app, &w, id).await["status"], "Success");
}

#[tokio::test]
async fn failure_manual_roll_back_and_abort() {
    let app = TestApp::spawn().await;
    let w = world(&app, &[], &[]).await;
    let id = fail_step(&app, &w, &failing("manual", true)).await;
    let (status, _) =
        body(app.api_post(&w.rm_token, &format!("/api/v1/releases/{id}/rollback"), &json!({"reason": "give up"})).await).await;
    assert_eq!(status, 200);
    app.run_until_idle().await;
    let r = get(&app, &w, id).await;
    assert_eq!(activity(&r, "rollback", "revert")["status"], "Running");

    let id = fail_step(&app, &w, &failing("manual", true).replace("Fails manual true", "Abort me")).await;
    let (status, r) = body(app.api_post(&w.rm_token, &format!("/api/v1/releases/{id}/abort"), &json!({"reason": "stop"})).await).await;
    assert_eq!((status, r["status"].as_str()), (200, Some("Aborted")));
    assert_eq!(activity(&r, "deploy", "step")["status"], "Aborted");
    assert_eq!(activity(&r, "deploy", "after")["status"], "Aborted");
    app.run_until_idle().await;
    assert_eq!(get(&app, &w, id).await["status"], "Aborted", "nothing starts after an abort");
}

#[tokio::test]
async fn an_approval_cannot_be_ignored_and_a_retry_opens_a_new_round() {
    let app = TestApp::spawn().await;
    let w = world(&app, &["qa1"], &[("qa", &["qa1"])]).await;
    let id = start(
        &app,
        &w,
        "name: One approval\nphases: [{key: p, name: P, activities: [{key: ok, name: Go, kind: approval, approvers: \"group:qa\"}]}]\n",
        json!({}),
    )
    .await;
    app.run_until_idle().await;
    assert_eq!(act(&app, &w.tokens["qa1"], id, "p", "ok", "reject", json!({})).await.0, 422, "a rejection needs a reason");
    assert_eq!(act(&app, &w.tokens["qa1"], id, "p", "ok", "reject", json!({"reason": "tests missing"})).await.0, 200);
    app.run_until_idle().await;
    let (status, e) = act(&app, &w.rm_token, id, "p", "ok", "ignore", json!({"reason": "ship it"})).await;
    assert_eq!(status, 403);
    assert!(e["error"]["message"].as_str().unwrap().contains("cannot be ignored"));
    assert_eq!(act(&app, &w.rm_token, id, "p", "ok", "retry", json!({"reason": "tests added"})).await.0, 200);
    app.run_until_idle().await;
    assert_eq!(act(&app, &w.tokens["qa1"], id, "p", "ok", "approve", json!({})).await.0, 200, "a new round: a new vote");
    app.run_until_idle().await;
    assert_eq!(get(&app, &w, id).await["status"], "Success");
}

#[tokio::test]
async fn not_before_and_wait_honour_the_clock_across_dst() {
    let app = TestApp::spawn().await;
    let w = world(&app, &[], &[]).await;
    // Friday 2026-10-23 09:00 Berlin (UTC+2); the clocks go back on Sunday the 25th.
    let start_at = Utc.with_ymd_and_hms(2026, 10, 23, 7, 0, 0).unwrap();
    app.clock.set(start_at - TimeDelta::hours(1));
    let yaml = "name: Timed\nphases:\n  - key: first\n    name: First\n    activities: [{key: pause, name: Pause, kind: wait, for: 90m}]\n  - key: monday\n    name: Monday\n    depends_on: [first]\n    not_before: \"+3d 09:00\"\n    activities: [{key: go, name: Go, kind: manual}]\n";
    let schedule =
        json!({"schedule": {"start": "2026-10-23T09:00", "end": "2026-10-27T09:00", "time_zone": "Europe/Berlin"}, "activate": false});
    let id = start(&app, &w, yaml, schedule).await;
    app.clock.set(start_at);
    app.run_until_idle().await;
    let r = get(&app, &w, id).await;
    assert_eq!(r["status"], "Running", "a wait is running");
    assert_eq!(activity(&r, "first", "pause")["status"], "Waiting");
    app.clock.set(start_at + TimeDelta::minutes(89));
    app.run_until_idle().await;
    assert_eq!(activity(&get(&app, &w, id).await, "first", "pause")["status"], "Waiting");
    app.clock.set(start_at + TimeDelta::minutes(90));
    app.run_until_idle().await;
    let r = get(&app, &w, id).await;
    assert_eq!(activity(&r, "first", "pause")["status"], "Success");
    assert_eq!(r["phases"][1]["status"], "Waiting", "not before Monday 09:00");
    assert_eq!(r["status"], "Running");
    // Monday 09:00 in Berlin is 08:00 UTC after the change (it was 07:00 UTC on Friday).
    app.clock.set(Utc.with_ymd_and_hms(2026, 10, 26, 7, 59, 59).unwrap());
    app.run_until_idle().await;
    assert_eq!(get(&app, &w, id).await["phases"][1]["status"], "Waiting");
    app.clock.set(Utc.with_ymd_and_hms(2026, 10, 26, 8, 0, 0).unwrap());
    app.run_until_idle().await;
    let r = get(&app, &w, id).await;
    assert_eq!(r["phases"][1]["status"], "Running");
    assert_eq!(r["status"], "OnHold");
    assert!(w.account > 0);
}

#[tokio::test]
async fn people_are_refused_what_they_may_not_do_and_see_what_they_may() {
    let app = TestApp::spawn().await;
    let w = world(&app, &["ops1", "ops2", "qa1", "vera"], &[("qa", &["qa1"]), ("ops", &["ops2"])]).await;
    app.create_org(w.account, "identity").await;
    let other_rm = app.create_user(w.account, "irm@acme.example.com", "org_release_manager", "identity").await;
    let other_token = app.api_token(&other_rm).await;
    let id = start(&app, &w, TWO_STEP, json!({})).await;
    app.run_until_idle().await;

    let verbs = ["complete", "fail", "approve", "reject", "retry", "ignore", "fix"];
    let activities = [("prepare", "db"), ("prepare", "flags"), ("signoff", "qa")];
    let outsiders = [
        ("viewer", w.tokens["vera"].clone()),
        ("approver of another activity", w.tokens["qa1"].clone()),
        ("another org's release manager", other_token.clone()),
    ];
    for (who, token) in &outsiders {
        for (phase, key) in activities {
            for verb in verbs {
                let (status, e) = act(&app, token, id, phase, key, verb, json!({"reason": "x"})).await;
                assert_eq!(status, 403, "{who} {verb} {phase}.{key}: {e}");
            }
        }
        for (path, body_json) in [("abort", json!({"reason": "x"})), ("rollback", json!({"reason": "x"})), ("restart", json!({}))] {
            let status = app.api_post(token, &format!("/api/v1/releases/{id}/{path}"), &body_json).await.status();
            assert_eq!(status, 403, "{who} {path}");
        }
    }
    assert_eq!(get(&app, &w, id).await["status"], "OnHold", "nothing changed");

    // The page lists exactly what each person may do.
    let page_for = |email: &'static str| {
        let client = app.new_client();
        async move {
            assert_eq!(client.login(email, crate::common::PASSWORD).await.status(), 303);
            client.get_html(&format!("/releases/{id}")).await
        }
    };
    let ops_page = page_for("ops1@acme.example.com").await;
    assert!(ops_page.contains(r#"data-allowed="complete fail""#), "the owner may complete or fail db");
    assert_eq!(ops_page.matches("data-allowed=").count(), 1, "and nothing else");
    let viewer_page = page_for("vera@acme.example.com").await;
    assert!(!viewer_page.contains("data-allowed=") && !viewer_page.contains("Abort release"));
    let rm_page = page_for("rm@acme.example.com").await;
    assert!(rm_page.contains("Abort release"));

    for key in ["db", "flags"] {
        act(&app, &w.rm_token, id, "prepare", key, "complete", json!({})).await;
    }
    app.run_until_idle().await;
    let qa_page = page_for("qa1@acme.example.com").await;
    assert!(qa_page.contains(r#"data-allowed="approve reject""#), "the approver may vote");
    assert_eq!(qa_page.matches("data-allowed=").count(), 1);
    let (status, _) = act(&app, &w.tokens["qa1"], id, "signoff", "qa", "complete", json!({})).await;
    assert_eq!(status, 403);
}

#[tokio::test]
async fn a_scheduled_release_starts_at_its_time_and_run_now_moves_its_offsets() {
    let app = TestApp::spawn().await;
    let w = world(&app, &[], &[]).await;
    let now = app.clock_now();
    let tomorrow = now + TimeDelta::days(1);
    let yaml = "name: Timed\nphases:\n  - key: go\n    name: Go\n    not_before: \"+90m\"\n    activities: [{key: ship, name: Ship, kind: manual}]\n";
    let schedule =
        json!({"schedule": {"start": tomorrow.to_rfc3339(), "end": (tomorrow + TimeDelta::hours(4)).to_rfc3339()}, "activate": false});
    let id = start(&app, &w, yaml, schedule).await;

    // By hand before its start: refused, naming the start; it stays a draft.
    let (status, e) = body(app.api_post(&w.rm_token, &format!("/api/v1/releases/{id}/activate"), &json!({})).await).await;
    assert_eq!((status, e["error"]["code"].as_str()), (409, Some("scheduled")), "{e}");
    let local = tomorrow.format("%Y-%m-%d %H:%M").to_string();
    assert!(e["error"]["message"].as_str().unwrap().contains(&local), "the start is named: {e}");
    assert_eq!(get(&app, &w, id).await["state"], "draft");
    // Create-and-activate of a scheduled release is refused the same way.
    let (status, p) =
        body(app.api_post(&w.rm_token, "/api/v1/processes", &json!({"definition": yaml.replace("Timed", "Timed 2")})).await).await;
    assert_eq!(status, 201, "{p}");
    let eager = json!({"process_id": p["id"], "name": "Ledger 9.2 to PROD1", "activate": true,
                       "schedule": {"start": tomorrow.to_rfc3339(), "end": (tomorrow + TimeDelta::hours(4)).to_rfc3339()}});
    let (status, e) = body(app.api_post(&w.rm_token, "/api/v1/releases", &eager).await).await;
    assert_eq!((status, e["error"]["code"].as_str()), (409, Some("scheduled")), "{e}");

    // Run now: now becomes the start, so "+90m" counts from here.
    let run_at = now + TimeDelta::minutes(10);
    app.clock.set(run_at);
    let (status, r) =
        body(app.api_post(&w.rm_token, &format!("/api/v1/releases/{id}/run-now"), &json!({"reason": "CAB moved it up"})).await).await;
    assert_eq!((status, r["state"].as_str()), (200, Some("active")), "{r}");
    app.run_until_idle().await;
    assert_eq!(get(&app, &w, id).await["phases"][0]["status"], "Waiting");
    app.clock.set(run_at + TimeDelta::minutes(89));
    app.run_until_idle().await;
    assert_eq!(get(&app, &w, id).await["phases"][0]["status"], "Waiting", "not before 90 minutes after Run now");
    app.clock.set(run_at + TimeDelta::minutes(90));
    app.run_until_idle().await;
    let r = get(&app, &w, id).await;
    assert_eq!(r["phases"][0]["status"], "Running");
    assert_eq!(activity(&r, "go", "ship")["status"], "Running");
}

#[tokio::test]
async fn manual_approval_and_wait_fail_at_their_timeout_not_before_and_follow_on_failure() {
    let app = TestApp::spawn().await;
    let w = world(&app, &["qa1"], &[("qa", &["qa1"])]).await;
    let manual = "name: Timed task\nphases: [{key: p, name: P, activities: [{key: task, name: Cut branch, kind: manual, timeout: 2m, on_failure: fail}]}]\n";
    let approval = "name: Timed sign-off
phases:
  - key: q
    name: Q
    activities:
      - {key: ok, name: QA sign-off, kind: approval, approvers: \"group:qa\", timeout: 2m}
      - {key: soak, name: Soak, kind: wait, for: 1h, timeout: 2m, critical: false}
";
    let task_release = start(&app, &w, manual, json!({})).await;
    let id = start(&app, &w, approval, json!({})).await;
    app.run_until_idle().await;
    app.clock.advance(TimeDelta::seconds(119));
    app.run_until_idle().await;
    let r = get(&app, &w, id).await;
    assert_eq!(activity(&get(&app, &w, task_release).await, "p", "task")["status"], "Running", "not before its timeout");
    assert_eq!(activity(&r, "q", "ok")["status"], "Running", "{r}");
    assert_eq!(activity(&r, "q", "soak")["status"], "Waiting");

    app.clock.advance(TimeDelta::seconds(1));
    app.run_until_idle().await;
    // on_failure: fail → the manual task fails its release.
    let t = get(&app, &w, task_release).await;
    let task = activity(&t, "p", "task");
    assert_eq!((task["status"].as_str(), t["status"].as_str()), (Some("Failed"), Some("Failed")), "{t}");
    assert!(task["status_reason"].as_str().unwrap().contains("timeout of 2m"), "the reason names the timeout: {task}");
    // The approval (on_failure manual by default) waits for a decision; the non-critical wait
    // fails and does not fail the release.
    let r = get(&app, &w, id).await;
    let ok = activity(&r, "q", "ok");
    assert_eq!(ok["status"], "OnHold", "{r}");
    assert!(ok["status_reason"].as_str().unwrap().contains("timed out: no outcome within its timeout of 2m"), "{ok}");
    assert!(ok["status_reason"].as_str().unwrap().contains("a release manager decides"), "{ok}");
    assert_eq!(activity(&r, "q", "soak")["status"], "Failed");
    assert_eq!(r["status"], "OnHold");
    let (status, e) = act(&app, &w.tokens["qa1"], id, "q", "ok", "approve", json!({})).await;
    assert_eq!(status, 409, "a timed-out approval takes no more votes: {e}");

    // A decision hold does not time out again; a retry opens a new round with a new deadline.
    app.clock.advance(TimeDelta::minutes(10));
    app.run_until_idle().await;
    assert_eq!(activity(&get(&app, &w, id).await, "q", "ok")["status"], "OnHold");
    assert_eq!(act(&app, &w.rm_token, id, "q", "ok", "retry", json!({"reason": "QA is back"})).await.0, 200);
    app.run_until_idle().await;
    assert_eq!(activity(&get(&app, &w, id).await, "q", "ok")["status"], "Running");
    app.clock.advance(TimeDelta::minutes(2));
    app.run_until_idle().await;
    assert_eq!(activity(&get(&app, &w, id).await, "q", "ok")["status"], "OnHold", "the new round timed out too");
}

#[tokio::test]
async fn a_manual_task_records_outputs_and_a_comment_from_the_page_and_a_reassigned_task_moves_to_its_new_owner() {
    use crate::common::PASSWORD;
    let app = TestApp::spawn().await;
    let w = world(&app, &["ana", "bob"], &[]).await;
    let yaml = "name: Smoke and verify
phases:
  - key: p
    name: P
    activities:
      - {key: smoke, name: Smoke tests, kind: manual, owner: \"user:ana@acme.example.com\", records: [build_url, verdict]}
      - {key: verify, name: Verify, kind: manual, owner: \"user:ana@acme.example.com\"}
";
    let id = start(&app, &w, yaml, json!({})).await;
    app.run_until_idle().await;
    let ana = app.new_client();
    assert_eq!(ana.login("ana@acme.example.com", PASSWORD).await.status(), 303);
    let page = ana.get_html(&format!("/releases/{id}")).await;
    assert!(page.contains("name=\"out.build_url\"") && page.contains("name=\"out.verdict\""), "the declared outputs are asked for");

    // Complete from the page: outputs and a comment are recorded.
    let res = ana
        .post_form(
            &format!("/releases/{id}/activities/p/smoke/complete"),
            &[("out.build_url", "https://ci.example.com/builds/42"), ("out.verdict", "green"), ("comment", "all suites pass")],
        )
        .await;
    assert_eq!(res.status(), 303);
    let r = get(&app, &w, id).await;
    let smoke = activity(&r, "p", "smoke");
    assert_eq!(smoke["status"], "Success", "{r}");
    assert_eq!(smoke["outputs"], json!({"build_url": "https://ci.example.com/builds/42", "verdict": "green"}));
    let page = ana.get_html(&format!("/releases/{id}")).await;
    assert!(page.contains("all suites pass"), "the comment is on the page");
    assert!(page.contains("https://ci.example.com/builds/42"), "recorded as an artifact");

    // A comment thread: who, when, text; on the page, in /work and on the audit trail.
    let res = ana.post_form(&format!("/releases/{id}/activities/p/verify/comment"), &[("text", "Waiting for the staging DNS")]).await;
    assert_eq!(res.status(), 303);
    let res = ana.post_form(&format!("/releases/{id}/activities/p/verify/comment"), &[("text", "  ")]).await;
    assert_eq!(res.status(), 303, "refused with a message, not an error page");
    let page = ana.get_html(&format!("/releases/{id}")).await;
    assert!(page.contains("Waiting for the staging DNS") && page.contains("ana@acme.example.com ·"), "{page}");
    assert!(ana.get_html("/work").await.contains("Waiting for the staging DNS"), "/work shows the thread");
    let (_, trail) = body(app.api_get(&w.rm_token, &format!("/api/v1/releases/{id}/audit?action=activity.comment")).await).await;
    assert_eq!(trail["events"].as_array().map(Vec::len), Some(1), "{trail}");

    // Reassign: only a release manager; the new owner is told; the old one can no longer complete.
    let res = ana.post_form(&format!("/releases/{id}/activities/p/verify/reassign"), &[("owner", "user:bob@acme.example.com")]).await;
    assert_eq!(res.status(), 403);
    let rm = app.new_client();
    assert_eq!(rm.login("rm@acme.example.com", PASSWORD).await.status(), 303);
    let res = rm.post_form(&format!("/releases/{id}/activities/p/verify/reassign"), &[("owner", "user:ghost@acme.example.com")]).await;
    assert_eq!(res.status(), 303);
    assert!(rm.get_html(&format!("/releases/{id}")).await.contains("names no active user or group"), "a clear refusal");
    let res = rm.post_form(&format!("/releases/{id}/activities/p/verify/reassign"), &[("owner", "user:bob@acme.example.com")]).await;
    assert_eq!(res.status(), 303);
    assert_eq!(activity(&get(&app, &w, id).await, "p", "verify")["owner"], "user:bob@acme.example.com");
    let (status, e) = act(&app, &w.tokens["ana"], id, "p", "verify", "complete", json!({})).await;
    assert_eq!(status, 403, "the former owner: {e}");
    {
        use diesel::prelude::*;
        use diesel_async::RunQueryDsl;
        use railyard::db::schema::notification_outbox::dsl as o;
        let mut conn = app.conn().await;
        let bob: i64 = railyard::db::models::users::User::by_email(&mut conn, "bob@acme.example.com").await.unwrap().unwrap().id;
        let told: Vec<(Option<i64>, Value)> = o::notification_outbox
            .filter(o::kind.eq("activity.reassigned"))
            .select((o::user_id, o::payload))
            .load(&mut conn)
            .await
            .unwrap();
        assert!(!told.is_empty() && told.iter().all(|(u, _)| *u == Some(bob)), "only bob is told: {told:?}");
        assert!(told[0].1.to_string().contains("Verify"), "{told:?}");
    }
    let (_, trail) = body(app.api_get(&w.rm_token, &format!("/api/v1/releases/{id}/audit?action=activity.reassign")).await).await;
    assert_eq!(trail["events"][0]["details"]["from"], "user:ana@acme.example.com", "{trail}");
    assert_eq!(act(&app, &w.tokens["bob"], id, "p", "verify", "complete", json!({})).await.0, 200);
    app.run_until_idle().await;
    assert_eq!(get(&app, &w, id).await["status"], "Success");
}

/// Issue 30, item 7: a database trigger makes every engine step of one release fail. The 20
/// releases activated with it all finish; it is set aside (OnHold, hold `engine_error`, the
/// reason in its JSON, counted in /metrics); once the trigger is gone, retry finishes it.
#[tokio::test]
async fn a_poisoned_release_is_set_aside_and_never_holds_back_the_others() {
    use crate::webhooks::{allow, Receiver};
    use diesel_async::RunQueryDsl;
    let app = TestApp::spawn().await;
    let w = world(&app, &[], &[]).await;
    let rx = Receiver::start().await;
    allow(&app, &[format!("127.0.0.1:{}", rx.port)]).await;
    let yaml = format!(
        "name: Ping\nphases: [{{key: p, name: P, activities: [{{key: ping, name: Ping, kind: webhook, config: {{url: \"{}/ping\"}}}}]}}]\n",
        rx.base
    );
    let (status, p) = body(app.api_post(&w.rm_token, "/api/v1/processes", &json!({"definition": yaml})).await).await;
    assert_eq!(status, 201, "{p}");
    let mut ids = Vec::new();
    for i in 0..21 {
        let (status, r) = body(
            app.api_post(&w.rm_token, "/api/v1/releases", &json!({"process_id": p["id"], "name": format!("Ping {i}"), "activate": true}))
                .await,
        )
        .await;
        assert_eq!(status, 201, "{r}");
        ids.push(r["id"].as_i64().unwrap());
    }
    let poisoned = ids[3];
    let mut conn = app.conn().await;
    diesel::sql_query(format!(
        "CREATE FUNCTION poison() RETURNS trigger AS $$ BEGIN \
           IF NEW.release_id = {poisoned} THEN RAISE EXCEPTION 'poisoned release %', NEW.release_id; END IF; RETURN NEW; \
         END $$ LANGUAGE plpgsql"
    ))
    .execute(&mut conn)
    .await
    .unwrap();
    for table in ["release_phases", "release_activities"] {
        diesel::sql_query(format!("CREATE TRIGGER poison BEFORE UPDATE ON {table} FOR EACH ROW EXECUTE FUNCTION poison()"))
            .execute(&mut conn)
            .await
            .unwrap();
    }
    for _ in 0..8 {
        app.run_until_idle().await;
    }
    for id in ids.iter().filter(|id| **id != poisoned) {
        assert_eq!(get(&app, &w, *id).await["status"], "Success", "release {id} finished");
    }
    let r = get(&app, &w, poisoned).await;
    assert_eq!((r["status"].as_str(), r["hold"].as_str()), (Some("OnHold"), Some("engine_error")), "{r}");
    assert!(r["status_reason"].as_str().unwrap_or_default().contains("poisoned release"), "{r}");
    let metrics = app.new_client().get("/metrics").await.text().await.unwrap();
    assert!(metrics.contains("railyard_releases_set_aside 1"), "counted in /metrics");

    let (status, refused) =
        body(app.api_post(&w.rm_token, &format!("/api/v1/releases/{}/retry", ids[0]), &json!({"reason": "x"})).await).await;
    assert_eq!(status, 409, "only a set-aside release is retried: {refused}");
    for table in ["release_phases", "release_activities"] {
        diesel::sql_query(format!("DROP TRIGGER poison ON {table}")).execute(&mut conn).await.unwrap();
    }
    let (status, resumed) =
        body(app.api_post(&w.rm_token, &format!("/api/v1/releases/{poisoned}/retry"), &json!({"reason": "trigger dropped"})).await).await;
    assert_eq!(status, 200, "{resumed}");
    assert!(resumed["hold"].is_null(), "{resumed}");
    app.run_until_idle().await;
    assert_eq!(get(&app, &w, poisoned).await["status"], "Success");
    assert_eq!(rx.to("/ping").len(), 21, "every release sent its request once");
}
