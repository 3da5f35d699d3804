//! E-mail over a real SMTP listener, sign-off links, delegation, reminders, escalation, status links.

use crate::common::smtp::SmtpServer;
use crate::common::{TestApp, PASSWORD};
use crate::engine::{act, activity, body, get, start, world, World};
use chrono::TimeDelta;
use serde_json::json;

const APPROVAL: &str = "name: Sign-off
inputs: [{name: token, type: string, secret: true}]
phases:
  - key: p
    name: Approve
    activities:
      - {key: ok, name: Go/no-go, kind: approval, approvers: \"group:qa\"}
";

async fn setup(smtp: &SmtpServer) -> (TestApp, World) {
    let app = TestApp::spawn_with_smtp(Some(smtp.url())).await;
    let w = world(&app, &["qa1", "qa2", "dele"], &[("qa", &["qa1", "qa2"])]).await;
    (app, w)
}

async fn logged_in(app: &TestApp, user: &str) -> crate::common::Client {
    let c = app.new_client();
    assert_eq!(c.login(&format!("{user}@acme.example.com"), PASSWORD).await.status(), 303);
    c
}

#[tokio::test]
async fn each_approver_gets_one_mail_whose_link_signs_off() {
    let smtp = SmtpServer::start(0).await;
    let (app, w) = setup(&smtp).await;
    let id = start(&app, &w, APPROVAL, json!({"inputs": {"token": "top-secret-value"}})).await;
    app.run_until_idle().await;
    for user in ["qa1", "qa2"] {
        let mails: Vec<_> =
            smtp.to(&format!("{user}@acme.example.com")).into_iter().filter(|m| m.subject().contains("approval is needed")).collect();
        assert_eq!(mails.len(), 1, "exactly one e-mail for {user}");
        assert!(mails[0].signoff_path().is_some());
        assert!(!mails[0].data.contains("top-secret-value"));
    }
    let link = smtp.to("qa1@acme.example.com").iter().find_map(|m| m.signoff_path()).unwrap();

    // Not logged in: log in, then back to the page.
    let browser = app.new_client();
    let res = browser.get(&link).await;
    assert_eq!(res.status(), 303);
    assert_eq!(res.headers()["location"].to_str().unwrap(), format!("/login?next={link}"));
    let token = browser.csrf("/login").await;
    let res = browser
        .post_form_raw("/login", &[("csrf_token", &token), ("email", "qa1@acme.example.com"), ("password", PASSWORD), ("next", &link)])
        .await;
    assert_eq!(res.headers()["location"].to_str().unwrap(), link);
    let page = browser.get_html(&link).await;
    assert!(page.contains("Go/no-go") && page.contains("Approve…") && !page.contains("top-secret-value"), "{page}");
    // One click asks for confirmation; nothing is decided yet.
    let confirm = browser.post_form(&link, &[("decision", "approve")]).await.text().await.unwrap();
    assert!(confirm.contains("Yes, approve"));
    assert_eq!(activity(&get(&app, &w, id).await, "p", "ok")["status"], "Running");
    let done = browser.post_form(&link, &[("decision", "approve"), ("confirm", "yes")]).await.text().await.unwrap();
    assert!(done.contains("Your approval is recorded"), "{done}");
    app.run_until_idle().await;
    assert_eq!(get(&app, &w, id).await["status"], "Success", "the release moved on");
}

#[tokio::test]
async fn used_expired_foreign_voided_and_decided_links_say_so_and_change_nothing() {
    let smtp = SmtpServer::start(0).await;
    let (app, w) = setup(&smtp).await;
    let qa1 = logged_in(&app, "qa1").await;
    let qa2 = logged_in(&app, "qa2").await;
    let link_for =
        |user: &str, nth: usize| smtp.to(&format!("{user}@acme.example.com")).iter().filter_map(|m| m.signoff_path()).nth(nth).unwrap();

    // Release 1: qa1 approves; the link used again says so; qa2's link: already decided; qa1 opening qa2's: foreign.
    let one = start(&app, &w, APPROVAL, json!({})).await;
    app.run_until_idle().await;
    let (l1, l2) = (link_for("qa1", 0), link_for("qa2", 0));
    assert!(qa2.get_html(&l1).await.contains("belongs to another approver"));
    qa1.post_form(&l1, &[("decision", "approve"), ("confirm", "yes")]).await;
    app.run_until_idle().await;
    assert!(qa1.get_html(&l1).await.contains("already used"));
    assert!(qa1
        .post_form(&l1, &[("decision", "reject"), ("comment", "x"), ("confirm", "yes")])
        .await
        .text()
        .await
        .unwrap()
        .contains("already used"));
    assert!(qa2.get_html(&l2).await.contains("already been decided"));
    assert_eq!(get(&app, &w, one).await["status"], "Success");

    // Release 2: a rejection, then a retry voids the first round's links.
    let two = start(&app, &w, &APPROVAL.replace("name: Sign-off", "name: Round two"), json!({})).await;
    app.run_until_idle().await;
    let (r1_qa1, r1_qa2) = (link_for("qa1", 1), link_for("qa2", 1));
    let rejected = qa2.post_form(&r1_qa2, &[("decision", "reject"), ("confirm", "yes")]).await.text().await.unwrap();
    assert!(rejected.contains("needs a reason"), "a rejection needs a reason");
    qa2.post_form(&r1_qa2, &[("decision", "reject"), ("comment", "tests are red"), ("confirm", "yes")]).await;
    app.run_until_idle().await;
    assert_eq!(act(&app, &w.rm_token, two, "p", "ok", "retry", json!({"reason": "fixed"})).await.0, 200);
    app.run_until_idle().await;
    let before = get(&app, &w, two).await;
    assert!(qa1.get_html(&r1_qa1).await.contains("was voided"));
    assert!(qa1.post_form(&r1_qa1, &[("decision", "approve"), ("confirm", "yes")]).await.text().await.unwrap().contains("was voided"));
    assert_eq!(get(&app, &w, two).await["phases"], before["phases"], "nothing changed");

    // Release 3: the clock moves past the expiry.
    let three = start(&app, &w, &APPROVAL.replace("name: Sign-off", "name: Round three"), json!({})).await;
    app.run_until_idle().await;
    let late = smtp.to("qa1@acme.example.com").iter().filter_map(|m| m.signoff_path()).next_back().unwrap();
    app.clock.advance(TimeDelta::days(8));
    assert!(qa1.get_html(&late).await.contains("has expired"));
    assert_eq!(activity(&get(&app, &w, three).await, "p", "ok")["status"], "Running", "GETs never decide");
}

#[tokio::test]
async fn a_delegate_votes_once_for_the_approver_and_the_trail_names_both() {
    let smtp = SmtpServer::start(0).await;
    let (app, w) = setup(&smtp).await;
    let qa1 = logged_in(&app, "qa1").await;
    let res = qa1
        .post_form(
            "/profile/delegations",
            &[("delegate", "dele@acme.example.com"), ("starts_at", "2026-11-28T08:00"), ("ends_at", "2026-12-05T08:00")],
        )
        .await;
    assert_eq!(res.status(), 303);
    let id = start(&app, &w, &APPROVAL.replace("approvers: \"group:qa\"}", "approvers: \"group:qa\", threshold: all}"), json!({})).await;
    app.run_until_idle().await;
    assert_eq!(act(&app, &w.tokens["dele"], id, "p", "ok", "approve", json!({})).await.0, 200);
    let (status, e) = act(&app, &w.tokens["qa1"], id, "p", "ok", "approve", json!({})).await;
    assert_eq!(status, 409, "the approver's one vote is used: {e}");
    let mut conn = app.conn().await;
    use diesel::prelude::*;
    use diesel_async::RunQueryDsl;
    use railyard::db::schema::audit_events::dsl as a;
    let (actor, details): (String, serde_json::Value) =
        a::audit_events.filter(a::action.eq("activity.approve")).select((a::actor, a::details)).first(&mut conn).await.unwrap();
    assert_eq!(actor, "user:dele@acme.example.com");
    assert_eq!(details["on_behalf_of"], "user:qa1@acme.example.com");
    assert_eq!(act(&app, &w.tokens["qa2"], id, "p", "ok", "approve", json!({})).await.0, 200);
    app.run_until_idle().await;
    assert_eq!(get(&app, &w, id).await["status"], "Success");
    // Outside the period the delegate has no vote.
    app.clock.advance(TimeDelta::days(10));
    let later = start(&app, &w, &APPROVAL.replace("name: Sign-off", "name: Later"), json!({})).await;
    app.run_until_idle().await;
    assert_eq!(act(&app, &w.tokens["dele"], later, "p", "ok", "approve", json!({})).await.0, 403);
}

#[tokio::test]
async fn with_smtp_down_the_release_proceeds_and_mail_waits_in_the_outbox() {
    let smtp = SmtpServer::start(0).await;
    let (app, w) = setup(&smtp).await;
    let port = smtp.stop();
    let id = start(&app, &w, APPROVAL, json!({})).await;
    app.run_until_idle().await;
    assert_eq!(get(&app, &w, id).await["status"], "OnHold", "the release proceeds to its approval");
    let mut conn = app.conn().await;
    use diesel::prelude::*;
    use diesel_async::RunQueryDsl;
    use railyard::db::schema::notification_outbox::dsl as o;
    let waiting: Vec<Option<String>> = o::notification_outbox
        .filter(o::channel.eq("email"))
        .filter(o::delivered_at.is_null())
        .select(o::last_error)
        .load(&mut conn)
        .await
        .unwrap();
    assert!(!waiting.is_empty() && waiting.iter().all(|e| e.as_deref().is_some_and(|e| e.contains("SMTP"))), "{waiting:?}");
    let back = SmtpServer::start(port).await;
    app.clock.advance(TimeDelta::minutes(5));
    app.run_until_idle().await;
    let pending: i64 = o::notification_outbox
        .filter(o::channel.eq("email"))
        .filter(o::delivered_at.is_null())
        .count()
        .get_result(&mut conn)
        .await
        .unwrap();
    assert_eq!(pending, 0);
    assert_eq!(back.to("qa1@acme.example.com").iter().filter(|m| m.subject().contains("approval is needed")).count(), 1);
}

#[tokio::test]
async fn reminders_once_per_interval_and_escalation_to_phase_owner_then_manager() {
    let smtp = SmtpServer::start(0).await;
    let (app, w) = setup(&smtp).await;
    let admin = crate::webhooks::admin_token(&app).await;
    app.api_send(reqwest::Method::PATCH, &admin, "/api/v1/settings", &json!({"reminder_interval_minutes": 60})).await;
    app.api_post(&admin, "/api/v1/groups", &json!({"name": "ops", "members": ["dele@acme.example.com"]})).await;
    let yaml = "name: Waits\nphases:\n  - key: p\n    name: P\n    owner: group:ops\n    activities:\n      - {key: ok, name: Go, kind: approval, approvers: \"user:qa1@acme.example.com\"}\n      - {key: task, name: Task, kind: manual, owner: \"user:qa2@acme.example.com\", escalate_after: 1h}\n";
    let _id = start(&app, &w, yaml, json!({})).await;
    app.run_until_idle().await;
    let count = |kind: &'static str, to: &'static str| {
        let smtp = &smtp;
        move || smtp.to(to).iter().filter(|m| m.subject().contains(kind)).count()
    };
    let reminders = count("Reminder", "qa1@acme.example.com");
    let to_phase_owner = count("Escalation", "dele@acme.example.com");
    let to_manager = count("Escalation", "rm@acme.example.com");
    app.clock.advance(TimeDelta::minutes(59));
    app.run_until_idle().await;
    assert_eq!((reminders(), to_phase_owner()), (0, 0));
    app.clock.advance(TimeDelta::minutes(1));
    app.run_until_idle().await;
    app.run_until_idle().await;
    assert_eq!(reminders(), 1, "one reminder after one interval");
    assert_eq!((to_phase_owner(), to_manager()), (1, 0), "escalated to the phase owner first");
    app.clock.advance(TimeDelta::minutes(30));
    app.run_until_idle().await;
    assert_eq!(reminders(), 1, "not before the next interval");
    app.clock.advance(TimeDelta::minutes(30));
    app.run_until_idle().await;
    assert_eq!(reminders(), 2);
    assert_eq!(to_manager(), 1, "then the release manager");
    app.clock.advance(TimeDelta::hours(5));
    app.run_until_idle().await;
    assert_eq!(reminders(), 3, "one reminder, however far the clock jumped");
    assert_eq!(to_manager(), 1);
}

#[tokio::test]
async fn a_shared_status_link_shows_the_tree_without_secrets_until_revoked() {
    let smtp = SmtpServer::start(0).await;
    let (app, w) = setup(&smtp).await;
    let id = start(&app, &w, APPROVAL, json!({"inputs": {"token": "top-secret-value"}})).await;
    app.run_until_idle().await;
    let rm = logged_in(&app, "rm").await;
    let res = rm.post_form(&format!("/releases/{id}/status-link"), &[]).await;
    assert_eq!(res.status(), 303);
    let page = rm.get_html(&format!("/releases/{id}")).await;
    let start_at = page.find("/status/").unwrap();
    let path: String = page[start_at..].chars().take_while(|c| !c.is_whitespace() && *c != '<' && *c != '"').collect();
    let anonymous = app.new_client();
    let res = anonymous.get(&path).await;
    assert_eq!(res.status(), 200);
    let html = res.text().await.unwrap();
    assert!(html.contains("Go/no-go") && html.contains("OnHold") && !html.contains("top-secret-value"), "{html}");
    rm.post_form(&format!("/releases/{id}/status-link/revoke"), &[]).await;
    assert_eq!(anonymous.get(&path).await.status(), 404);
}

#[tokio::test]
async fn hostile_text_is_escaped_in_mail_and_pages() {
    let smtp = SmtpServer::start(0).await;
    let (app, w) = setup(&smtp).await;
    let (_, p) = body(app.api_post(&w.rm_token, "/api/v1/processes", &json!({"definition": APPROVAL})).await).await;
    let name = "Ledger <script>alert(1)</script>\nBcc: evil@example.com";
    let (status, r) =
        body(app.api_post(&w.rm_token, "/api/v1/releases", &json!({"process_id": p["id"], "name": name, "activate": true})).await).await;
    assert_eq!(status, 422, "a release name is one line: {r}");
    let name = "Ledger <script>alert(1)</script> 2.0";
    let (status, r) =
        body(app.api_post(&w.rm_token, "/api/v1/releases", &json!({"process_id": p["id"], "name": name, "activate": true})).await).await;
    assert_eq!(status, 201);
    let id = r["id"].as_i64().unwrap();
    app.run_until_idle().await;
    let qa2 = logged_in(&app, "qa2").await;
    let link = smtp.to("qa2@acme.example.com").iter().find_map(|m| m.signoff_path()).unwrap();
    qa2.post_form(&link, &[("decision", "reject"), ("comment", "line one\r\nline <b>two</b>"), ("confirm", "yes")]).await;
    let mail = smtp.to("qa1@acme.example.com").into_iter().find(|m| m.subject().contains("approval is needed")).unwrap();
    assert!(!mail.data.contains("<script>alert(1)</script> 2.0\"</h1>") && mail.data.contains("&lt;script&gt;"), "HTML part escaped");
    assert!(mail.data.lines().filter(|l| l.starts_with("Subject:")).all(|l| !l.contains('\r')));
    let page = qa2.get_html(&format!("/releases/{id}")).await;
    assert!(
        page.contains("Ledger &#60;script&#62;alert(1)&#60;/script&#62; 2.0") && !page.contains("<script>alert(1)"),
        "{}",
        &page[page.find("Ledger").unwrap_or(0)..][..120]
    );
    assert!(!page.contains("<b>two</b>"), "the comment is shown escaped");
}

#[tokio::test]
async fn the_account_chat_webhook_hears_about_releases() {
    let smtp = SmtpServer::start(0).await;
    let (app, w) = setup(&smtp).await;
    let rx = crate::webhooks::Receiver::start().await;
    let admin = crate::webhooks::admin_token(&app).await;
    let res =
        app.api_send(reqwest::Method::PATCH, &admin, "/api/v1/settings", &json!({"chat_webhook_url": format!("{}/chat", rx.base)})).await;
    assert_eq!(res.status(), 200);
    let id = start(&app, &w, APPROVAL, json!({})).await;
    app.run_until_idle().await;
    let posts = rx.to("/chat");
    assert!(posts.iter().any(|p| p.body["text"].as_str().unwrap().contains("has started")), "{posts:?}");
    assert!(posts.iter().any(|p| p.body["text"].as_str().unwrap().contains(&format!("/releases/{id}"))));
}
