//! Access for everyone: axe-core (from npm, `tests/browser/node_modules`) injected into the main
//! pages finds no serious or critical violation, and at 375 px wide they do not scroll sideways.

use crate::common::{TestApp, PASSWORD};
use crate::harness;

/// axe-core's own build, as npm installed it (`scripts/test` runs `npm ci` here).
fn axe_source() -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser/node_modules/axe-core/axe.min.js");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e} (run npm ci in tests/browser)", path.display()))
}

/// The serious and critical violations axe-core finds on the page now: "rule: target (summary)".
async fn violations(browser: &harness::Browser, axe: &str) -> Vec<String> {
    browser.client.execute(&format!("{axe}\nreturn null;"), vec![]).await.expect("inject axe-core");
    let found = browser
        .client
        .execute_async(
            "const done = arguments[arguments.length - 1];
             axe.run(document, {resultTypes: ['violations']}).then(r => done(r.passes.length === 0 ? ['axe checked nothing'] : r.violations
               .filter(v => v.impact === 'serious' || v.impact === 'critical')
               .flatMap(v => v.nodes.map(n => v.id + ': ' + n.target.join(' ') + ' (' + (n.failureSummary || '').replace(/\\s+/g, ' ') + ')')))
             ).catch(e => done(['axe failed: ' + e]));",
            vec![],
        )
        .await
        .expect("axe.run");
    serde_json::from_value(found).unwrap_or_default()
}

/// Whether the page is wider than the window (a sideways scroll).
async fn scrolls_sideways(browser: &harness::Browser) -> (i64, i64) {
    let v = browser
        .client
        .execute("return [document.documentElement.scrollWidth, document.documentElement.clientWidth];", vec![])
        .await
        .expect("widths");
    (v[0].as_i64().unwrap_or_default(), v[1].as_i64().unwrap_or_default())
}

#[tokio::test]
async fn the_main_pages_pass_axe_core_and_fit_a_375_px_phone() {
    use railyard::ops::{processes, releases, Actor};
    let app = TestApp::spawn().await;
    let account = app.create_account("acme").await;
    let rm = app.create_user(account, "rhea@acme.example.com", "account_release_manager", "").await;
    let approver = app.create_user(account, "quinn@acme.example.com", "viewer", "").await;
    let id = {
        let mut conn = app.conn().await;
        let actor = Actor::user(rm.id, account, &rm.email);
        let yaml = "name: Weekly payments release
phases:
  - {key: build, name: Build and package the payment service, activities: [{key: b, name: Build, kind: manual, owner: \"user:rhea@acme.example.com\", records: [build_url]}]}
  - {key: signoff, name: Sign-off, depends_on: [build], activities: [{key: ok, name: Go live, kind: approval, approvers: \"user:quinn@acme.example.com\"}]}
";
        let process = processes::create(&mut conn, &actor, None, processes::Source::Yaml(yaml.into()), app.clock_now()).await.unwrap();
        let input = releases::ReleaseInput {
            process_id: Some(process.process.id),
            name: Some("Payment Service v2.1.3 - Production Deployment with a long name".into()),
            schedule: Some(Some(releases::ScheduleInput {
                start: "2026-11-28T08:00:00Z".into(),
                end: "2026-11-28T18:00:00Z".into(),
                time_zone: Some("UTC".into()),
            })),
            ..Default::default()
        };
        let prepared = releases::prepare(&mut conn, &actor, "UTC", &app.state.secrets, &input, None, false).await.unwrap();
        releases::create(&mut conn, &actor, prepared, true, app.clock_now()).await.unwrap().release.id
    };
    app.run_until_idle().await;
    let token = app.api_token(&rm).await;
    let res = app.api_post(&token, &format!("/api/v1/releases/{id}/activities/build/b/complete"), &serde_json::json!({})).await;
    assert_eq!(res.status(), 200);
    app.run_until_idle().await;
    let signoff = {
        use railyard::db::models::signoff_tokens::{issue, LinkFor};
        let mut conn = app.conn().await;
        let link = LinkFor { account_id: account, release_id: id, phase: "signoff", activity: "ok", round: 1, user_id: approver.id };
        format!("/signoff/{}", issue(&mut conn, link, app.clock_now()).await.unwrap())
    };

    let axe = axe_source();
    let browser = harness::Browser::open().await;
    browser.log_in(&app.address, &rm.email, PASSWORD).await;
    let pages = [
        "/".to_string(),
        "/calendar".to_string(),
        "/calendar?view=agenda&date=2026-11-28".to_string(),
        "/releases".to_string(),
        format!("/releases/{id}"),
        "/work".to_string(),
    ];
    let mut problems = Vec::new();
    for width in [1280, 375] {
        browser.client.set_window_size(width, 900).await.expect("window size");
        for page in &pages {
            browser.goto(&format!("{}{page}", app.address)).await;
            for v in violations(&browser, &axe).await {
                problems.push(format!("{page} at {width} px: {v}"));
            }
            let (scroll, client) = scrolls_sideways(&browser).await;
            if scroll > client {
                problems.push(format!("{page} at {width} px scrolls sideways: {scroll} > {client}"));
            }
            if width == 375 && client > 400 {
                problems.push(format!("{page}: the window did not narrow ({client} px)"));
            }
        }
    }
    browser.close().await;
    // The sign-off page, as the approver sees it from the mail's link.
    let browser = harness::Browser::open().await;
    browser.log_in(&app.address, &approver.email, PASSWORD).await;
    for width in [1280, 375] {
        browser.client.set_window_size(width, 900).await.expect("window size");
        browser.goto(&format!("{}{signoff}", app.address)).await;
        browser.wait_for_text("#signoff", "Go live").await;
        for v in violations(&browser, &axe).await {
            problems.push(format!("{signoff} at {width} px: {v}"));
        }
        let (scroll, client) = scrolls_sideways(&browser).await;
        if scroll > client {
            problems.push(format!("{signoff} at {width} px scrolls sideways: {scroll} > {client}"));
        }
    }
    browser.close().await;
    assert!(problems.is_empty(), "{} problem(s):\n{}", problems.len(), problems.join("\n"));
}

#[tokio::test]
async fn a_keyboard_user_skips_to_the_content_and_sees_where_the_focus_is() {
    let app = TestApp::spawn().await;
    let account = app.create_account("acme").await;
    app.create_user(account, "rhea@acme.example.com", "account_release_manager", "").await;
    let browser = harness::Browser::open().await;
    browser.log_in(&app.address, "rhea@acme.example.com", PASSWORD).await;
    browser.goto(&format!("{}/releases", app.address)).await;
    browser.client.active_element().await.expect("focus");
    // The first Tab lands on the skip link, which becomes visible and leads to the content.
    let first = browser.client.execute("document.activeElement.blur(); return null;", vec![]).await;
    assert!(first.is_ok());
    let body = browser.client.find(fantoccini::Locator::Css("body")).await.unwrap();
    body.send_keys("\u{E004}").await.unwrap();
    let focused = browser
        .client
        .execute("const e = document.activeElement; return [e.className, e.getAttribute('href'), getComputedStyle(e).outlineStyle, e.getBoundingClientRect().height];", vec![])
        .await
        .unwrap();
    assert_eq!(focused[0], "skip-link", "{focused}");
    assert_eq!(focused[1], "#main");
    assert_ne!(focused[2], "none", "a visible focus outline: {focused}");
    assert!(focused[3].as_f64().unwrap_or_default() > 1.0, "the skip link shows when focused: {focused}");
    browser.close().await;
}
