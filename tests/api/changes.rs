//! Changes made by people are audited (removals included) and written whole: a failure between
//! two writes of one change leaves nothing behind.

use crate::common::{TestApp, PASSWORD};
use crate::engine::{start, world};
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use railyard::db::schema::audit_events::dsl as a;
use serde_json::json;

const APPROVAL: &str = "name: Sign-off
phases:
  - key: p
    name: Approve
    activities:
      - {key: ok, name: Go/no-go, kind: approval, approvers: \"group:qa\"}
";

async fn logged_in(app: &TestApp, user: &str) -> crate::common::Client {
    let c = app.new_client();
    assert_eq!(c.login(&format!("{user}@acme.example.com"), PASSWORD).await.status(), 303);
    c
}

async fn actions(app: &TestApp, action: &str) -> Vec<(String, String)> {
    let mut conn = app.conn().await;
    a::audit_events.filter(a::action.eq(action)).select((a::actor, a::subject)).load(&mut conn).await.expect("audit events")
}

const DELEGATION: [(&str, &str); 3] =
    [("delegate", "dele@acme.example.com"), ("starts_at", "2026-11-28T08:00"), ("ends_at", "2026-12-05T08:00")];

#[tokio::test]
async fn removing_a_delegation_is_audited() {
    let app = TestApp::spawn().await;
    world(&app, &["qa1", "dele"], &[]).await;
    let qa1 = logged_in(&app, "qa1").await;
    assert_eq!(qa1.post_form("/profile/delegations", &DELEGATION).await.status(), 303);
    let page = qa1.get_html("/profile").await;
    let at = page.find("/profile/delegations/").expect("a delete button");
    let path: String = page[at..].chars().take_while(|c| *c != '"').collect();
    assert!(path.ends_with("/delete"), "{path}");
    assert_eq!(qa1.post_form(&path, &[]).await.status(), 303);
    assert!(!qa1.get_html("/profile").await.contains("/profile/delegations/"), "the delegation is gone");
    let removed = actions(&app, "delegation.delete").await;
    assert_eq!(removed, vec![("user:qa1@acme.example.com".to_string(), "user:dele@acme.example.com".to_string())]);
    // Someone else's delegation is not theirs to remove.
    assert_eq!(qa1.post_form(&path, &[]).await.status(), 404);
}

#[tokio::test]
async fn revoking_a_status_link_is_audited() {
    let app = TestApp::spawn().await;
    let w = world(&app, &["qa1"], &[("qa", &["qa1"])]).await;
    let id = start(&app, &w, APPROVAL, json!({})).await;
    let rm = logged_in(&app, "rm").await;
    assert_eq!(rm.post_form(&format!("/releases/{id}/status-link"), &[]).await.status(), 303);
    assert_eq!(rm.post_form(&format!("/releases/{id}/status-link/revoke"), &[]).await.status(), 303);
    let revoked = actions(&app, "release.status_link_revoke").await;
    assert_eq!(revoked.len(), 1, "{revoked:?}");
    assert_eq!(revoked[0].0, "user:rm@acme.example.com");
    let mut conn = app.conn().await;
    let release: Option<i64> =
        a::audit_events.filter(a::action.eq("release.status_link_revoke")).select(a::release_id).first(&mut conn).await.unwrap();
    assert_eq!(release, Some(id), "on the release's own trail");
}

#[tokio::test]
async fn a_failure_between_the_two_writes_of_a_delegation_leaves_nothing_half_written() {
    let app = TestApp::spawn().await;
    world(&app, &["qa1", "dele"], &[]).await;
    let mut conn = app.conn().await;
    // The second write of the pair (the audit event) fails.
    diesel::sql_query(
        "CREATE FUNCTION refuse_delegation_audit() RETURNS trigger LANGUAGE plpgsql AS $$ \
         BEGIN IF NEW.action = 'delegation.create' THEN RAISE EXCEPTION 'injected failure'; END IF; RETURN NEW; END $$",
    )
    .execute(&mut conn)
    .await
    .unwrap();
    diesel::sql_query(
        "CREATE TRIGGER refuse_delegation_audit BEFORE INSERT ON audit_events FOR EACH ROW EXECUTE FUNCTION refuse_delegation_audit()",
    )
    .execute(&mut conn)
    .await
    .unwrap();
    let qa1 = logged_in(&app, "qa1").await;
    assert_eq!(qa1.post_form("/profile/delegations", &DELEGATION).await.status(), 500);
    use railyard::db::schema::delegations::dsl as d;
    let left: i64 = d::delegations.count().get_result(&mut conn).await.unwrap();
    assert_eq!(left, 0, "the delegation was rolled back with its audit event");
    assert!(actions(&app, "delegation.create").await.is_empty());
    // Without the failure the same change is written whole.
    diesel::sql_query("DROP TRIGGER refuse_delegation_audit ON audit_events").execute(&mut conn).await.unwrap();
    assert_eq!(qa1.post_form("/profile/delegations", &DELEGATION).await.status(), 303);
    let written: i64 = d::delegations.count().get_result(&mut conn).await.unwrap();
    assert_eq!((written, actions(&app, "delegation.create").await.len()), (1, 1));
}
