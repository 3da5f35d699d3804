//! Browser tests: Debian's chromium driven through chromedriver (one driver per test binary).

mod access;
mod board;
#[path = "../common/mod.rs"]
mod common;
mod harness;
mod sso;

use common::{TestApp, PASSWORD};

#[tokio::test]
async fn log_in_through_chromium_and_see_the_dashboard() {
    let app = TestApp::spawn().await;
    let account = app.create_account("acme").await;
    app.create_user(account, "ana@acme.example.com", "account_admin", "").await;
    let browser = harness::Browser::open().await;
    browser.log_in(&app.address, "ana@acme.example.com", PASSWORD).await;
    let heading = browser.text("h1").await;
    assert_eq!(heading, "Welcome, Test ana@acme.example.com");
    assert!(browser.client.current_url().await.unwrap().path() == "/");

    // An htmx form: errors swap in place (200), then a valid submit redirects.
    browser.goto(&format!("{}/admin/environments", app.address)).await;
    browser.fill("#name", "PROD 1").await;
    browser.click("#environment-form button[type=submit]").await;
    let error = browser.wait_text(".field-error").await;
    assert!(error.contains("may contain only letters"), "{error}");
    assert_eq!(browser.value("#name").await, "PROD 1", "the typed value is kept");
    browser.fill("#name", "PROD1").await;
    browser.click("#environment-form button[type=submit]").await;
    let flash = browser.wait_text(".flash-success").await;
    assert!(flash.contains("Environment PROD1 created"), "{flash}");
    browser.close().await;
}

#[tokio::test]
async fn build_a_two_phase_process_in_the_editor() {
    let app = TestApp::spawn().await;
    let account = app.create_account("acme").await;
    app.create_user(account, "rhea@acme.example.com", "account_release_manager", "").await;
    let browser = harness::Browser::open().await;
    browser.log_in(&app.address, "rhea@acme.example.com", PASSWORD).await;

    browser.goto(&format!("{}/processes", app.address)).await;
    browser.fill("#new-name", "Two Phase Release").await;
    browser.click("#new-process-form button[type=submit]").await;
    browser.wait_for_text(".flash-success", "Process Two Phase Release created").await;

    browser.fill("#phase-key", "build").await;
    browser.fill("#phase-name", "Build").await;
    browser.click("#phase-form button[type=submit]").await;
    browser.wait_for_text(".flash-success", "Phase build added").await;

    browser.click("#phase-build a.add-activity").await;
    browser.fill("#a-key", "compile").await;
    browser.fill("#a-name", "Compile").await;
    browser.click("#activity-form button[type=submit]").await;
    browser.wait_for_text(".flash-success", "Activity build.compile saved").await;

    browser.fill("#phase-key", "deploy").await;
    browser.fill("#phase-name", "Deploy").await;
    browser.fill("#phase-depends", "build").await;
    browser.click("#phase-form button[type=submit]").await;
    browser.wait_for_text(".flash-success", "Phase deploy added").await;

    browser.click("#phase-deploy a.add-activity").await;
    browser.fill("#a-key", "approve").await;
    browser.fill("#a-name", "Go/no-go").await;
    browser.client.find(fantoccini::Locator::Css("#a-kind")).await.unwrap().select_by_value("approval").await.unwrap();
    browser.fill("#a-approvers", "user:rhea@acme.example.com").await;
    browser.click("#activity-form button[type=submit]").await;
    browser.wait_for_text(".flash-success", "Activity deploy.approve saved").await;

    browser.click("#save-process").await;
    browser.wait_for_text(".flash-success", "Saved as version 1").await;
    assert_eq!(browser.text("#phase-deploy .after").await, "after: build");
    browser.wait_for_text("table.list", "v1").await;

    // What the browser saved is the stored version 1.
    let mut conn = app.conn().await;
    use diesel::prelude::*;
    use diesel_async::RunQueryDsl;
    use railyard::db::schema::process_versions::dsl as v;
    let stored: serde_json::Value = v::process_versions.filter(v::version.eq(1)).select(v::definition).first(&mut conn).await.unwrap();
    assert_eq!(stored["phases"][1]["depends_on"], serde_json::json!(["build"]));
    assert_eq!(stored["phases"][1]["activities"][0]["kind"], "approval");
    browser.close().await;
}

#[tokio::test]
async fn create_a_release_from_the_weekly_process_with_an_input_set() {
    use railyard::ops::{catalog, processes, Actor};
    let app = TestApp::spawn().await;
    let account = app.create_account("acme").await;
    let rm = app.create_user(account, "rhea@acme.example.com", "account_release_manager", "").await;
    {
        let mut conn = app.conn().await;
        let actor = Actor::system(account, "test");
        let now = app.clock_now();
        for env in ["QA", "PROD1"] {
            let input =
                catalog::EnvironmentInput { name: Some(env.into()), production: Some(env == "PROD1"), position: None, deploy_lock: None };
            catalog::create_environment(&mut conn, &actor, &input, now).await.unwrap();
        }
        for s in ["payments-api", "ledger"] {
            catalog::create_service(&mut conn, &actor, s, now).await.unwrap();
        }
        let weekly = include_str!("../fixtures/weekly-production-release.yaml").to_string();
        let saved = processes::create(&mut conn, &actor, None, processes::Source::Yaml(weekly), now).await.unwrap();
        let set = processes::InputSetInput {
            name: "EU prod".into(),
            values: serde_json::json!({"services": ["payments-api"], "version": "2.1.3", "environment": "PROD1"})
                .as_object()
                .unwrap()
                .clone(),
        };
        processes::save_input_set(&mut conn, &actor, &app.state.secrets, &saved.process, None, &set, now).await.unwrap();
    }
    let browser = harness::Browser::open().await;
    browser.log_in(&app.address, &rm.email, PASSWORD).await;
    browser.goto(&format!("{}/releases/new", app.address)).await;
    browser.client.find(fantoccini::Locator::Css("#input_set")).await.unwrap().select_by_value("EU prod").await.unwrap();
    // htmx reloads the form with the set's values.
    for _ in 0..50 {
        if browser.value("#in-version").await == "2.1.3" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(browser.value("#in-version").await, "2.1.3", "prefilled from the input set");
    let checked = browser
        .client
        .find(fantoccini::Locator::Css("#in-services input[value=payments-api]"))
        .await
        .unwrap()
        .prop("checked")
        .await
        .unwrap();
    assert_eq!(checked.as_deref(), Some("true"));
    browser.fill("#name", "Payment Service v2.1.3 - Production Deployment").await;
    browser.click("#save-release").await;
    browser.wait_for_text(".flash-success", "created as a draft").await;
    browser.goto(&format!("{}/releases", app.address)).await;
    browser.wait_for_text("#release-list", "Payment Service v2.1.3 - Production Deployment").await;
    let row = browser.text("#release-list tbody tr").await;
    assert!(row.contains("draft") && row.contains("NotStarted") && row.contains("PROD1"), "{row}");
    browser.close().await;
}

#[tokio::test]
async fn the_release_page_follows_the_release_without_a_reload() {
    use railyard::ops::{processes, releases, Actor};
    let app = TestApp::spawn().await;
    let account = app.create_account("acme").await;
    let rm = app.create_user(account, "rhea@acme.example.com", "account_release_manager", "").await;
    let approver = app.create_user(account, "quinn@acme.example.com", "viewer", "").await;
    let yaml = "name: Watched\nphases:\n  - key: soak\n    name: Soak\n    activities: [{key: pause, name: Soak for ten minutes, kind: wait, for: 10m}]\n  - key: signoff\n    name: Sign-off\n    depends_on: [soak]\n    activities: [{key: ok, name: Go, kind: approval, approvers: \"user:quinn@acme.example.com\"}]\n";
    let id = {
        let mut conn = app.conn().await;
        let actor = Actor::user(rm.id, account, &rm.email);
        let process = processes::create(&mut conn, &actor, None, processes::Source::Yaml(yaml.into()), app.clock_now()).await.unwrap();
        let input = releases::ReleaseInput {
            process_id: Some(process.process.id),
            name: Some("Ledger 9.2 soak to PROD1".into()),
            ..Default::default()
        };
        let prepared = releases::prepare(&mut conn, &actor, "UTC", &app.state.secrets, &input, None, false).await.unwrap();
        releases::create(&mut conn, &actor, prepared, true, app.clock_now()).await.unwrap().release.id
    };
    app.run_until_idle().await;

    let browser = harness::Browser::open().await;
    browser.log_in(&app.address, &rm.email, PASSWORD).await;
    browser.goto(&format!("{}/releases/{id}", app.address)).await;
    assert_eq!(browser.text("#release-status").await, "Running");
    browser.client.execute("window.railyardMarker = 'same page'; return null;", vec![]).await.unwrap();

    app.clock.advance(chrono::TimeDelta::minutes(10));
    app.run_until_idle().await;
    browser.wait_for_text("#release-status", "OnHold").await;
    browser.wait_for_text("#status-reason", "Go").await;

    let token = app.api_token(&approver).await;
    let res = app.api_post(&token, &format!("/api/v1/releases/{id}/activities/signoff/ok/approve"), &serde_json::json!({})).await;
    assert_eq!(res.status(), 200);
    app.run_until_idle().await;
    browser.wait_for_text("#release-status", "Success").await;
    let marker = browser.client.execute("return window.railyardMarker || null;", vec![]).await.unwrap();
    assert_eq!(marker, serde_json::json!("same page"), "the page was never reloaded");
    browser.close().await;
}

#[tokio::test]
async fn an_approver_signs_off_from_the_mail_link_logging_in_first() {
    use railyard::ops::{processes, releases, Actor};
    let smtp = common::smtp::SmtpServer::start(0).await;
    let app = TestApp::spawn_with_smtp(Some(smtp.url())).await;
    let account = app.create_account("acme").await;
    let rm = app.create_user(account, "rhea@acme.example.com", "account_release_manager", "").await;
    app.create_user(account, "quinn@acme.example.com", "viewer", "").await;
    let yaml = "name: Mail sign-off\nphases: [{key: p, name: P, activities: [{key: ok, name: Go live, kind: approval, approvers: \"user:quinn@acme.example.com\"}]}]\n";
    let id = {
        let mut conn = app.conn().await;
        let actor = Actor::user(rm.id, account, &rm.email);
        let process = processes::create(&mut conn, &actor, None, processes::Source::Yaml(yaml.into()), app.clock_now()).await.unwrap();
        let input =
            releases::ReleaseInput { process_id: Some(process.process.id), name: Some("Ledger 11 go-live".into()), ..Default::default() };
        let prepared = releases::prepare(&mut conn, &actor, "UTC", &app.state.secrets, &input, None, false).await.unwrap();
        releases::create(&mut conn, &actor, prepared, true, app.clock_now()).await.unwrap().release.id
    };
    app.run_until_idle().await;
    let link = smtp.to("quinn@acme.example.com").iter().find_map(|m| m.signoff_path()).expect("a sign-off mail");

    let browser = harness::Browser::open().await;
    browser.goto(&format!("{}{link}", app.address)).await;
    browser.fill("#email", "quinn@acme.example.com").await;
    browser.fill("#password", PASSWORD).await;
    browser.click("#login-form button[type=submit]").await;
    browser.wait_for_text("#signoff", "Go live").await;
    browser.click("#approve").await;
    browser.wait_for_text("#signoff", "You are about to approve").await;
    browser.click("#confirm-decision").await;
    browser.wait_for_text("#signoff-message", "Your approval is recorded").await;
    app.run_until_idle().await;
    let mut conn = app.conn().await;
    use diesel::prelude::*;
    use diesel_async::RunQueryDsl;
    use railyard::db::schema::releases::dsl as r;
    let status: String = r::releases.find(id).select(r::status).first(&mut conn).await.unwrap();
    assert_eq!(status, "Success");
    browser.close().await;
}

#[tokio::test]
async fn calendar_navigation_swaps_only_the_calendar_and_keeps_history() {
    let app = TestApp::spawn().await;
    let account = app.create_account("acme").await;
    app.create_user(account, "rhea@acme.example.com", "account_release_manager", "").await;
    {
        let mut conn = app.conn().await;
        let actor = railyard::ops::Actor::system(account, "test");
        for env in ["PROD1", "PROD2"] {
            let input = railyard::ops::catalog::EnvironmentInput {
                name: Some(env.into()),
                production: Some(true),
                position: None,
                deploy_lock: None,
            };
            railyard::ops::catalog::create_environment(&mut conn, &actor, &input, app.clock_now()).await.unwrap();
        }
    }
    let browser = harness::Browser::open().await;
    browser.log_in(&app.address, "rhea@acme.example.com", PASSWORD).await;
    browser.goto(&format!("{}/calendar?view=month&date=2026-11-15", app.address)).await;
    assert_eq!(browser.text("#calendar-title").await, "November 2026");
    browser.client.execute("document.querySelector('header').setAttribute('data-marker', 'kept'); return null;", vec![]).await.unwrap();

    browser.click("#cal-next").await;
    browser.wait_for_text("#calendar-title", "December 2026").await;
    let url = browser.client.current_url().await.unwrap();
    assert!(url.as_str().contains("date=2026-12-15"), "{url}");
    browser.client.find(fantoccini::Locator::Css("#filter-environment")).await.unwrap().select_by_value("PROD1").await.unwrap();
    for _ in 0..50 {
        if browser.client.current_url().await.unwrap().as_str().contains("environment=PROD1") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let filtered = browser.client.current_url().await.unwrap();
    assert!(filtered.as_str().contains("environment=PROD1"), "{filtered}");
    let marker = browser.client.execute("return document.querySelector('header').getAttribute('data-marker');", vec![]).await.unwrap();
    assert_eq!(marker, serde_json::json!("kept"), "only the calendar region was swapped");

    // Back goes through the pushed views in order; each step restores the previous one.
    let mut titles = Vec::new();
    for _ in 0..4 {
        let before = browser.client.current_url().await.unwrap();
        browser.client.back().await.unwrap();
        // Wait for the navigation itself, not for a fixed time.
        for _ in 0..50 {
            if browser.client.current_url().await.unwrap() != before {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        // Then for the view that address restores (htmx may fetch it again first).
        let at = browser.client.current_url().await.unwrap().to_string();
        let expected = if at.contains("date=2026-11-15") { "November 2026" } else { "December 2026" };
        let mut title = browser.text_now("#calendar-title").await;
        for _ in 0..100 {
            if title == expected {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            title = browser.text_now("#calendar-title").await;
        }
        titles.push(title.clone());
        if title == "November 2026" && at.contains("date=2026-11-15") {
            break;
        }
    }
    assert_eq!(titles.last().map(String::as_str), Some("November 2026"), "Back returns to the previous month: {titles:?}");
    assert!(titles.iter().take(titles.len() - 1).all(|t| t == "December 2026"), "{titles:?}");
    browser.goto(filtered.as_str()).await;
    browser.wait_for_text("#calendar-title", "December 2026").await;
    let selected = browser.value("#filter-environment").await;
    assert_eq!(selected, "PROD1", "the pushed address shows the same view");
    browser.close().await;
}

#[tokio::test]
async fn an_htmx_form_answered_403_shows_the_reason_on_the_page() {
    let app = TestApp::spawn().await;
    let account = app.create_account("acme").await;
    let ana = app.create_user(account, "ana@acme.example.com", "account_admin", "").await;
    let browser = harness::Browser::open().await;
    browser.log_in(&app.address, "ana@acme.example.com", PASSWORD).await;
    browser.goto(&format!("{}/admin/environments", app.address)).await;
    // While the form is open, ana loses her role (another admin, say): the submit is refused.
    {
        use diesel::prelude::*;
        use diesel_async::RunQueryDsl;
        use railyard::db::schema::role_bindings::dsl as rb;
        let mut conn = app.conn().await;
        diesel::delete(rb::role_bindings.filter(rb::user_id.eq(ana.id))).execute(&mut conn).await.unwrap();
    }
    browser.fill("#name", "PROD1").await;
    browser.click("#environment-form button[type=submit]").await;
    let toast = browser.wait_text("#toasts .toast").await;
    assert!(toast.contains("You may not"), "{toast}");
    assert_eq!(browser.value("#name").await, "PROD1", "the form and what was typed stay");
    browser.close().await;
}

#[tokio::test]
async fn an_htmx_log_in_answered_429_shows_when_to_try_again() {
    let app = TestApp::spawn().await;
    let account = app.create_account("acme").await;
    app.create_user(account, "ana@acme.example.com", "account_admin", "").await;
    let browser = harness::Browser::open().await;
    browser.goto(&format!("{}/login", app.address)).await;
    // Each wrong password swaps in a fresh form (200); after five, the sixth is throttled (429).
    for attempt in 1..=6 {
        browser.client.execute("document.getElementById('login-form').setAttribute('data-sent', '1');", vec![]).await.unwrap();
        browser.fill("#email", "ana@acme.example.com").await;
        browser.fill("#password", "not the password").await;
        browser.click("#login-form button[type=submit]").await;
        if attempt < 6 {
            browser.wait_text("#login-form:not([data-sent]) .form-error").await;
        }
    }
    let toast = browser.wait_text("#toasts .toast").await;
    assert!(toast.contains("Too many failed log-ins; try again in"), "{toast}");
    browser.close().await;
}

#[tokio::test]
async fn the_dashboard_lists_a_waiting_approval_and_approving_from_there_works() {
    use railyard::ops::{processes, releases, Actor};
    let app = TestApp::spawn().await;
    let account = app.create_account("acme").await;
    let rm = app.create_user(account, "rhea@acme.example.com", "account_release_manager", "").await;
    app.create_user(account, "quinn@acme.example.com", "viewer", "").await;
    app.create_user(account, "vic@acme.example.com", "viewer", "").await;
    let yaml = "name: Dashboard sign-off\nphases: [{key: p, name: P, activities: [{key: ok, name: Go live, kind: approval, approvers: \"user:quinn@acme.example.com\"}]}]\n";
    let id = {
        let mut conn = app.conn().await;
        let actor = Actor::user(rm.id, account, &rm.email);
        let process = processes::create(&mut conn, &actor, None, processes::Source::Yaml(yaml.into()), app.clock_now()).await.unwrap();
        let input =
            releases::ReleaseInput { process_id: Some(process.process.id), name: Some("Ledger 12 go-live".into()), ..Default::default() };
        let prepared = releases::prepare(&mut conn, &actor, "UTC", &app.state.secrets, &input, None, false).await.unwrap();
        releases::create(&mut conn, &actor, prepared, true, app.clock_now()).await.unwrap().release.id
    };
    app.run_until_idle().await;

    // A viewer with nothing waiting is told so.
    let browser = harness::Browser::open().await;
    browser.log_in(&app.address, "vic@acme.example.com", PASSWORD).await;
    let mine = browser.text("#my-work").await;
    assert!(mine.contains("Nothing is waiting for you"), "{mine}");
    browser.close().await;

    // The approver sees the approval on the dashboard and approves it from there.
    let browser = harness::Browser::open().await;
    browser.log_in(&app.address, "quinn@acme.example.com", PASSWORD).await;
    let mine = browser.text("#my-work").await;
    assert!(mine.contains("Go live") && mine.contains("Ledger 12 go-live"), "{mine}");
    browser.click("#my-work form.inline button[type=submit]").await;
    browser.wait_for_text(".flash-success", "approve p.ok: done").await;
    app.run_until_idle().await;
    let mut conn = app.conn().await;
    let release = railyard::db::models::releases::Release::find(&mut conn, account, id).await.unwrap();
    assert_eq!(release.status, "Success");
    browser.close().await;
}

#[tokio::test]
async fn an_org_freeze_holds_a_hotfix_and_the_override_button_lets_it_through_with_the_reason_audited() {
    use railyard::ops::{processes, releases, Actor};
    let app = TestApp::spawn().await;
    let account = app.create_account("acme").await;
    let payments = app.create_org(account, "payments").await;
    let orm = app.create_user(account, "olga@acme.example.com", "org_release_manager", "payments").await;
    let rm = app.create_user(account, "rhea@acme.example.com", "account_release_manager", "").await;
    let id = {
        let mut conn = app.conn().await;
        let system = Actor::system(account, "test");
        let level = railyard::ops::settings::SettingsInput { release_level: Some("organization".into()), ..Default::default() };
        railyard::ops::settings::update_settings(&mut conn, &system, &level, app.clock_now()).await.unwrap();
        let prod = railyard::ops::catalog::EnvironmentInput {
            name: Some("PROD1".into()),
            production: Some(true),
            position: None,
            deploy_lock: None,
        };
        railyard::ops::catalog::create_environment(&mut conn, &system, &prod, app.clock_now()).await.unwrap();
        let actor = Actor::user(orm.id, account, &orm.email);
        let yaml = "name: Hotfix deploy\ninputs: [{name: environment, type: environment, required: true}]\nphases: [{key: p, name: P, activities: [{key: a, name: Deploy, kind: manual}]}]\n";
        let process =
            processes::create(&mut conn, &actor, Some(payments), processes::Source::Yaml(yaml.into()), app.clock_now()).await.unwrap();
        let input = releases::ReleaseInput {
            process_id: Some(process.process.id),
            name: Some("Ledger 9.2.1 hotfix".into()),
            release_type: Some("hotfix".into()),
            org: Some(Some("payments".into())),
            inputs: Some(serde_json::Map::from_iter([("environment".to_string(), serde_json::json!("PROD1"))])),
            ..Default::default()
        };
        let prepared = releases::prepare(&mut conn, &actor, "UTC", &app.state.secrets, &input, None, false).await.unwrap();
        releases::create(&mut conn, &actor, prepared, false, app.clock_now()).await.unwrap().release.id
    };

    // The org release manager freezes their org's PROD1 from the freezes page.
    let browser = harness::Browser::open().await;
    browser.log_in(&app.address, &orm.email, PASSWORD).await;
    browser.goto(&format!("{}/admin/freezes", app.address)).await;
    let now = app.clock_now();
    browser.fill("#f-reason", "Payments quarter close").await;
    browser.fill("#f-envs", "PROD1").await;
    browser.fill("#f-zone", "UTC").await;
    for (selector, at) in [("#f-start", now - chrono::TimeDelta::hours(1)), ("input[name=ends_at]", now + chrono::TimeDelta::hours(4))] {
        let script = format!("document.querySelector('{selector}').value = '{}'; return null;", at.format("%Y-%m-%dT%H:%M"));
        browser.client.execute(&script, vec![]).await.unwrap();
    }
    browser.click("#freeze-form button[type=submit]").await;
    browser.wait_for_text(".flash-success", "Freeze window created").await;
    {
        let mut conn = app.conn().await;
        releases::activate(&mut conn, &Actor::user(orm.id, account, &orm.email), id, app.clock_now()).await.unwrap();
    }
    app.run_until_idle().await;
    browser.close().await;

    // An account release manager sees the hold and overrides it with a reason.
    let browser = harness::Browser::open().await;
    browser.log_in(&app.address, &rm.email, PASSWORD).await;
    browser.goto(&format!("{}/releases/{id}", app.address)).await;
    assert_eq!(browser.text("#release-status").await, "OnHold");
    browser.wait_for_text("#status-reason", "held by a freeze (Payments quarter close)").await;
    browser.fill("#override-reason", "INC-4711 payments outage").await;
    browser.click("#override-freeze").await;
    browser.wait_for_text(".flash-success", "passes the freeze").await;
    app.run_until_idle().await;
    browser.wait_for_text("#release-status", "OnHold").await;
    browser.wait_for_text("#status-reason", "Deploy").await;
    {
        use diesel::prelude::*;
        use diesel_async::RunQueryDsl;
        use railyard::db::schema::audit_events::dsl as a;
        let mut conn = app.conn().await;
        let reasons: Vec<(String, Option<String>)> =
            a::audit_events.filter(a::action.eq("release.freeze_override")).select((a::actor, a::reason)).load(&mut conn).await.unwrap();
        assert_eq!(reasons, [(format!("user:{}", rm.email), Some("INC-4711 payments outage".to_string()))]);
    }
    browser.close().await;
}

#[tokio::test]
async fn a_calendar_entry_opens_its_summary_without_leaving_the_calendar() {
    use railyard::ops::{processes, releases, Actor};
    let app = TestApp::spawn().await;
    let account = app.create_account("acme").await;
    let rm = app.create_user(account, "rhea@acme.example.com", "account_release_manager", "").await;
    let mut ids = Vec::new();
    {
        let mut conn = app.conn().await;
        let system = Actor::system(account, "test");
        let prod = railyard::ops::catalog::EnvironmentInput {
            name: Some("PROD1".into()),
            production: Some(true),
            position: None,
            deploy_lock: None,
        };
        railyard::ops::catalog::create_environment(&mut conn, &system, &prod, app.clock_now()).await.unwrap();
        let actor = Actor::user(rm.id, account, &rm.email);
        let yaml = "name: Deploy\ninputs: [{name: environment, type: environment, required: true}]\nphases: [{key: p, name: P, activities: [{key: a, name: A, kind: manual}]}]\n";
        let process = processes::create(&mut conn, &actor, None, processes::Source::Yaml(yaml.into()), app.clock_now()).await.unwrap();
        for (name, start, end) in [
            ("Payments 7.0 to PROD1", "2026-12-03T08:00:00Z", "2026-12-03T12:00:00Z"),
            ("Ledger 7.0 to PROD1", "2026-12-03T10:00:00Z", "2026-12-03T14:00:00Z"),
        ] {
            let input = releases::ReleaseInput {
                process_id: Some(process.process.id),
                name: Some(name.into()),
                inputs: Some(serde_json::Map::from_iter([("environment".to_string(), serde_json::json!("PROD1"))])),
                schedule: Some(Some(releases::ScheduleInput { start: start.into(), end: end.into(), time_zone: Some("UTC".into()) })),
                ..Default::default()
            };
            let prepared = releases::prepare(&mut conn, &actor, "UTC", &app.state.secrets, &input, None, false).await.unwrap();
            ids.push(releases::create(&mut conn, &actor, prepared, false, app.clock_now()).await.unwrap().release.id);
        }
    }
    let browser = harness::Browser::open().await;
    browser.log_in(&app.address, &rm.email, PASSWORD).await;
    browser.goto(&format!("{}/calendar?view=month&date=2026-12-03", app.address)).await;
    // The conflict is said in words in the grid, not by a glyph alone.
    let cell = browser.text(&format!("a[data-release='{}']", ids[0])).await;
    assert!(cell.contains("conflict"), "{cell}");
    browser.client.execute("window.railyardMarker = 'same page'; return null;", vec![]).await.unwrap();
    browser.click(&format!("a[data-release='{}']", ids[0])).await;
    browser.wait_for_text("#entry-summary", "Payments 7.0 to PROD1").await;
    let summary = browser.text("#entry-summary").await;
    assert!(summary.contains("Draft") || summary.contains("draft") || summary.contains("NotStarted"), "the status: {summary}");
    assert!(summary.contains("PROD1"), "the environments: {summary}");
    assert!(summary.contains(&format!("#{} Ledger 7.0 to PROD1", ids[1])), "the conflicts: {summary}");
    assert!(summary.contains("Thu 2026-12-03 08:00 UTC"), "the window: {summary}");
    let url = browser.client.current_url().await.unwrap();
    assert_eq!(url.path(), "/calendar", "still on the calendar");
    let marker = browser.client.execute("return window.railyardMarker || null;", vec![]).await.unwrap();
    assert_eq!(marker, serde_json::json!("same page"), "no full page load");
    browser.click("#entry-summary-close").await;
    for _ in 0..50 {
        if browser.text_now("#entry-summary").await.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(browser.text_now("#entry-summary").await, "", "closed");
    browser.close().await;
}

#[tokio::test]
async fn a_drafts_process_is_changed_and_a_phase_variable_overridden_in_the_browser() {
    use railyard::ops::{processes, releases, Actor};
    let app = TestApp::spawn().await;
    let account = app.create_account("acme").await;
    let rm = app.create_user(account, "rhea@acme.example.com", "account_release_manager", "").await;
    let (draft, target) = {
        let mut conn = app.conn().await;
        let actor = Actor::user(rm.id, account, &rm.email);
        let now = app.clock_now();
        let first = "name: Quick fix\nphases: [{key: p, name: P, activities: [{key: a, name: A, kind: manual}]}]\n";
        let second = "name: Regional rollout\ninputs: [{name: version, type: string}]\nvariables: [{name: region, value: eu}]\nphases: [{key: deploy, name: Deploy, variables: [{name: region, value: us}], activities: [{key: go, name: Go, kind: manual}]}]\n";
        let quick = processes::create(&mut conn, &actor, None, processes::Source::Yaml(first.into()), now).await.unwrap();
        let regional = processes::create(&mut conn, &actor, None, processes::Source::Yaml(second.into()), now).await.unwrap();
        let input =
            releases::ReleaseInput { process_id: Some(quick.process.id), name: Some("Ledger 3.0 rollout".into()), ..Default::default() };
        let prepared = releases::prepare(&mut conn, &actor, "UTC", &app.state.secrets, &input, None, false).await.unwrap();
        (releases::create(&mut conn, &actor, prepared, false, now).await.unwrap().release.id, regional.process.id)
    };
    let browser = harness::Browser::open().await;
    browser.log_in(&app.address, &rm.email, PASSWORD).await;
    browser.goto(&format!("{}/releases/{draft}/edit", app.address)).await;
    browser.client.find(fantoccini::Locator::Css("#process_id")).await.unwrap().select_by_value(&target.to_string()).await.unwrap();
    // htmx re-renders the form for the chosen process: its inputs and variables appear, the name stays.
    for _ in 0..50 {
        if browser.client.find(fantoccini::Locator::Css("input[name='var.deploy.region']")).await.is_ok() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(browser.value("#name").await, "Ledger 3.0 rollout", "the draft's other fields are kept");
    assert!(browser.client.find(fantoccini::Locator::Css("#in-version")).await.is_ok(), "the new process's input");
    browser.fill("#in-version", "3.0.0").await;
    browser.fill("input[name='var.deploy.region']", "ap-south").await;
    browser.click("#save-release").await;
    browser.wait_for_text(".flash-success", "Draft saved").await;
    let token = app.api_token(&rm).await;
    let (_, r) = common::body(app.api_get(&token, &format!("/api/v1/releases/{draft}")).await).await;
    assert_eq!(r["process_id"].as_i64(), Some(target), "{r}");
    assert_eq!(r["variables"], serde_json::json!({"deploy.region": "ap-south"}), "{r}");
    assert_eq!(r["inputs"]["version"], "3.0.0");
    browser.close().await;
}

#[tokio::test]
async fn a_manual_task_is_completed_in_the_browser_with_its_outputs_and_a_comment() {
    use railyard::ops::{processes, releases, Actor};
    let app = TestApp::spawn().await;
    let account = app.create_account("acme").await;
    let rm = app.create_user(account, "rhea@acme.example.com", "account_release_manager", "").await;
    let ana = app.create_user(account, "ana@acme.example.com", "viewer", "").await;
    let id = {
        let mut conn = app.conn().await;
        let actor = Actor::user(rm.id, account, &rm.email);
        let yaml = "name: Smoke\nphases: [{key: p, name: P, activities: [{key: smoke, name: Smoke tests, kind: manual, owner: \"user:ana@acme.example.com\", records: [build_url]}]}]\n";
        let process = processes::create(&mut conn, &actor, None, processes::Source::Yaml(yaml.into()), app.clock_now()).await.unwrap();
        let input =
            releases::ReleaseInput { process_id: Some(process.process.id), name: Some("Ledger 9.3 smoke".into()), ..Default::default() };
        let prepared = releases::prepare(&mut conn, &actor, "UTC", &app.state.secrets, &input, None, false).await.unwrap();
        releases::create(&mut conn, &actor, prepared, true, app.clock_now()).await.unwrap().release.id
    };
    app.run_until_idle().await;
    let browser = harness::Browser::open().await;
    browser.log_in(&app.address, &ana.email, PASSWORD).await;
    browser.goto(&format!("{}/releases/{id}", app.address)).await;
    browser.fill("#out-p-smoke-build_url", "https://ci.example.com/builds/77").await;
    browser.fill("#comment-p-smoke", "green on all suites").await;
    browser.click("#task-p-smoke .action-complete").await;
    browser.wait_for_text(".flash-success", "complete p.smoke").await;
    let token = app.api_token(&rm).await;
    let (_, r) = common::body(app.api_get(&token, &format!("/api/v1/releases/{id}")).await).await;
    let smoke = &r["phases"][0]["activities"][0];
    assert_eq!(smoke["status"], "Success", "{r}");
    assert_eq!(smoke["outputs"]["build_url"], "https://ci.example.com/builds/77");
    browser.wait_for_text("#activity-p-smoke", "green on all suites").await;
    browser.close().await;
}

#[tokio::test]
async fn the_release_page_draws_the_phase_graph_with_each_phases_status() {
    use railyard::ops::{processes, releases, Actor};
    let app = TestApp::spawn().await;
    let account = app.create_account("acme").await;
    let rm = app.create_user(account, "rhea@acme.example.com", "account_release_manager", "").await;
    let id = {
        let mut conn = app.conn().await;
        let actor = Actor::user(rm.id, account, &rm.email);
        let yaml = "name: Three phases
phases:
  - {key: build, name: Build, activities: [{key: b, name: Build it, kind: manual}]}
  - {key: qa, name: QA, depends_on: [build], activities: [{key: q, name: Test it, kind: manual}]}
  - {key: perf, name: Performance, depends_on: [build], activities: [{key: p, name: Load it, kind: manual}]}
  - {key: prod, name: Production, depends_on: [qa, perf], activities: [{key: d, name: Ship it, kind: manual}]}
";
        let process = processes::create(&mut conn, &actor, None, processes::Source::Yaml(yaml.into()), app.clock_now()).await.unwrap();
        let input =
            releases::ReleaseInput { process_id: Some(process.process.id), name: Some("Ledger 9.4 to PROD1".into()), ..Default::default() };
        let prepared = releases::prepare(&mut conn, &actor, "UTC", &app.state.secrets, &input, None, false).await.unwrap();
        releases::create(&mut conn, &actor, prepared, true, app.clock_now()).await.unwrap().release.id
    };
    app.run_until_idle().await;
    let token = app.api_token(&rm).await;
    app.clock.advance(chrono::TimeDelta::minutes(30));
    let res = app.api_post(&token, &format!("/api/v1/releases/{id}/activities/build/b/complete"), &serde_json::json!({})).await;
    assert_eq!(res.status(), 200);
    app.run_until_idle().await;

    let browser = harness::Browser::open().await;
    browser.log_in(&app.address, &rm.email, PASSWORD).await;
    browser.goto(&format!("{}/releases/{id}", app.address)).await;
    let status_of = |phase: &'static str| {
        let client = browser.client.clone();
        async move {
            let script = format!("return document.querySelector('#phase-graph [data-phase={phase}]').getAttribute('data-status');");
            client.execute(&script, vec![]).await.unwrap()
        }
    };
    assert_eq!(status_of("build").await, serde_json::json!("Success"));
    assert_eq!(status_of("qa").await, serde_json::json!("Running"));
    assert_eq!(status_of("perf").await, serde_json::json!("Running"));
    assert_eq!(status_of("prod").await, serde_json::json!("NotStarted"));
    let edges = browser.client.execute("return document.querySelectorAll('#phase-graph path.edge').length;", vec![]).await.unwrap();
    assert_eq!(edges, serde_json::json!(4), "one arrow per dependency");
    let current = browser.client.execute("return document.querySelectorAll('#phase-graph .node.current').length;", vec![]).await.unwrap();
    assert_eq!(current, serde_json::json!(2), "the current position is marked");
    let bars = browser.client.execute("return document.querySelectorAll('#timeline rect.bar').length;", vec![]).await.unwrap();
    assert_eq!(bars, serde_json::json!(3), "build, qa and perf have started");

    // Attached to the test output: the drawn graph.
    let pipeline = browser.client.find(fantoccini::Locator::Css("#pipeline")).await.unwrap();
    let png = pipeline.screenshot().await.unwrap();
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("release-page-phase-graph.png");
    std::fs::write(&path, &png).unwrap();
    println!("screenshot: {} ({} bytes)", path.display(), png.len());
    assert!(png.len() > 1000);

    // Live: completing QA updates the graph without a reload.
    let res = app.api_post(&token, &format!("/api/v1/releases/{id}/activities/qa/q/complete"), &serde_json::json!({})).await;
    assert_eq!(res.status(), 200);
    app.run_until_idle().await;
    for _ in 0..60 {
        if status_of("qa").await == serde_json::json!("Success") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(status_of("qa").await, serde_json::json!("Success"), "updated live");
    browser.close().await;
}
