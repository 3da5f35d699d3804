//! Release groups through the JSON API and their page: edit, preview, skip, pause, delete.

use crate::common::{TestApp, PASSWORD};
use crate::engine::{body, get, world};
use chrono::TimeZone;
use serde_json::{json, Value};

fn draft_ids(list: &Value, state: &str) -> Vec<i64> {
    let mut ids: Vec<i64> =
        list["releases"].as_array().unwrap().iter().filter(|r| r["state"] == state).map(|r| r["id"].as_i64().unwrap()).collect();
    ids.sort();
    ids
}

#[tokio::test]
async fn a_group_is_created_edited_previewed_skipped_and_deleted_through_the_api() {
    let app = TestApp::spawn().await;
    let w = world(&app, &[], &[]).await;
    let yaml = "name: Weekly train\nphases: [{key: p, name: P, activities: [{key: a, name: A, kind: manual}]}]\n";
    let (_, process) = body(app.api_post(&w.rm_token, "/api/v1/processes", &json!({"definition": yaml})).await).await;
    app.clock.set(chrono_tz::Europe::Berlin.with_ymd_and_hms(2026, 10, 19, 8, 0, 0).unwrap().with_timezone(&chrono::Utc));
    let settings = json!({
        "name": "Trains", "process_id": process["id"], "rrule": "FREQ=WEEKLY;BYDAY=MO", "dtstart": "2026-10-19T09:00",
        "time_zone": "Europe/Berlin", "duration": "1d", "name_template": "Train {date}", "horizon_days": 21,
    });

    // Bad input names the field.
    let mut bad = settings.clone();
    bad["rrule"] = json!("FREQ=SOMETIMES");
    let (status, e) = body(app.api_post(&w.rm_token, "/api/v1/release-groups", &bad).await).await;
    assert_eq!((status, e["error"]["field"].as_str()), (422, Some("rrule")), "{e}");

    let (status, g) = body(app.api_post(&w.rm_token, "/api/v1/release-groups", &settings).await).await;
    assert_eq!(status, 201, "{g}");
    assert_eq!((g["duration"].as_str(), g["horizon_days"].as_i64(), g["paused"].as_bool()), (Some("1d"), Some(21), Some(false)));
    let id = g["id"].as_i64().unwrap();
    let (_, list) = body(app.api_get(&w.rm_token, "/api/v1/release-groups").await).await;
    assert_eq!(list["release_groups"].as_array().unwrap().len(), 1);

    // Three Mondays within 21 days; the first starts at 09:00 and runs.
    app.run_until_idle().await;
    app.clock.advance(chrono::TimeDelta::hours(1));
    app.run_until_idle().await;
    let (_, releases) = body(app.api_get(&w.rm_token, "/api/v1/releases?q=Train").await).await;
    let active = draft_ids(&releases, "active");
    let drafts = draft_ids(&releases, "draft");
    assert_eq!((active.len(), drafts.len()), (1, 2), "{releases}");

    // The preview: the next ten starts, DST-correct, with the releases already made.
    let (status, preview) = body(app.api_get(&w.rm_token, &format!("/api/v1/release-groups/{id}/preview")).await).await;
    assert_eq!(status, 200, "{preview}");
    let occurrences = preview["occurrences"].as_array().unwrap();
    assert_eq!(occurrences.len(), 10);
    assert_eq!(occurrences[0]["local_start"], "Mon 2026-10-19 09:00 CEST", "the one starting now");
    assert_eq!(occurrences[1]["start"], "2026-10-26T08:00:00Z", "09:00 CET after the clocks went back");
    assert_eq!(occurrences[1]["local_start"], "Mon 2026-10-26 09:00 CET");
    assert!(occurrences[1]["release_id"].is_i64());
    assert!(occurrences[5]["release_id"].is_null());

    // PATCH the cadence: Tuesdays from now on; the Monday drafts already made stay.
    let (status, g) = body(
        app.api_send(
            reqwest::Method::PATCH,
            &w.rm_token,
            &format!("/api/v1/release-groups/{id}"),
            &json!({"rrule": "FREQ=WEEKLY;BYDAY=TU", "dtstart": "2026-10-20T09:00", "horizon_days": 22}),
        )
        .await,
    )
    .await;
    assert_eq!(status, 200, "{g}");
    assert_eq!(
        (g["rrule"].as_str(), g["name"].as_str(), g["horizon_days"].as_i64()),
        (Some("FREQ=WEEKLY;BYDAY=TU"), Some("Trains"), Some(22))
    );
    let (status, e) = body(
        app.api_send(reqwest::Method::PATCH, &w.rm_token, &format!("/api/v1/release-groups/{id}"), &json!({"duration": "soon"})).await,
    )
    .await;
    assert_eq!((status, e["error"]["field"].as_str()), (422, Some("duration")), "{e}");
    let (_, preview) = body(app.api_get(&w.rm_token, &format!("/api/v1/release-groups/{id}/preview")).await).await;
    assert_eq!(preview["occurrences"][0]["start"], "2026-10-20T07:00:00Z");
    for d in &drafts {
        assert_eq!(get(&app, &w, *d).await["state"], "draft", "release {d} made before the edit stays");
    }

    // Skip a holiday by its date; a date without an occurrence is refused, naming the field.
    let skip = |date: &'static str| {
        let token = w.rm_token.clone();
        let app = &app;
        async move { body(app.api_post(&token, &format!("/api/v1/release-groups/{id}/skip"), &json!({"date": date})).await).await }
    };
    let (status, skipped) = skip("2026-10-27").await;
    assert_eq!(status, 200, "{skipped}");
    assert_eq!(skipped["skipped"], json!(["2026-10-27T08:00:00Z"]));
    let (status, e) = skip("2026-10-28").await;
    assert_eq!((status, e["error"]["field"].as_str()), (422, Some("date")), "{e}");
    app.run_until_idle().await;
    let (_, releases) = body(app.api_get(&w.rm_token, "/api/v1/releases?q=Train").await).await;
    let starts: Vec<String> =
        releases["releases"].as_array().unwrap().iter().map(|r| r["schedule"]["start"].as_str().unwrap().to_string()).collect();
    assert!(!starts.contains(&"2026-10-27T08:00:00Z".to_string()), "skipped: {starts:?}");
    assert!(starts.contains(&"2026-11-03T08:00:00Z".to_string()), "the next Tuesday is made: {starts:?}");

    // Pause and resume answer the group.
    let (status, g) = body(app.api_post(&w.rm_token, &format!("/api/v1/release-groups/{id}/pause"), &json!({})).await).await;
    assert_eq!((status, g["paused"].as_bool()), (200, Some(true)));
    let (_, g) = body(app.api_post(&w.rm_token, &format!("/api/v1/release-groups/{id}/resume"), &json!({})).await).await;
    assert_eq!(g["paused"], false);

    // DELETE: every draft goes with the group; the running release stays.
    let (_, releases) = body(app.api_get(&w.rm_token, "/api/v1/releases?q=Train").await).await;
    let drafts_now = draft_ids(&releases, "draft");
    let (status, deleted) =
        body(app.api_send(reqwest::Method::DELETE, &w.rm_token, &format!("/api/v1/release-groups/{id}"), &json!({})).await).await;
    assert_eq!(status, 200, "{deleted}");
    let mut gone: Vec<i64> = deleted["deleted_drafts"].as_array().unwrap().iter().map(|v| v.as_i64().unwrap()).collect();
    gone.sort();
    assert_eq!(gone, drafts_now);
    for d in &gone {
        assert_eq!(app.api_get(&w.rm_token, &format!("/api/v1/releases/{d}")).await.status(), 404);
    }
    assert_eq!(get(&app, &w, active[0]).await["state"], "active", "the running release stays");
    assert_eq!(app.api_get(&w.rm_token, &format!("/api/v1/release-groups/{id}")).await.status(), 404);
    let (_, trail) = body(app.api_get(&w.rm_token, "/api/v1/audit?action=release_group.delete").await).await;
    let event = &trail["events"][0];
    assert_eq!(event["details"]["deleted_drafts"].as_array().map(Vec::len), Some(gone.len()), "{trail}");
}

#[tokio::test]
async fn the_group_page_edits_with_errors_by_field_and_lists_the_drafts_a_delete_takes() {
    let app = TestApp::spawn().await;
    let w = world(&app, &[], &[]).await;
    let yaml = "name: Weekly train\nphases: [{key: p, name: P, activities: [{key: a, name: A, kind: manual}]}]\n";
    let (_, process) = body(app.api_post(&w.rm_token, "/api/v1/processes", &json!({"definition": yaml})).await).await;
    app.clock.set(chrono::Utc.with_ymd_and_hms(2026, 10, 19, 6, 0, 0).unwrap());
    let settings = json!({
        "name": "Trains", "process_id": process["id"], "rrule": "FREQ=WEEKLY;BYDAY=MO", "dtstart": "2026-10-19T09:00",
        "time_zone": "UTC", "duration": "4h", "name_template": "Train {date}", "horizon_days": 8,
    });
    let (_, g) = body(app.api_post(&w.rm_token, "/api/v1/release-groups", &settings).await).await;
    let id = g["id"].as_i64().unwrap();
    app.run_until_idle().await;
    let rm = app.new_client();
    assert_eq!(rm.login("rm@acme.example.com", PASSWORD).await.status(), 303);
    let page = rm.get_html(&format!("/release-groups/{id}")).await;
    assert!(page.contains("Train 2026-10-19") && page.contains("Train 2026-10-26"), "the drafts a delete would take are listed: {page}");
    assert!(page.contains("value=\"4h\""), "the form holds the settings");

    let res = rm
        .post_form(
            &format!("/release-groups/{id}"),
            &[
                ("name", "Trains"),
                ("process_id", &process["id"].to_string()),
                ("rrule", "FREQ=WEEKLY;BYDAY=MO"),
                ("dtstart", "2026-10-19T09:00"),
                ("time_zone", "UTC"),
                ("duration", "4h"),
                ("name_template", "Release train {date}"),
                ("horizon_days", "forever"),
            ],
        )
        .await;
    assert_eq!(res.status(), 422);
    let html = res.text().await.unwrap();
    assert!(html.contains("horizon_days:") && html.contains("value=\"Release train {date}\""), "the field is named and the input kept");
    let res = rm.post_form(&format!("/release-groups/{id}/delete"), &[]).await;
    assert_eq!(res.status(), 303);
    let (_, releases) = body(app.api_get(&w.rm_token, "/api/v1/releases?q=Train").await).await;
    assert_eq!(releases["total"], 0, "both drafts went with the group: {releases}");
}

#[tokio::test]
async fn a_group_gives_its_releases_its_type_release_manager_and_stakeholders() {
    let app = TestApp::spawn().await;
    let w = world(&app, &["lead"], &[("qa", &["lead"])]).await;
    let yaml = "name: Weekly\nphases: [{key: p, name: P, activities: [{key: a, name: A, kind: manual}]}]\n";
    let (_, process) = body(app.api_post(&w.rm_token, "/api/v1/processes", &json!({"definition": yaml})).await).await;
    let settings = |name: &str| {
        json!({"name": name, "process_id": process["id"], "rrule": "FREQ=WEEKLY;BYDAY=MO", "dtstart": "2026-11-30T09:00",
               "time_zone": "UTC", "duration": "1d", "name_template": format!("{name} {{date}}"), "horizon_days": 7})
    };
    // By default: standard releases, managed by and told to whoever made the group.
    let (status, plain) = body(app.api_post(&w.rm_token, "/api/v1/release-groups", &settings("Cadence")).await).await;
    assert_eq!(status, 201, "{plain}");
    assert_eq!(plain["type"], "standard");
    assert_eq!(plain["owner"], "rm@acme.example.com");
    assert_eq!(plain["stakeholders"], json!(["user:rm@acme.example.com"]));
    // A train: system releases with a release manager and stakeholders of its own.
    let mut train = settings("Train");
    train["type"] = json!("system");
    train["owner"] = json!("rm@acme.example.com");
    train["stakeholders"] = json!(["group:qa", "user:lead@acme.example.com"]);
    let (status, g) = body(app.api_post(&w.rm_token, "/api/v1/release-groups", &train).await).await;
    assert_eq!(status, 201, "{g}");
    assert_eq!((g["type"].as_str(), g["stakeholders"].clone()), (Some("system"), json!(["group:qa", "user:lead@acme.example.com"])));
    let mut wrong = settings("Wrong");
    wrong["type"] = json!("weekly");
    let (status, e) = body(app.api_post(&w.rm_token, "/api/v1/release-groups", &wrong).await).await;
    assert_eq!((status, e["error"]["field"].as_str()), (422, Some("type")), "{e}");
    wrong["type"] = json!("system");
    wrong["stakeholders"] = json!(["user:nobody@acme.example.com"]);
    let (status, e) = body(app.api_post(&w.rm_token, "/api/v1/release-groups", &wrong).await).await;
    assert_eq!((status, e["error"]["field"].as_str()), (422, Some("stakeholders")), "{e}");
    app.run_until_idle().await;
    let (_, list) = body(app.api_get(&w.rm_token, "/api/v1/releases?q=Train").await).await;
    let made = list["releases"].as_array().unwrap();
    assert!(!made.is_empty(), "{list}");
    for r in made {
        let r = get(&app, &w, r["id"].as_i64().unwrap()).await;
        assert_eq!(r["type"], "system", "{r}");
        assert_eq!(r["owner"], "user:rm@acme.example.com", "{r}");
        assert_eq!(r["stakeholders"], json!(["group:qa", "user:lead@acme.example.com"]), "{r}");
    }
    let (_, list) = body(app.api_get(&w.rm_token, "/api/v1/releases?q=Cadence").await).await;
    let first = list["releases"].as_array().unwrap().first().cloned().expect("the cadence made a release");
    assert_eq!(get(&app, &w, first["id"].as_i64().unwrap()).await["type"], "standard");
}
