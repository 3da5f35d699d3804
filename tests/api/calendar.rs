//! The calendar: views in the viewer's zone, filters, conflicts.

use crate::common::{TestApp, PASSWORD};
use crate::engine::{body, get, world};
use serde_json::{json, Value};
use std::collections::BTreeSet;

async fn release(app: &TestApp, token: &str, process: &Value, name: &str, env: &str, start: &str, end: &str) -> i64 {
    let (status, r) = body(
        app.api_post(
            token,
            "/api/v1/releases",
            &json!({"process_id": process["id"], "name": name, "inputs": {"environment": env}, "schedule": {"start": start, "end": end, "time_zone": "UTC"}}),
        )
        .await,
    )
    .await;
    assert_eq!(status, 201, "{r}");
    r["id"].as_i64().unwrap()
}

fn ids(html: &str) -> BTreeSet<i64> {
    html.match_indices("data-release=\"").map(|(i, m)| html[i + m.len()..].split('"').next().unwrap().parse().unwrap()).collect()
}

#[tokio::test]
async fn views_show_exactly_the_right_releases_in_the_viewers_zone_and_flag_conflicts() {
    let app = TestApp::spawn().await;
    let w = world(&app, &["utc"], &[]).await;
    let admin = crate::webhooks::admin_token(&app).await;
    for env in ["PROD1", "PROD2"] {
        app.api_post(&admin, "/api/v1/environments", &json!({"name": env})).await;
    }
    let yaml = "name: Deploy\ninputs: [{name: environment, type: environment, required: true}]\nphases: [{key: p, name: P, activities: [{key: a, name: A, kind: manual}]}]\n";
    let (_, process) = body(app.api_post(&w.rm_token, "/api/v1/processes", &json!({"definition": yaml})).await).await;
    let t = &w.rm_token;
    let a = release(&app, t, &process, "Payments 1.0 to PROD1", "PROD1", "2026-10-10T08:00:00Z", "2026-10-10T10:00:00Z").await;
    // Oct 31 23:30 UTC is already Nov 1 00:30 in Berlin (after the clocks went back).
    let b = release(&app, t, &process, "Ledger 2.0 to PROD2", "PROD2", "2026-10-31T23:30:00Z", "2026-11-01T00:30:00Z").await;
    let c = release(&app, t, &process, "Payments 1.1 to PROD1", "PROD1", "2026-11-15T08:00:00Z", "2026-11-15T12:00:00Z").await;
    let d = release(&app, t, &process, "Identity 3.0 to PROD1", "PROD1", "2026-11-15T10:00:00Z", "2026-11-15T14:00:00Z").await;
    let e = release(&app, t, &process, "Web 4.0 to PROD2", "PROD2", "2026-11-15T08:00:00Z", "2026-11-15T12:00:00Z").await;
    let f = release(&app, t, &process, "Ledger 2.1 to PROD1", "PROD1", "2026-12-20T08:00:00Z", "2026-12-20T09:00:00Z").await;
    // Two releases of one group overlap by design and do not conflict.
    let g1 = release(&app, t, &process, "Week 51 train", "PROD1", "2026-12-14T08:00:00Z", "2026-12-30T08:00:00Z").await;
    let g2 = release(&app, t, &process, "Week 52 train", "PROD1", "2026-12-21T08:00:00Z", "2027-01-06T08:00:00Z").await;
    {
        use diesel_async::RunQueryDsl;
        let mut conn = app.conn().await;
        diesel::sql_query("UPDATE users SET time_zone = 'Europe/Berlin' WHERE email = 'rm@acme.example.com'")
            .execute(&mut conn)
            .await
            .unwrap();
        let group = diesel::sql_query(format!(
            "INSERT INTO release_groups (account_id, name, process_id, rrule, dtstart, time_zone, duration_minutes, name_template, horizon_days, created_at) \
             VALUES ({}, 'Trains', {}, 'FREQ=WEEKLY;BYDAY=MO', '2026-12-14 09:00', 'Europe/Berlin', 23040, 'Week {{isoweek}} train', 21, now())",
            w.account, process["id"]
        ));
        group.execute(&mut conn).await.unwrap();
        diesel::sql_query(format!(
            "UPDATE releases SET release_group_id = (SELECT id FROM release_groups LIMIT 1) WHERE id IN ({g1}, {g2})"
        ))
        .execute(&mut conn)
        .await
        .unwrap();
    }
    let berlin = app.new_client();
    assert_eq!(berlin.login("rm@acme.example.com", PASSWORD).await.status(), 303);
    let utc = app.new_client();
    assert_eq!(utc.login("utc@acme.example.com", PASSWORD).await.status(), 303);
    let view = |client: &crate::common::Client, q: &'static str| {
        let client = client.http.clone();
        let url = format!("{}/calendar?{q}", app.address);
        async move { ids(&client.get(url).send().await.unwrap().text().await.unwrap()) }
    };
    let set = |v: &[i64]| v.iter().copied().collect::<BTreeSet<i64>>();
    assert_eq!(view(&berlin, "view=month&date=2026-10-05").await, set(&[a]), "Berlin: B is in November");
    assert_eq!(view(&utc, "view=month&date=2026-10-05").await, set(&[a, b]), "UTC: B starts in October");
    assert_eq!(view(&berlin, "view=month&date=2026-11-20").await, set(&[b, c, d, e]));
    assert_eq!(view(&berlin, "view=week&date=2026-11-12").await, set(&[c, d, e]));
    assert_eq!(view(&berlin, "view=day&date=2026-11-15").await, set(&[c, d, e]));
    assert_eq!(view(&berlin, "view=day&date=2026-11-01").await, set(&[b]));
    assert_eq!(view(&utc, "view=day&date=2026-11-01").await, set(&[b]), "it ends after midnight UTC");
    assert_eq!(view(&berlin, "view=quarter&date=2026-11-01").await, set(&[a, b, c, d, e, f, g1, g2]));
    assert_eq!(view(&berlin, "view=agenda&date=2026-12-01").await, set(&[f, g1, g2]));
    assert_eq!(view(&berlin, "view=month&date=2026-11-20&environment=PROD2").await, set(&[b, e]), "filters combine with the view");
    assert_eq!(view(&berlin, "view=month&date=2026-11-20&environment=PROD1&type=hotfix").await, set(&[]));

    let (_, cal) = body(app.api_get(t, "/api/v1/calendar?from=2026-11-01T00:00:00Z&to=2027-01-01T00:00:00Z").await).await;
    let conflicts = |id: i64| cal["entries"].as_array().unwrap().iter().find(|x| x["release_id"] == id).unwrap()["conflicts"].clone();
    assert_eq!(conflicts(c), json!([d]), "overlapping on PROD1");
    assert_eq!(conflicts(d), json!([c]));
    assert_eq!(conflicts(e), json!([]), "same window, another environment");
    assert_eq!(conflicts(g1), json!([f]), "f, but not g2 of the same group");
    assert_eq!(conflicts(g2), json!([]), "g2 starts after f ended; and never with g1");
    let page = berlin.get_html("/calendar?view=day&date=2026-11-15").await;
    assert!(page.contains(&format!("conflicts with #{d}")));
    // Flagged on each release's page, and warned about (and recorded) when scheduling into one.
    let release_page = berlin.get_html(&format!("/releases/{c}")).await;
    assert!(release_page.contains(&format!("#{d} Identity 3.0 to PROD1")), "the conflict is on the release page");
    let (status, created) = body(
        app.api_post(
            t,
            "/api/v1/releases",
            &json!({"process_id": process["id"], "name": "Ledger 2.2 to PROD1", "inputs": {"environment": "PROD1"},
            "schedule": {"start": "2026-11-15T11:00:00Z", "end": "2026-11-15T13:00:00Z", "time_zone": "UTC"}}),
        )
        .await,
    )
    .await;
    assert_eq!(status, 201, "allowed");
    let warnings = created["warnings"].to_string();
    assert!(warnings.contains(&format!("release #{c}")) && warnings.contains(&format!("release #{d}")), "{warnings}");
    let (status, e) = body(app.api_get(t, "/api/v1/calendar?from=2026-12-01T00:00:00Z&to=2026-11-01T00:00:00Z").await).await;
    assert_eq!((status, e["error"]["field"].as_str()), (400, Some("to")));
    assert_eq!(berlin.get("/calendar?view=month&date=not-a-date").await.status(), 400);
}

#[tokio::test]
async fn a_weekly_group_creates_each_occurrence_exactly_once() {
    use chrono::TimeZone;
    let app = TestApp::spawn().await;
    let w = world(&app, &[], &[]).await;
    let yaml = "name: Weekly train\nphases: [{key: p, name: P, activities: [{key: a, name: A, kind: manual}]}]\n";
    let (_, process) = body(app.api_post(&w.rm_token, "/api/v1/processes", &json!({"definition": yaml})).await).await;
    // Monday 2026-10-19 08:00 Berlin: the first occurrence is an hour away; the clocks go back on the 25th.
    app.clock.set(chrono_tz::Europe::Berlin.with_ymd_and_hms(2026, 10, 19, 8, 0, 0).unwrap().with_timezone(&chrono::Utc));
    let rm = app.new_client();
    assert_eq!(rm.login("rm@acme.example.com", PASSWORD).await.status(), 303);
    let pid = process["id"].to_string();
    let form = |name: &'static str, rrule: &'static str, zone: &'static str, horizon: &'static str, dtstart: &'static str| {
        vec![
            ("name", name.to_string()),
            ("process_id", pid.clone()),
            ("rrule", rrule.to_string()),
            ("dtstart", dtstart.to_string()),
            ("time_zone", zone.to_string()),
            ("duration", "22d".to_string()),
            ("name_template", "Week {isoweek} System Release - {month} {year}".to_string()),
            ("horizon_days", horizon.to_string()),
        ]
    };
    let post = |fields: Vec<(&'static str, String)>| {
        let rm = &rm;
        async move {
            let refs: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
            rm.post_form("/release-groups", &refs).await
        }
    };
    // Bad input names the field.
    for (fields, field) in [
        (form("Bad rule", "FREQ=SOMETIMES", "Europe/Berlin", "21", "2026-10-19T09:00"), "rrule"),
        (form("Bad zone", "FREQ=WEEKLY;BYDAY=MO", "Mars/Olympus", "21", "2026-10-19T09:00"), "time_zone"),
        (form("Bad horizon", "FREQ=WEEKLY;BYDAY=MO", "Europe/Berlin", "36500", "2026-10-19T09:00"), "horizon_days"),
        (form("Bad start", "FREQ=WEEKLY;BYDAY=MO", "Europe/Berlin", "21", "someday"), "dtstart"),
    ] {
        let res = post(fields).await;
        assert_eq!(res.status(), 422, "{field}");
        assert!(res.text().await.unwrap().contains(&format!("{field}:")), "{field} is named");
    }
    assert_eq!(post(form("Trains", "FREQ=WEEKLY;BYDAY=MO", "Europe/Berlin", "21", "2026-10-19T09:00")).await.status(), 303);

    // The preview crosses the DST change at 09:00 local.
    let page = rm.get_html("/release-groups").await;
    assert!(page.contains("Mon 2026-10-19 09:00 CEST") && page.contains("Mon 2026-10-26 09:00 CET"), "{page}");

    app.run_until_idle().await;
    let (_, list) = body(app.api_get(&w.rm_token, "/api/v1/releases?q=System%20Release").await).await;
    let mut names: Vec<String> = list["releases"].as_array().unwrap().iter().map(|r| r["name"].as_str().unwrap().to_string()).collect();
    names.sort();
    assert_eq!(
        names,
        ["Week 43 System Release - October 2026", "Week 44 System Release - October 2026", "Week 45 System Release - November 2026"]
    );
    let starts: BTreeSet<String> =
        list["releases"].as_array().unwrap().iter().map(|r| r["schedule"]["start"].as_str().unwrap().to_string()).collect();
    assert_eq!(
        starts,
        ["2026-10-19T07:00:00Z", "2026-10-26T08:00:00Z", "2026-11-02T08:00:00Z"].iter().map(|s| s.to_string()).collect(),
        "09:00 local each week"
    );

    // Again, and from two sweeps at once: nothing more.
    app.run_until_idle().await;
    let (a, b) = tokio::join!(
        async {
            let mut c = app.conn().await;
            railyard::ops::release_groups::sweep(&mut c, &app.state.secrets, app.clock_now()).await.unwrap()
        },
        async {
            let mut c = app.conn().await;
            railyard::ops::release_groups::sweep(&mut c, &app.state.secrets, app.clock_now()).await.unwrap()
        }
    );
    assert_eq!(a + b, 0);
    let (_, list) = body(app.api_get(&w.rm_token, "/api/v1/releases?q=System%20Release").await).await;
    assert_eq!(list["total"], 3);

    // A skipped occurrence is never created.
    let group_id: i64 = {
        use diesel::prelude::*;
        use diesel_async::RunQueryDsl;
        use railyard::db::schema::release_groups::dsl as g;
        let mut conn = app.conn().await;
        g::release_groups.select(g::id).first(&mut conn).await.unwrap()
    };
    let res = rm.post_form(&format!("/release-groups/{group_id}/skip"), &[("occurrence", "2026-11-09T08:00:00+00:00")]).await;
    assert_eq!(res.status(), 303);
    app.clock.advance(chrono::TimeDelta::days(14));
    app.run_until_idle().await;
    let (_, list) = body(app.api_get(&w.rm_token, "/api/v1/releases?q=System%20Release").await).await;
    let starts: BTreeSet<String> =
        list["releases"].as_array().unwrap().iter().map(|r| r["schedule"]["start"].as_str().unwrap().to_string()).collect();
    assert!(!starts.contains("2026-11-09T08:00:00Z"), "skipped: {starts:?}");
    assert!(starts.contains("2026-11-16T08:00:00Z"));
}

#[tokio::test]
async fn the_ics_feed_parses_holds_the_filtered_releases_and_can_be_revoked() {
    let app = TestApp::spawn().await;
    let w = world(&app, &[], &[]).await;
    let admin = crate::webhooks::admin_token(&app).await;
    for env in ["PROD1", "PROD2"] {
        app.api_post(&admin, "/api/v1/environments", &json!({"name": env})).await;
    }
    let yaml = "name: Deploy\ninputs: [{name: environment, type: environment, required: true}]\nphases: [{key: p, name: P, activities: [{key: a, name: A, kind: manual}]}]\n";
    let (_, process) = body(app.api_post(&w.rm_token, "/api/v1/processes", &json!({"definition": yaml})).await).await;
    let one = release(&app, &w.rm_token, &process, "Payments 5.0 to PROD1", "PROD1", "2026-12-01T08:00:00Z", "2026-12-01T10:00:00Z").await;
    let two = release(&app, &w.rm_token, &process, "Ledger 5.0 to PROD1", "PROD1", "2026-12-02T08:00:00Z", "2026-12-02T10:00:00Z").await;
    release(&app, &w.rm_token, &process, "Web 5.0 to PROD2", "PROD2", "2026-12-01T08:00:00Z", "2026-12-01T10:00:00Z").await;
    let (status, feed) = body(app.api_post(&w.rm_token, "/api/v1/me/calendar-feed", &json!({})).await).await;
    assert_eq!(status, 201);
    let url = format!("{}&environment=PROD1", feed["url"].as_str().unwrap());
    let fetch = |url: String| {
        let http = app.client.http.clone();
        async move {
            let res = http.get(url).send().await.unwrap();
            (res.status().as_u16(), res.text().await.unwrap())
        }
    };
    let (status, text) = fetch(url.clone()).await;
    assert_eq!(status, 200);
    let uids = |text: &str| -> Vec<String> {
        let unfolded = icalendar::parser::unfold(text);
        let cal = icalendar::parser::read_calendar(&unfolded).expect("a valid iCalendar");
        cal.components
            .iter()
            .filter(|c| c.name == "VEVENT")
            .map(|c| c.properties.iter().find(|p| p.name == "UID").unwrap().val.to_string())
            .collect()
    };
    let first = uids(&text);
    assert_eq!(first, [format!("release-{one}@railyard"), format!("release-{two}@railyard")], "exactly the PROD1 releases");
    assert!(text.contains("DTSTART:20261201T080000Z") && text.contains("STATUS:TENTATIVE"));
    assert_eq!(uids(&fetch(url.clone()).await.1), first, "stable UIDs across fetches");
    // A new feed address revokes the old one.
    body(app.api_post(&w.rm_token, "/api/v1/me/calendar-feed", &json!({})).await).await;
    assert_eq!(fetch(url).await.0, 404);
}

#[tokio::test]
async fn a_freeze_holds_releases_on_its_environment_until_it_ends_and_lets_an_overridden_hotfix_through() {
    use chrono::TimeDelta;
    let app = TestApp::spawn().await;
    let w = world(&app, &[], &[]).await;
    let admin_token = crate::webhooks::admin_token(&app).await;
    for env in ["PROD1", "PROD2"] {
        app.api_post(&admin_token, "/api/v1/environments", &json!({"name": env})).await;
    }
    let admin = app.new_client();
    assert_eq!(admin.login("admin@acme.example.com", PASSWORD).await.status(), 303);
    let res = admin
        .post_form(
            "/admin/freezes",
            &[
                ("reason", "Year-end freeze"),
                ("environments", "PROD1"),
                ("time_zone", "UTC"),
                ("starts_at", "2026-11-28T08:00"),
                ("ends_at", "2026-11-28T11:00"),
            ],
        )
        .await;
    assert_eq!(res.status(), 303);
    let bad = admin
        .post_form(
            "/admin/freezes",
            &[
                ("reason", "x"),
                ("environments", "PROD1"),
                ("time_zone", "UTC"),
                ("starts_at", "2026-11-28T08:00"),
                ("ends_at", "2026-11-28T07:00"),
            ],
        )
        .await;
    assert_eq!(bad.status(), 422);
    assert!(bad.text().await.unwrap().contains("ends_at: must be after the start"));

    let yaml = "name: Deploy\ninputs: [{name: environment, type: environment, required: true}]\nphases: [{key: p, name: P, activities: [{key: a, name: A, kind: manual}]}]\n";
    let (_, process) = body(app.api_post(&w.rm_token, "/api/v1/processes", &json!({"definition": yaml})).await).await;
    let mk = |name: &'static str, kind: &'static str, env: &'static str| json!({"process_id": process["id"], "name": name, "type": kind, "inputs": {"environment": env}, "activate": true});
    let (_, standard) = body(app.api_post(&w.rm_token, "/api/v1/releases", &mk("Payments 6.0 to PROD1", "standard", "PROD1")).await).await;
    let (_, elsewhere) = body(app.api_post(&w.rm_token, "/api/v1/releases", &mk("Payments 6.0 to PROD2", "standard", "PROD2")).await).await;
    let (_, hotfix) =
        body(app.api_post(&w.rm_token, "/api/v1/releases", &mk("Payments 6.0.1 hotfix to PROD1", "hotfix", "PROD1")).await).await;
    app.run_until_idle().await;
    let get = |id: &Value| {
        let path = format!("/api/v1/releases/{id}");
        let t = w.rm_token.clone();
        let app = &app;
        async move { body(app.api_get(&t, &path).await).await.1 }
    };
    let s = get(&standard["id"]).await;
    assert_eq!(s["status"], "OnHold");
    assert!(s["status_reason"].as_str().unwrap().contains("held by a freeze (Year-end freeze)"), "{s}");
    assert_eq!(s["phases"][0]["status"], "NotStarted");
    assert_eq!(get(&elsewhere["id"]).await["phases"][0]["activities"][0]["status"], "Running", "PROD2 is not frozen");

    // Only a hotfix may be let through, with a reason, by an account release manager.
    let (status, e) = body(
        app.api_post(&w.rm_token, &format!("/api/v1/releases/{}/override-freeze", standard["id"]), &json!({"reason": "please"})).await,
    )
    .await;
    assert_eq!((status, e["error"]["code"].as_str()), (422, Some("not_hotfix")));
    assert_eq!(app.api_post(&w.rm_token, &format!("/api/v1/releases/{}/override-freeze", hotfix["id"]), &json!({})).await.status(), 422);
    let (status, _) = body(
        app.api_post(&w.rm_token, &format!("/api/v1/releases/{}/override-freeze", hotfix["id"]), &json!({"reason": "INC-99 outage"})).await,
    )
    .await;
    assert_eq!(status, 200);
    app.run_until_idle().await;
    assert_eq!(get(&hotfix["id"]).await["phases"][0]["activities"][0]["status"], "Running", "the hotfix passes");
    assert_eq!(get(&standard["id"]).await["phases"][0]["status"], "NotStarted", "the standard release still waits");
    {
        use diesel::prelude::*;
        use diesel_async::RunQueryDsl;
        use railyard::db::schema::audit_events::dsl as a;
        let mut conn = app.conn().await;
        let reasons: Vec<Option<String>> =
            a::audit_events.filter(a::action.eq("release.freeze_override")).select(a::reason).load(&mut conn).await.unwrap();
        assert_eq!(reasons, [Some("INC-99 outage".to_string())]);
    }
    let (_, cal) = body(app.api_get(&w.rm_token, "/api/v1/calendar?from=2026-11-28T00:00:00Z&to=2026-11-29T00:00:00Z").await).await;
    assert_eq!(cal["freezes"][0]["reason"], "Year-end freeze");
    assert!(admin.get_html("/calendar?view=day&date=2026-11-28").await.contains("Year-end freeze"), "the calendar shades the freeze");

    app.clock.advance(TimeDelta::hours(2));
    app.run_until_idle().await;
    assert_eq!(get(&standard["id"]).await["phases"][0]["activities"][0]["status"], "Running", "released when the window ended");
}

#[tokio::test]
async fn an_org_release_managers_freeze_holds_their_orgs_release_and_not_another_orgs() {
    let app = TestApp::spawn().await;
    let (account, admin, _) = app.admin_session("acme").await;
    let admin_token = app.api_token(&admin).await;
    let (status, e) =
        body(app.api_send(reqwest::Method::PATCH, &admin_token, "/api/v1/settings", &json!({"release_level": "organization"})).await).await;
    assert_eq!(status, 200, "{e}");
    app.create_org(account, "payments").await;
    app.create_org(account, "shipping").await;
    app.api_post(&admin_token, "/api/v1/environments", &json!({"name": "PROD1"})).await;
    let pay = app.api_token(&app.create_user(account, "pay@acme.example.com", "org_release_manager", "payments").await).await;
    let ship = app.api_token(&app.create_user(account, "ship@acme.example.com", "org_release_manager", "shipping").await).await;
    let viewer = app.api_token(&app.create_user(account, "view@acme.example.com", "viewer", "shipping").await).await;

    let now = app.clock_now();
    let window = |org: Option<&str>| {
        json!({"reason": "Payments quarter close", "environments": ["PROD1"], "time_zone": "UTC", "org": org,
               "start": (now - chrono::TimeDelta::hours(1)).to_rfc3339(), "end": (now + chrono::TimeDelta::hours(3)).to_rfc3339()})
    };
    // An org release manager manages their own org's freezes only.
    assert_eq!(app.api_post(&pay, "/api/v1/freezes", &window(None)).await.status(), 403, "not the account's");
    assert_eq!(app.api_post(&pay, "/api/v1/freezes", &window(Some("shipping"))).await.status(), 403, "not another org's");
    let (status, e) = body(
        app.api_post(
            &pay,
            "/api/v1/freezes",
            &json!({"reason": "x", "environments": ["NOPE"], "org": "payments", "start": "2027-01-01T00:00", "end": "2027-01-02T00:00"}),
        )
        .await,
    )
    .await;
    assert_eq!((status, e["error"]["field"].as_str()), (422, Some("environments")), "{e}");
    let (status, freeze) = body(app.api_post(&pay, "/api/v1/freezes", &window(Some("payments"))).await).await;
    assert_eq!(status, 201, "{freeze}");
    assert_eq!(freeze["org"], "payments");
    let (_, listed) = body(app.api_get(&pay, "/api/v1/freezes").await).await;
    assert_eq!(listed["freezes"].as_array().unwrap().len(), 1);
    let (_, listed) = body(app.api_get(&viewer, "/api/v1/freezes").await).await;
    assert_eq!(listed["freezes"].as_array().unwrap().len(), 0, "a shipping viewer does not see payments' freezes");

    let yaml = "name: Deploy\ninputs: [{name: environment, type: environment, required: true}]\nphases: [{key: p, name: P, activities: [{key: a, name: A, kind: manual}]}]\n";
    let mut started = Vec::new();
    for (token, org) in [(&pay, "payments"), (&ship, "shipping")] {
        let (status, process) = body(
            app.api_post(token, "/api/v1/processes", &json!({"org": org, "definition": yaml.replace("Deploy", &format!("Deploy {org}"))}))
                .await,
        )
        .await;
        assert_eq!(status, 201, "{process}");
        let (status, r) = body(
            app.api_post(
                token,
                "/api/v1/releases",
                &json!({"process_id": process["id"], "org": org, "name": format!("{org} to PROD1"), "inputs": {"environment": "PROD1"}, "activate": true}),
            )
            .await,
        )
        .await;
        assert_eq!(status, 201, "{r}");
        started.push((token, r["id"].as_i64().unwrap()));
    }
    app.run_until_idle().await;
    let (_, held) = body(app.api_get(started[0].0, &format!("/api/v1/releases/{}", started[0].1)).await).await;
    assert_eq!(held["status"], "OnHold", "{held}");
    assert!(held["status_reason"].as_str().unwrap().contains("held by a freeze (Payments quarter close)"), "{held}");
    let (_, running) = body(app.api_get(started[1].0, &format!("/api/v1/releases/{}", started[1].1)).await).await;
    assert_eq!(running["phases"][0]["activities"][0]["status"], "Running", "shipping's release is not held: {running}");

    // Another org's release manager cannot remove it; its own can, and the release goes on.
    let id = freeze["id"].as_i64().unwrap();
    assert_eq!(app.api_send(reqwest::Method::DELETE, &ship, &format!("/api/v1/freezes/{id}"), &json!({})).await.status(), 403);
    assert_eq!(app.api_send(reqwest::Method::DELETE, &pay, &format!("/api/v1/freezes/{id}"), &json!({})).await.status(), 204);
    app.run_until_idle().await;
    let (_, released) = body(app.api_get(started[0].0, &format!("/api/v1/releases/{}", started[0].1)).await).await;
    assert_eq!(released["phases"][0]["activities"][0]["status"], "Running", "{released}");
}

#[tokio::test]
async fn the_owner_and_group_filters_give_exactly_their_releases_on_the_page_the_feed_and_the_api() {
    let app = TestApp::spawn().await;
    let w = world(&app, &[], &[]).await;
    let admin = crate::webhooks::admin_token(&app).await;
    app.api_post(&admin, "/api/v1/environments", &json!({"name": "PROD1"})).await;
    app.create_user(w.account, "rm2@acme.example.com", "account_release_manager", "").await;
    let yaml = "name: Deploy\ninputs: [{name: environment, type: environment, required: true}]\nphases: [{key: p, name: P, activities: [{key: a, name: A, kind: manual}]}]\n";
    let (_, process) = body(app.api_post(&w.rm_token, "/api/v1/processes", &json!({"definition": yaml})).await).await;
    let a = release(&app, &w.rm_token, &process, "Payments 5.0", "PROD1", "2026-12-01T08:00:00Z", "2026-12-01T10:00:00Z").await;
    let (status, r) = body(
        app.api_post(
            &w.rm_token,
            "/api/v1/releases",
            &json!({"process_id": process["id"], "name": "Ledger 5.0", "owner": "user:rm2@acme.example.com", "inputs": {"environment": "PROD1"},
                    "schedule": {"start": "2026-12-02T08:00:00Z", "end": "2026-12-02T10:00:00Z", "time_zone": "UTC"}}),
        )
        .await,
    )
    .await;
    assert_eq!(status, 201, "{r}");
    let b = r["id"].as_i64().unwrap();
    let (status, group) = body(
        app.api_post(
            &w.rm_token,
            "/api/v1/release-groups",
            &json!({"name": "Mondays", "process_id": process["id"], "rrule": "FREQ=WEEKLY;BYDAY=MO", "dtstart": "2026-11-30T09:00",
                    "time_zone": "UTC", "duration": "4h", "name_template": "Monday {date}", "horizon_days": 14}),
        )
        .await,
    )
    .await;
    assert_eq!(status, 201, "{group}");
    let gid = group["id"].as_i64().unwrap();
    app.run_until_idle().await;
    let (_, made) = body(app.api_get(&w.rm_token, "/api/v1/releases?q=Monday").await).await;
    let grouped: BTreeSet<i64> = made["releases"].as_array().unwrap().iter().map(|r| r["id"].as_i64().unwrap()).collect();
    assert_eq!(grouped.len(), 2, "{made}");

    let set = |v: &[i64]| v.iter().copied().collect::<BTreeSet<i64>>();
    let with_group = |extra: &[i64]| grouped.iter().copied().chain(extra.iter().copied()).collect::<BTreeSet<i64>>();
    let api = |q: String| {
        let token = w.rm_token.clone();
        let app = &app;
        async move {
            let (status, cal) =
                body(app.api_get(&token, &format!("/api/v1/calendar?from=2026-11-29T00:00:00Z&to=2027-01-01T00:00:00Z{q}")).await).await;
            assert_eq!(status, 200, "{cal}");
            cal["entries"].as_array().unwrap().iter().map(|e| e["release_id"].as_i64().unwrap()).collect::<BTreeSet<i64>>()
        }
    };
    assert_eq!(api(String::new()).await, with_group(&[a, b]));
    assert_eq!(api("&owner=rm2@acme.example.com".into()).await, set(&[b]));
    assert_eq!(api("&owner=RM@acme.example.com".into()).await, with_group(&[a]), "e-mails match case-insensitively");
    assert_eq!(api(format!("&group={gid}")).await, with_group(&[]));
    assert_eq!(api(format!("&group={gid}&owner=rm2@acme.example.com")).await, set(&[]));
    let (status, e) = body(app.api_get(&w.rm_token, "/api/v1/calendar?owner=nobody@acme.example.com").await).await;
    assert_eq!(e["error"]["field"], "owner", "{status} {e}");
    let (_, e) = body(app.api_get(&w.rm_token, "/api/v1/calendar?group=weekly").await).await;
    assert_eq!(e["error"]["field"], "group", "{e}");

    let rm = app.new_client();
    assert_eq!(rm.login("rm@acme.example.com", PASSWORD).await.status(), 303);
    let page = rm.get_html(&format!("/calendar?view=quarter&date=2026-12-05&group={gid}")).await;
    assert_eq!(ids(&page), with_group(&[]));
    assert!(page.contains(&format!("<option value=\"{gid}\" selected>Mondays</option>")), "the filter shows what is chosen");
    assert_eq!(ids(&rm.get_html("/calendar?view=quarter&date=2026-12-05&owner=rm2%40acme.example.com").await), set(&[b]));

    let (_, feed) = body(app.api_post(&w.rm_token, "/api/v1/me/calendar-feed", &json!({})).await).await;
    let text = app
        .client
        .http
        .get(format!("{}&owner=rm2%40acme.example.com", feed["url"].as_str().unwrap()))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(text.contains(&format!("UID:release-{b}@railyard")) && !text.contains(&format!("UID:release-{a}@railyard")), "{text}");
    let text = app.client.http.get(format!("{}&group={gid}", feed["url"].as_str().unwrap())).send().await.unwrap().text().await.unwrap();
    assert_eq!(text.matches("BEGIN:VEVENT").count(), 2, "{text}");
}

#[tokio::test]
async fn an_activity_deploying_into_an_environment_frozen_at_run_time_is_held_there_until_the_window_ends() {
    use chrono::TimeDelta;
    let app = TestApp::spawn().await;
    let w = world(&app, &[], &[]).await;
    let admin = crate::webhooks::admin_token(&app).await;
    app.api_post(&admin, "/api/v1/environments", &json!({"name": "PROD1"})).await;
    app.api_post(&admin, "/api/v1/services", &json!({"name": "ledger"})).await;
    let now = app.clock_now();
    let (status, freeze) = body(
        app.api_post(
            &admin,
            "/api/v1/freezes",
            &json!({"reason": "Quarter close", "environments": ["PROD1"], "time_zone": "UTC",
                    "start": (now - TimeDelta::hours(1)).to_rfc3339(), "end": (now + TimeDelta::hours(2)).to_rfc3339()}),
        )
        .await,
    )
    .await;
    assert_eq!(status, 201, "{freeze}");
    // The target is known only when "pick" has run: the release itself targets nothing frozen.
    let yaml = "name: Late target
phases:
  - key: choose
    name: Choose
    activities:
      - {key: pick, name: Pick the target, kind: manual}
  - key: p
    name: P
    depends_on: [choose]
    activities:
      - {key: ship, name: Ship, kind: manual, deploys: {service: ledger, version: '1.0', environment: '${phases.choose.activities.pick.outputs.env}'}}
";
    let (_, process) = body(app.api_post(&w.rm_token, "/api/v1/processes", &json!({"definition": yaml})).await).await;
    let mut ids = Vec::new();
    for (name, kind) in [("Ledger 1.0", "standard"), ("Ledger 1.0.1 hotfix", "hotfix")] {
        let (status, r) = body(
            app.api_post(
                &w.rm_token,
                "/api/v1/releases",
                &json!({"process_id": process["id"], "name": name, "type": kind, "activate": true}),
            )
            .await,
        )
        .await;
        assert_eq!(status, 201, "{r}");
        ids.push(r["id"].as_i64().unwrap());
    }
    app.run_until_idle().await;
    for id in &ids {
        let (status, e) =
            crate::engine::act(&app, &w.rm_token, *id, "choose", "pick", "complete", json!({"outputs": {"env": "PROD1"}})).await;
        assert_eq!(status, 200, "{e}");
    }
    app.run_until_idle().await;
    for id in &ids {
        let r = get(&app, &w, *id).await;
        let ship = crate::engine::activity(&r, "p", "ship");
        assert_eq!(ship["status"], "OnHold", "{r}");
        assert!(ship["status_reason"].as_str().unwrap().contains("held by a freeze (Quarter close)"), "{ship}");
        assert!(ship["status_reason"].as_str().unwrap().contains("it deploys to PROD1"), "{ship}");
        assert_eq!(r["status"], "OnHold");
    }
    // The hotfix is let through by an override; the other waits for the window's end.
    let (status, _) =
        body(app.api_post(&w.rm_token, &format!("/api/v1/releases/{}/override-freeze", ids[1]), &json!({"reason": "INC-12"})).await).await;
    assert_eq!(status, 200);
    app.run_until_idle().await;
    assert_eq!(crate::engine::activity(&get(&app, &w, ids[1]).await, "p", "ship")["status"], "Running");
    assert_eq!(crate::engine::activity(&get(&app, &w, ids[0]).await, "p", "ship")["status"], "OnHold");
    app.clock.advance(TimeDelta::hours(2));
    app.run_until_idle().await;
    assert_eq!(crate::engine::activity(&get(&app, &w, ids[0]).await, "p", "ship")["status"], "Running", "the window ended");
}

#[tokio::test]
async fn a_hotfix_on_demand_is_on_the_calendar_from_its_activation_and_conflicts_with_a_window_over_now() {
    let app = TestApp::spawn().await;
    let w = world(&app, &[], &[]).await;
    let admin = crate::webhooks::admin_token(&app).await;
    app.api_post(&admin, "/api/v1/environments", &json!({"name": "PROD1"})).await;
    let yaml = "name: Deploy\ninputs: [{name: environment, type: environment, required: true}]\nphases: [{key: p, name: P, activities: [{key: a, name: A, kind: manual}]}]\n";
    let (_, process) = body(app.api_post(&w.rm_token, "/api/v1/processes", &json!({"definition": yaml})).await).await;
    // The clock is 2026-11-28 09:00 UTC: a scheduled release over now, and one later today.
    let over_now =
        release(&app, &w.rm_token, &process, "Payments 6.0 to PROD1", "PROD1", "2026-11-28T08:00:00Z", "2026-11-28T12:00:00Z").await;
    let later = release(&app, &w.rm_token, &process, "Ledger 6.0 to PROD1", "PROD1", "2026-11-28T15:00:00Z", "2026-11-28T16:00:00Z").await;
    let on_demand = |name: &'static str, links: Value| {
        let input = json!({"process_id": process["id"], "name": name, "type": "hotfix", "inputs": {"environment": "PROD1"}, "links": links, "activate": true});
        let app = &app;
        let token = w.rm_token.clone();
        async move {
            let (status, r) = body(app.api_post(&token, "/api/v1/releases", &input).await).await;
            assert_eq!(status, 201, "{r}");
            r["id"].as_i64().unwrap()
        }
    };
    let hotfix = on_demand("Payments 5.9.1 hotfix", json!({})).await;
    let fixing = on_demand("Payments 6.0.1 hotfix", json!({"hotfix_for": over_now})).await;
    let (status, cal) = body(app.api_get(&w.rm_token, "/api/v1/calendar?from=2026-11-28&to=2026-11-29").await).await;
    assert_eq!(status, 200, "{cal}");
    let entry = |id: i64| cal["entries"].as_array().unwrap().iter().find(|e| e["release_id"] == id).cloned();
    let h = entry(hotfix).expect("the hotfix on demand is on today's calendar");
    assert_eq!((h["scheduled"].clone(), h["open"].clone()), (json!(false), json!(true)), "{h}");
    assert_eq!(h["start"], "2026-11-28T09:00:00Z", "from its activation");
    assert_eq!(h["end"], "2026-11-28T09:00:00Z", "to now while in flight");
    let s = entry(over_now).unwrap();
    assert_eq!((s["scheduled"].clone(), s["open"].clone()), (json!(true), json!(false)));
    let conflicts: Vec<i64> = s["conflicts"].as_array().unwrap().iter().map(|c| c.as_i64().unwrap()).collect();
    assert!(conflicts.contains(&hotfix), "the scheduled window over now conflicts with the hotfix: {s}");
    assert!(!conflicts.contains(&fixing), "but not with a hotfix for it: {s}");
    assert!(entry(later).unwrap()["conflicts"].as_array().unwrap().is_empty(), "a window after now does not meet the hotfix");
    // Tomorrow, nothing on demand is on the calendar: it ends now.
    let (_, tomorrow) = body(app.api_get(&w.rm_token, "/api/v1/calendar?from=2026-11-29&to=2026-11-30").await).await;
    assert!(tomorrow["entries"].as_array().unwrap().is_empty(), "{tomorrow}");
    let (_, feed) = body(app.api_post(&w.rm_token, "/api/v1/me/calendar-feed", &json!({})).await).await;
    let ics = app.client.http.get(feed["url"].as_str().unwrap()).send().await.unwrap().text().await.unwrap();
    assert!(ics.contains(&format!("release-{hotfix}@railyard")), "the feed has the hotfix:\n{ics}");
    assert!(ics.contains("DTEND:20261128T100000Z"), "an open entry ends at the next full hour:\n{ics}");
    // Finished, it keeps its window from activation to finish.
    app.clock.advance(chrono::TimeDelta::minutes(30));
    let (status, _) =
        body(app.api_post(&w.rm_token, &format!("/api/v1/releases/{hotfix}/abort"), &json!({"reason": "not needed"})).await).await;
    assert_eq!(status, 200);
    let (_, cal) = body(app.api_get(&w.rm_token, "/api/v1/calendar?from=2026-11-28&to=2026-11-29").await).await;
    let h = cal["entries"].as_array().unwrap().iter().find(|e| e["release_id"] == hotfix).cloned().unwrap();
    assert_eq!((h["open"].clone(), h["end"].clone()), (json!(false), json!("2026-11-28T09:30:00Z")), "{h}");
}
