//! Statement budgets of the hot pages (DESIGN §11): each page sends a fixed number of SQL
//! statements, the same with 10 releases as with 1,000. Counted by the server itself
//! (`X-Railyard-Statements`, the request's statements including the session lookup).

use crate::common::{body, Client, TestApp};
use diesel_async::RunQueryDsl;
use serde_json::json;

/// The session lookup every signed-in page pays before its own work.
const SESSION: u32 = 1;

fn definition() -> String {
    let phases: Vec<String> = (1..=5)
        .map(|p| {
            let acts: Vec<String> = (1..=5).map(|a| format!("{{key: a{a}, name: Step {a}, kind: manual}}")).collect();
            format!("{{key: p{p}, name: Phase {p}, activities: [{}]}}", acts.join(", "))
        })
        .collect();
    format!("name: Budgeted\nphases: [{}]\n", phases.join(", "))
}

async fn statements(client: &Client, path: &str) -> u32 {
    let res = client.get(path).await;
    assert_eq!(res.status(), 200, "{path}");
    let n = res.headers().get("x-railyard-statements").unwrap_or_else(|| panic!("{path} names no statement count"));
    n.to_str().unwrap().parse().unwrap()
}

/// Copies release `template` (with its phases and activities) `n` times, straight in SQL.
/// A release of `definition()` activated through the API on 2026-11-28, run until idle.
async fn running_release(app: &TestApp, token: &str, name: &str) -> i64 {
    let (status, p) = body(app.api_post(token, "/api/v1/processes", &json!({"definition": definition()})).await).await;
    assert_eq!(status, 201, "{p}");
    let (status, r) = body(
        app.api_post(
            token,
            "/api/v1/releases",
            &json!({"process_id": p["id"], "name": name, "activate": true,
                    "schedule": {"start": "2026-11-28T08:30:00Z", "end": "2026-11-28T12:00:00Z"}}),
        )
        .await,
    )
    .await;
    assert_eq!(status, 201, "{r}");
    let id = r["id"].as_i64().unwrap();
    app.run_until_idle().await;
    id
}

async fn clone_release(app: &TestApp, template: i64, n: i64) {
    let mut conn = app.conn().await;
    for table in ["releases", "release_phases", "release_activities"] {
        #[derive(diesel::QueryableByName)]
        struct Cols {
            #[diesel(sql_type = diesel::sql_types::Text)]
            cols: String,
        }
        let cols: Cols = diesel::sql_query(format!(
            "SELECT string_agg(column_name, ',' ORDER BY ordinal_position) AS cols FROM information_schema.columns \
             WHERE table_name = '{table}' AND column_name NOT IN ('id', 'release_id')"
        ))
        .get_result(&mut conn)
        .await
        .unwrap();
        let sql = if table == "releases" {
            format!(
                "INSERT INTO releases ({c}) SELECT {c} FROM releases r CROSS JOIN generate_series(1, {n}) WHERE r.id = {template}",
                c = cols.cols
            )
        } else {
            format!(
                "INSERT INTO {table} (release_id, {c}) SELECT r.id, {tc} FROM {table} t CROSS JOIN releases r \
                 WHERE t.release_id = {template} AND r.id <> {template} AND NOT EXISTS (SELECT 1 FROM {table} x WHERE x.release_id = r.id)",
                c = cols.cols,
                tc = cols.cols.split(',').map(|c| format!("t.{c}")).collect::<Vec<_>>().join(",")
            )
        };
        diesel::sql_query(sql).execute(&mut conn).await.unwrap();
    }
}

/// A release with a 12-service manifest fanned out into PROD1, activated without a schedule (so it
/// is on the calendar too, from its activation), with one instance done.
async fn board_release(app: &TestApp, token: &str) -> i64 {
    use crate::system_releases::{manifest, SERVICES};
    assert_eq!(app.api_post(token, "/api/v1/environments", &json!({"name": "PROD1", "production": true})).await.status(), 201);
    for s in SERVICES {
        assert_eq!(app.api_post(token, "/api/v1/services", &json!({"name": s})).await.status(), 201);
    }
    let yaml = "name: Train\ninputs: [{name: manifest, type: service_versions, required: true}]\nphases:\n  - key: prod1\n    name: Prod1\n    activities:\n      - {key: deploy, name: Deploy, kind: manual, for_each: \"${inputs.manifest}\", deploys: {service: \"${item.service}\", version: \"${item.version}\", environment: PROD1}}\n";
    let (status, p) = body(app.api_post(token, "/api/v1/processes", &json!({"definition": yaml})).await).await;
    assert_eq!(status, 201, "{p}");
    let req = json!({"process_id": p["id"], "name": "Train 48", "type": "hotfix", "inputs": {"manifest": manifest(|i| format!("1.{i}"))}, "activate": true});
    let (status, r) = body(app.api_post(token, "/api/v1/releases", &req).await).await;
    assert_eq!(status, 201, "{r}");
    let id = r["id"].as_i64().unwrap();
    app.run_until_idle().await;
    let (status, done) =
        body(app.api_post(token, &format!("/api/v1/releases/{id}/activities/prod1/deploy%5Bledger%5D/complete"), &json!({})).await).await;
    assert_eq!(status, 200, "{done}");
    app.run_until_idle().await;
    id
}

#[tokio::test]
async fn hot_pages_send_a_fixed_number_of_statements_whatever_the_number_of_releases() {
    let app = TestApp::spawn().await;
    let (account, admin, client) = app.admin_session("acme").await;
    let token = app.api_token(&admin).await;
    let id = running_release(&app, &token, "Budget").await;
    {
        let mut conn = app.conn().await;
        let release = railyard::db::models::releases::Release::find(&mut conn, account, id).await.unwrap();
        for i in 0..120 {
            let event = railyard::db::audit::NewEvent::release(&release, "test", "test.note").with_subject(format!("note:{i}"));
            railyard::db::audit::append(&mut conn, event, app.clock_now()).await.unwrap();
        }
    }
    let board = board_release(&app, &token).await;
    // (page, path, statements besides the session lookup, DESIGN §11's budget where it sets one)
    let pages = [
        ("calendar month", "/calendar?view=month&date=2026-11-28".to_string(), 3, Some(3)),
        ("release list", "/releases".to_string(), 3, None),
        ("release detail", format!("/releases/{id}"), 6, Some(6)),
        // Read at a fresh snapshot (see below): the reader's standing is read again, as on a
        // first visit.
        ("release detail with a board", format!("/releases/{board}"), 8, Some(8)),
        ("dashboard", "/".to_string(), 7, None),
        ("deployed report", "/reports/deployed".to_string(), 5, None),
        ("audit page", "/audit".to_string(), 2, None),
    ];
    let mut measured = Vec::new();
    for releases in [10, 1_000] {
        let existing: i64 = {
            use diesel::QueryDsl;
            railyard::db::schema::releases::table.count().get_result(&mut app.conn().await).await.unwrap()
        };
        clone_release(&app, id, releases - existing).await;
        let mut counts = Vec::new();
        for (name, path, _, _) in &pages {
            if name.ends_with("with a board") {
                // The reader's standing, read by the page before, is reused while no transaction
                // commits (and the worker may commit at any time): a write first makes the count
                // the same in every run.
                diesel::sql_query("UPDATE accounts SET name = name").execute(&mut app.conn().await).await.unwrap();
            }
            counts.push((*name, statements(&client, path).await));
        }
        measured.push(counts);
    }
    assert_eq!(measured[0], measured[1], "statement counts with 10 releases, then with 1,000");
    for ((name, _, pinned, budget), (_, n)) in pages.iter().zip(&measured[0]) {
        let own = n - SESSION;
        if *pinned > 0 {
            assert_eq!(own, *pinned, "{name}: statements besides the session lookup");
        }
        assert!(budget.is_none_or(|b| own <= b), "{name}: {own} statements, over the budget of DESIGN §11");
    }
}

#[tokio::test]
async fn an_unchanged_live_release_page_answers_304_after_one_statement() {
    let app = TestApp::spawn().await;
    let (_, admin, client) = app.admin_session("acme").await;
    let token = app.api_token(&admin).await;
    let (status, p) = body(app.api_post(&token, "/api/v1/processes", &json!({"definition": definition()})).await).await;
    assert_eq!(status, 201, "{p}");
    let (status, r) =
        body(app.api_post(&token, "/api/v1/releases", &json!({"process_id": p["id"], "name": "Live", "activate": true})).await).await;
    assert_eq!(status, 201, "{r}");
    let id = r["id"].as_i64().unwrap();
    app.run_until_idle().await;
    let path = format!("/releases/{id}");
    let poll = |tag: String| {
        let http = client.http.clone();
        let url = format!("{}{path}", app.address);
        async move { http.get(url).header("If-None-Match", tag).header("HX-Request", "true").send().await.unwrap() }
    };
    let first = client.get(&path).await;
    assert_eq!(first.status(), 200);
    let tag = first.headers().get("etag").expect("the release page names its version").to_str().unwrap().to_string();

    let second = poll(tag.clone()).await;
    assert_eq!(second.status(), 304, "nothing changed");
    assert_eq!(second.headers().get("x-railyard-statements").unwrap(), &(SESSION + 1).to_string());
    assert!(second.bytes().await.unwrap().is_empty(), "a 304 carries no page: nothing was rendered");

    // Anything recorded on the release changes the answer.
    let (status, done) = body(app.api_post(&token, &format!("/api/v1/releases/{id}/activities/p1/a1/complete"), &json!({})).await).await;
    assert_eq!(status, 200, "{done}");
    let third = poll(tag.clone()).await;
    assert_eq!(third.status(), 200, "the release changed");
    let new_tag = third.headers().get("etag").unwrap().to_str().unwrap().to_string();
    assert_ne!(new_tag, tag);
    assert!(third.text().await.unwrap().contains("Live"));
    assert_eq!(poll(new_tag.clone()).await.status(), 304);

    // Another reader (another session) never gets this reader's version.
    let (_, other) = (app.create_user(admin.account_id, "rm@acme.example.com", "account_release_manager", "").await, app.new_client());
    assert_eq!(other.login("rm@acme.example.com", crate::common::PASSWORD).await.status(), 303);
    let res = other.http.get(format!("{}{path}", app.address)).header("If-None-Match", &new_tag).send().await.unwrap();
    assert_eq!(res.status(), 200);
}

/// Readers of an unchanged database share one reading of the hot pages (`ops::read_cache`): a
/// second read costs only its session lookup. Any write anywhere on the PostgreSQL server ends a
/// reading, and the tests running beside this one write, so it looks for a pair of reads with no
/// write between them; a write in between must never be missed (the page shows it).
#[tokio::test]
async fn hot_pages_read_once_per_database_snapshot_and_see_every_change() {
    let app = TestApp::spawn().await;
    let (_, admin, client) = app.admin_session("acme").await;
    let token = app.api_token(&admin).await;
    let id = running_release(&app, &token, "Shared").await;
    let pages = [
        ("calendar month", "/calendar?view=month&date=2026-11-28".to_string()),
        ("release list", "/releases".to_string()),
        ("release detail", format!("/releases/{id}")),
    ];
    for (name, path) in &pages {
        let mut fewest = u32::MAX;
        for _ in 0..300 {
            statements(&client, path).await;
            fewest = fewest.min(statements(&client, path).await);
            if fewest == SESSION {
                break;
            }
        }
        assert_eq!(fewest, SESSION, "{name}: a second read of an unchanged database sends only the session lookup");
    }

    // A change is seen at once: read the page (kept), change the release, read it again.
    let status_of_a1 = |page: &str| {
        let at = page.find("id=\"activity-p1-a1\"").expect("the first task is listed");
        let rest = &page[at..];
        let from = rest.find("class=\"status status-").expect("its status") + "class=\"status status-".len();
        rest[from..].split('"').next().unwrap().to_string()
    };
    let path = format!("/releases/{id}");
    let before = status_of_a1(&client.get(&path).await.text().await.unwrap());
    let (status, done) = body(app.api_post(&token, &format!("/api/v1/releases/{id}/activities/p1/a1/complete"), &json!({})).await).await;
    assert_eq!(status, 200, "{done}");
    let after = status_of_a1(&client.get(&path).await.text().await.unwrap());
    assert_ne!(before, after, "the completed task shows at once");
    assert_eq!(after, "Success");
}
