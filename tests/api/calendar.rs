//! The calendar: views in the viewer's zone, filters, conflicts.

use crate::common::{TestApp, PASSWORD};
use crate::engine::{body, world};
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
    let (status, e) = body(app.api_get(t, "/api/v1/calendar?from=2026-12-01T00:00:00Z&to=2026-11-01T00:00:00Z").await).await;
    assert_eq!((status, e["error"]["field"].as_str()), (400, Some("to")));
    assert_eq!(berlin.get("/calendar?view=month&date=not-a-date").await.status(), 400);
}
