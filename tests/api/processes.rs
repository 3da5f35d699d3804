use crate::common::body;
use crate::common::{TestApp, PASSWORD};
use reqwest::Method;
use serde_json::{json, Value};

const WEEKLY: &str = include_str!("../fixtures/weekly-production-release.yaml");
const TRAIN: &str = include_str!("../fixtures/system-release-train.yaml");
const HOTFIX: &str = include_str!("../fixtures/hotfix.yaml");

/// An account with the catalog the fixtures name, and an admin's API token.
async fn setup(app: &TestApp) -> (i64, String, crate::common::Client) {
    let (account, admin, browser) = app.admin_session("acme").await;
    let token = app.api_token(&admin).await;
    for env in ["QA", "PROD0", "PROD1", "PROD2", "PROD3"] {
        app.api_post(&token, "/api/v1/environments", &json!({"name": env})).await;
    }
    for service in ["api", "web"] {
        app.api_post(&token, "/api/v1/services", &json!({"name": service})).await;
    }
    (account, token, browser)
}

fn parse(yaml: &str) -> railyard::domain::process::Definition {
    railyard::domain::process::definition::parse_yaml(yaml).unwrap().normalized()
}

#[tokio::test]
async fn the_weekly_release_imports_renders_and_exports_equal() {
    let app = TestApp::spawn().await;
    let (_, token, browser) = setup(&app).await;

    let (status, created) = body(app.api_post(&token, "/api/v1/processes", &json!({"definition": WEEKLY})).await).await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_i64().unwrap();
    assert_eq!(created["version"], 1);
    assert_eq!(created["name"], "Weekly Production Release");
    assert!(created["warnings"].as_array().unwrap().iter().any(|w| w.as_str().unwrap().contains("group \"development\"")), "{created}");

    let export = app.api_get(&token, &format!("/api/v1/processes/{id}/export")).await;
    assert_eq!(export.status(), 200);
    assert!(export.headers()["content-type"].to_str().unwrap().starts_with("application/yaml"));
    let yaml = export.text().await.unwrap();
    assert_eq!(parse(&yaml), parse(WEEKLY), "export → import gives an equal definition");
    // The exported text imports again (as JSON too) and stays equal.
    let (status, again) = body(
        app.api_post(&token, "/api/v1/processes", &json!({"definition": yaml.replace("Weekly Production Release", "Weekly Copy")})).await,
    )
    .await;
    assert_eq!(status, 201);
    let (_, via_json) = body(app.api_get(&token, &format!("/api/v1/processes/{}", again["id"])).await).await;
    let mut expected = parse(WEEKLY);
    expected.name = "Weekly Copy".into();
    assert_eq!(railyard::domain::process::definition::parse_value(via_json["definition"].clone()).unwrap().normalized(), expected);

    let html = browser.get_html(&format!("/processes/{id}")).await;
    for expected in [
        "Weekly Production Release",
        "Compile and package",
        "QA approval",
        "after: build",
        "after: qa_signoff",
        "Rollback (runs only when the release fails)",
        "Stage 3",
    ] {
        assert!(html.contains(expected), "editor shows {expected:?}");
    }

    // Through the browser: the import form.
    let res = browser
        .post_form("/processes/import", &[("org", ""), ("yaml", &WEEKLY.replace("Weekly Production Release", "Weekly From Browser"))])
        .await;
    assert_eq!(res.status(), 303);
    let location = res.headers()["location"].to_str().unwrap().to_string();
    let html = browser.get_html(&location).await;
    assert!(html.contains("Weekly From Browser") && html.contains("after: build"));
    let exported = browser.get(&format!("{location}/export")).await.text().await.unwrap();
    let mut expected = parse(WEEKLY);
    expected.name = "Weekly From Browser".into();
    assert_eq!(parse(&exported), expected);
}

#[tokio::test]
async fn every_rule_is_refused_naming_the_item() {
    let app = TestApp::spawn().await;
    let (_, token, browser) = setup(&app).await;
    let phase = |key: &str, deps: &str, extra: &str| {
        format!("- {{key: {key}, name: {key}, depends_on: [{deps}]{extra}, activities: [{{key: a, name: A, kind: manual}}]}}\n")
    };
    let cases: Vec<(String, &str, &str, &str)> = vec![
        (format!("name: x\nphases:\n{}{}", phase("build", "test", ""), phase("test", "build", "")), "cycle", "phases.build.depends_on", "build → test → build"),
        (
            "name: x\nphases:\n- {key: p, name: P, activities: [{key: a, name: A, kind: manual, depends_on: [b]}, {key: b, name: B, kind: manual, depends_on: [a]}]}\n".into(),
            "cycle",
            "phases.p.activities.a.depends_on",
            "a → b → a",
        ),
        (format!("name: x\nphases:\n{}", phase("p", "ghost", "")), "unknown_dependency", "phases.p.depends_on", "ghost"),
        (format!("name: x\nphases:\n{}{}", phase("p", "", ""), phase("p", "", "")), "duplicate_key", "phases.p.key", "used twice"),
        (
            "name: x\nvariables: [{name: v, value: \"${inputs.nope}\"}]\nphases: [{key: p, name: P, activities: [{key: a, name: A, kind: manual}]}]\n".into(),
            "unknown_reference",
            "variables.v",
            "inputs.nope",
        ),
        (
            "name: x\nvariables: [{name: a, value: \"${vars.b}\"}, {name: b, value: \"${vars.a}\"}]\nphases: [{key: p, name: P, activities: [{key: a, name: A, kind: manual}]}]\n".into(),
            "variable_cycle",
            "variables.a",
            "a → b → a",
        ),
        (format!("name: x\nphases:\n{}", phase("p", "", ", not_before: \"+4d 9am\"")), "invalid_offset", "phases.p.not_before", "+4d 9am"),
        (
            "name: x\nphases: [{key: p, name: P, activities: [{key: a, name: A, kind: approval, approvers: group:qa, threshold: all, required_approvals: 2}]}]\n".into(),
            "threshold_conflict",
            "phases.p.activities.a.threshold",
            "not both",
        ),
    ];
    for (yaml, code, field, mentions) in &cases {
        let (status, e) = body(app.api_post(&token, "/api/v1/processes", &json!({"definition": yaml})).await).await;
        assert_eq!(status, 422, "{yaml}");
        assert_eq!(e["error"]["code"], *code, "{e}");
        assert_eq!(e["error"]["field"], *field, "{e}");
        assert!(e["error"]["message"].as_str().unwrap().contains(mentions), "{e}");
    }
    let (_, list) = body(app.api_get(&token, "/api/v1/processes").await).await;
    assert_eq!(list["processes"], json!([]), "nothing was saved");

    // The same rules as form errors in the editor, with the input kept.
    let res = browser.post_form("/processes", &[("name", "Editor Rules"), ("org", "")]).await;
    let editor = res.headers()["location"].to_str().unwrap().to_string();
    let res = browser
        .post_form(
            &format!("{editor}/phases"),
            &[("key", "deploy"), ("name", "Deploy"), ("depends_on", "ghost"), ("not_before", "+4d 9am")],
        )
        .await;
    assert_eq!(res.status(), 422);
    let html = res.text().await.unwrap();
    assert!(html.contains("depends on &#34;ghost&#34;, which does not exist"), "{html}");
    assert!(html.contains("is not an offset"));
    assert!(html.contains(r#"value="ghost""#) && html.contains(r#"value="Deploy""#), "input kept");
    assert_eq!(browser.post_form(&format!("{editor}/phases"), &[("key", "build"), ("name", "Build")]).await.status(), 303);
    assert_eq!(
        browser.post_form(&format!("{editor}/phases"), &[("key", "test"), ("name", "Test"), ("depends_on", "build")]).await.status(),
        303
    );
    let res = browser.post_form(&format!("{editor}/phases/build"), &[("name", "Build"), ("depends_on", "test")]).await;
    assert_eq!(res.status(), 422);
    let html = res.text().await.unwrap();
    assert!(html.contains("build → test → build") && html.contains(r#"value="test""#), "{html}");
    let res = browser
        .post_form(
            &format!("{editor}/phases/build/activities"),
            &[
                ("key", "ok"),
                ("name", "Sign"),
                ("kind", "approval"),
                ("approvers", "group:qa"),
                ("threshold", "all"),
                ("required_approvals", "2"),
            ],
        )
        .await;
    assert_eq!(res.status(), 422);
    assert!(res.text().await.unwrap().contains("not both"));
    // Saving an incomplete working copy names what is missing and keeps it.
    let res = browser.post_form(&format!("{editor}/save"), &[]).await;
    assert_eq!(res.status(), 422);
    assert!(res.text().await.unwrap().contains("a phase needs at least one activity"));
    assert!(browser.get_html(&editor).await.contains("your working copy (not saved yet)"));

    // Variables are edited as YAML; their errors show when saving, and the working copy is kept.
    let yaml = "name: Editor Rules\nvariables: [{name: a, value: \"${vars.b}\"}, {name: b, value: \"${vars.a}\"}, {name: c, value: \"${inputs.nope}\"}]\nphases: [{key: p, name: P, activities: [{key: a, name: A, kind: manual}]}]\n";
    assert_eq!(browser.post_form(&format!("{editor}/yaml"), &[("yaml", yaml)]).await.status(), 303);
    let res = browser.post_form(&format!("{editor}/save"), &[]).await;
    assert_eq!(res.status(), 422);
    let html = res.text().await.unwrap();
    assert!(html.contains("variables refer to each other in a cycle: a → b → a"), "{html}");
    assert!(html.contains("there is no input &#34;nope&#34;"));
    let res = browser.post_form(&format!("{editor}/yaml"), &[("yaml", "name: [broken")]).await;
    assert_eq!(res.status(), 422);
    let html = res.text().await.unwrap();
    assert!(html.contains("line 1") && html.contains("name: [broken"), "the YAML error names the line and keeps the text");
}

#[tokio::test]
async fn editing_creates_a_new_version_and_the_old_one_stays() {
    let app = TestApp::spawn().await;
    let (_, token, browser) = setup(&app).await;
    let (_, created) = body(app.api_post(&token, "/api/v1/processes", &json!({"definition": WEEKLY})).await).await;
    let id = created["id"].as_i64().unwrap();
    let (_, v1_before) = body(app.api_get(&token, &format!("/api/v1/processes/{id}?version=1")).await).await;

    let mut def = created["definition"].clone();
    def["phases"][0]["activities"][0]["name"] = json!("Compile, test and package");
    def["phases"].as_array_mut().unwrap().retain(|p| p["key"] != "rollback");
    let (status, v2) = body(app.api_send(Method::PUT, &token, &format!("/api/v1/processes/{id}"), &json!({"definition": def})).await).await;
    assert_eq!(status, 200, "{v2}");
    assert_eq!(v2["version"], 2);

    let (_, v1_after) = body(app.api_get(&token, &format!("/api/v1/processes/{id}?version=1")).await).await;
    for field in ["definition", "created_at", "created_by", "version", "name"] {
        assert_eq!(v1_before[field], v1_after[field], "version 1 is unchanged: {field}");
    }
    assert_eq!(v1_after["definition"]["phases"][0]["activities"][0]["name"], "Compile and package");
    let (_, latest) = body(app.api_get(&token, &format!("/api/v1/processes/{id}")).await).await;
    assert_eq!((latest["version"].as_i64(), latest["latest_version"].as_i64()), (Some(2), Some(2)));

    let diff = browser.get_html(&format!("/processes/{id}/diff?from=1&to=2")).await;
    assert!(diff.contains("activity build.compile") && diff.contains("changed"), "{diff}");
    assert!(diff.contains("phase rollback") && diff.contains("removed"));

    // The editor: a working copy edit, then Save makes version 3.
    let res = browser
        .post_form(
            &format!("/processes/{id}/phases/rollout/activities"),
            &[("key", "verify"), ("name", "Verify"), ("kind", "manual"), ("depends_on", "deploy")],
        )
        .await;
    assert_eq!(res.status(), 303);
    let (_, still_v2) = body(app.api_get(&token, &format!("/api/v1/processes/{id}")).await).await;
    assert_eq!(still_v2["version"], 2, "the working copy is not a version");
    assert_eq!(browser.post_form(&format!("/processes/{id}/save"), &[]).await.status(), 303);
    let diff = browser.get_html(&format!("/processes/{id}/diff?from=2&to=3")).await;
    assert!(diff.contains("activity rollout.verify") && diff.contains("added"));

    // The database itself refuses to change a stored version.
    let mut conn = app.conn().await;
    use diesel_async::RunQueryDsl;
    let update = diesel::sql_query("UPDATE process_versions SET definition = '{}' WHERE version = 1").execute(&mut conn).await;
    assert!(update.is_err());

    // Every change is on the audit trail with its version.
    let events = app.api_get(&token, "/api/v1/me").await.status();
    assert_eq!(events, 200);
    use diesel::prelude::*;
    use railyard::db::schema::audit_events::dsl as a;
    let versions: Vec<Value> =
        a::audit_events.filter(a::action.eq("process.version")).order(a::seq).select(a::details).load(&mut conn).await.unwrap();
    let numbers: Vec<i64> = versions.iter().map(|d| d["version"].as_i64().unwrap()).collect();
    assert_eq!(numbers, [2, 3]);
}

#[tokio::test]
async fn who_may_create_edit_and_read_processes() {
    let app = TestApp::spawn().await;
    let (account, admin_token, _) = setup(&app).await;
    app.create_org(account, "payments").await;
    app.create_org(account, "identity").await;
    let orm = app.create_user(account, "orm@acme.example.com", "org_release_manager", "payments").await;
    let viewer = app.create_user(account, "vera@acme.example.com", "viewer", "").await;
    let orm_token = app.api_token(&orm).await;
    let viewer_token = app.api_token(&viewer).await;
    let def = |name: &str| json!({"definition": HOTFIX.replace("Hotfix Process", name)});

    let (_, account_level) = body(app.api_post(&admin_token, "/api/v1/processes", &def("Account Hotfix")).await).await;
    let account_id = account_level["id"].as_i64().unwrap();
    let mut with_org = def("Identity Hotfix");
    with_org["org"] = json!("identity");
    let (_, identity) = body(app.api_post(&admin_token, "/api/v1/processes", &with_org).await).await;

    assert_eq!(app.api_post(&orm_token, "/api/v1/processes", &def("Mine At Account Level")).await.status(), 403);
    let mut other_org = def("Not My Org");
    other_org["org"] = json!("identity");
    assert_eq!(app.api_post(&orm_token, "/api/v1/processes", &other_org).await.status(), 403);
    let mut own = def("Payments Hotfix");
    own["org"] = json!("payments");
    let (status, created) = body(app.api_post(&orm_token, "/api/v1/processes", &own).await).await;
    assert_eq!(status, 201);
    assert_eq!(created["org"], "payments");

    let edit = |id: i64| json!({"definition": HOTFIX.replace("Hotfix Process", &format!("Edited {id}"))});
    assert_eq!(app.api_send(Method::PUT, &orm_token, &format!("/api/v1/processes/{account_id}"), &edit(account_id)).await.status(), 403);
    assert_eq!(app.api_send(Method::PUT, &orm_token, &format!("/api/v1/processes/{}", identity["id"]), &edit(1)).await.status(), 403);
    assert_eq!(app.api_get(&orm_token, &format!("/api/v1/processes/{account_id}")).await.status(), 200, "org RMs read account processes");
    assert_eq!(app.api_get(&orm_token, &format!("/api/v1/processes/{}", identity["id"])).await.status(), 403);

    assert_eq!(app.api_get(&viewer_token, &format!("/api/v1/processes/{account_id}")).await.status(), 200);
    assert_eq!(app.api_send(Method::PUT, &viewer_token, &format!("/api/v1/processes/{account_id}"), &edit(account_id)).await.status(), 403);
    assert_eq!(app.api_post(&viewer_token, "/api/v1/processes", &def("Viewer Made")).await.status(), 403);

    // In the browser: the viewer sees the process but no editing controls, and posts are refused.
    let browser = app.new_client();
    assert_eq!(browser.login(&viewer.email, PASSWORD).await.status(), 303);
    let html = browser.get_html(&format!("/processes/{account_id}")).await;
    assert!(html.contains("Account Hotfix") && !html.contains("Add phase") && !html.contains("save-process"));
    assert_eq!(browser.post_form(&format!("/processes/{account_id}/phases"), &[("key", "x"), ("name", "X")]).await.status(), 403);
    assert_eq!(browser.post_form("/processes", &[("name", "Nope"), ("org", "")]).await.status(), 403);
    let orm_browser = app.new_client();
    assert_eq!(orm_browser.login(&orm.email, PASSWORD).await.status(), 303);
    assert_eq!(orm_browser.post_form(&format!("/processes/{account_id}/save"), &[]).await.status(), 403);
}

#[tokio::test]
async fn input_sets_check_types_and_keep_secrets_secret() {
    let app = TestApp::spawn().await;
    let (_, token, browser) = setup(&app).await;
    let yaml = "name: Deploy\ninputs:\n  - {name: count, type: number}\n  - {name: environment, type: environment, required: true}\n  - {name: ci_token, type: string, secret: true}\nphases: [{key: p, name: P, activities: [{key: a, name: A, kind: manual}]}]\n";
    let (_, created) = body(app.api_post(&token, "/api/v1/processes", &json!({"definition": yaml})).await).await;
    let id = created["id"].as_i64().unwrap();
    let url = format!("/api/v1/processes/{id}/input-sets");

    let (status, e) = body(app.api_post(&token, &url, &json!({"name": "EU prod", "values": {"count": "abc"}})).await).await;
    assert_eq!((status, e["error"]["field"].as_str()), (422, Some("inputs.count")), "{e}");
    let (status, e) = body(app.api_post(&token, &url, &json!({"name": "EU prod", "values": {"environment": "PROD9"}})).await).await;
    assert_eq!((status, e["error"]["field"].as_str()), (422, Some("inputs.environment")));
    assert!(e["error"]["message"].as_str().unwrap().contains("PROD9"));

    let (status, set) = body(
        app.api_post(
            &token,
            &url,
            &json!({"name": "EU prod", "values": {"count": "3", "environment": "PROD1", "ci_token": "s3cr3t-token-value"}}),
        )
        .await,
    )
    .await;
    assert_eq!(status, 201, "{set}");
    assert_eq!(set["values"], json!({"count": 3, "environment": "PROD1", "ci_token": "********"}));
    let (_, listed) = body(app.api_get(&token, &url).await).await;
    assert!(!listed.to_string().contains("s3cr3t"));
    let export = app.api_get(&token, &format!("/api/v1/processes/{id}/export")).await.text().await.unwrap();
    assert!(!export.contains("s3cr3t"));
    let page = browser.get_html(&format!("/processes/{id}/input-sets")).await;
    assert!(page.contains("EU prod") && !page.contains("s3cr3t"));

    let mut conn = app.conn().await;
    #[derive(diesel::QueryableByName)]
    struct Stored {
        #[diesel(sql_type = diesel::sql_types::Text)]
        v: String,
    }
    use diesel_async::RunQueryDsl;
    let stored: Stored = diesel::sql_query("SELECT input_values::text AS v FROM input_sets").get_result(&mut conn).await.unwrap();
    assert!(stored.v.contains("$secret") && !stored.v.contains("s3cr3t"), "{}", stored.v);
    let audit: Stored =
        diesel::sql_query("SELECT string_agg(details::text, ' ') AS v FROM audit_events").get_result(&mut conn).await.unwrap();
    assert!(!audit.v.contains("s3cr3t"));

    // Updating without retyping the secret keeps it; the browser form names a bad value and keeps input.
    let (status, _) = body(
        app.api_send(
            Method::PUT,
            &token,
            &format!("{url}/EU%20prod"),
            &json!({"name": "EU prod", "values": {"count": 4, "environment": "QA", "ci_token": "********"}}),
        )
        .await,
    )
    .await;
    assert_eq!(status, 200);
    let after: Stored = diesel::sql_query("SELECT input_values::text AS v FROM input_sets").get_result(&mut conn).await.unwrap();
    assert!(after.v.contains("$secret"));
    let res =
        browser.post_form(&format!("/processes/{id}/input-sets"), &[("name", "US"), ("in.count", "abc"), ("in.environment", "QA")]).await;
    assert_eq!(res.status(), 422);
    let html = res.text().await.unwrap();
    assert!(html.contains("count: &#34;abc&#34; is not a number") && html.contains(r#"value="abc""#), "{html}");

    // A secret input with a default is refused.
    let bad = "name: Bad\ninputs: [{name: token, type: string, secret: true, default: abc}]\nphases: [{key: p, name: P, activities: [{key: a, name: A, kind: manual}]}]\n";
    let (status, e) = body(app.api_post(&token, "/api/v1/processes", &json!({"definition": bad})).await).await;
    assert_eq!((status, e["error"]["code"].as_str(), e["error"]["field"].as_str()), (422, Some("secret_default"), Some("inputs.token")));
}

#[tokio::test]
async fn both_fixtures_import_unchanged_and_export_equal() {
    let app = TestApp::spawn().await;
    let (_, token, browser) = setup(&app).await;
    for (yaml, shows) in [(TRAIN, "Deploy to Prod 3"), (HOTFIX, "On-call lead approval")] {
        let (status, created) = body(app.api_post(&token, "/api/v1/processes", &json!({"definition": yaml})).await).await;
        assert_eq!(status, 201, "{created}");
        let id = created["id"].as_i64().unwrap();
        let html = browser.get_html(&format!("/processes/{id}")).await;
        assert!(html.contains(shows));
        let export = app.api_get(&token, &format!("/api/v1/processes/{id}/export")).await.text().await.unwrap();
        assert_eq!(parse(&export), parse(yaml));
    }
}

#[tokio::test]
async fn malformed_definitions_name_the_line_or_field_and_save_nothing() {
    let app = TestApp::spawn().await;
    let (_, token, browser) = setup(&app).await;
    let (status, e) =
        body(app.api_post(&token, "/api/v1/processes", &json!({"definition": "name: x\nphases:\n  - key: [unclosed\n"})).await).await;
    assert_eq!(status, 400);
    assert!(e["error"]["message"].as_str().unwrap().starts_with("line "), "{e}");
    let (status, e) = body(app.api_post(&token, "/api/v1/processes", &json!({"definition": {"name": "x", "phases": "none"}})).await).await;
    assert_eq!((status, e["error"]["field"].as_str()), (400, Some("phases")), "{e}");
    let (status, e) = body(app.api_post(&token, "/api/v1/processes", &json!({"definition": {"name": "x", "phases": [{"key": "p", "name": "P", "activities": [{"key": "a", "name": "A", "kind": "teleport"}]}]}})).await).await;
    assert_eq!(status, 400);
    assert_eq!(e["error"]["field"], "phases[0].activities[0].kind", "{e}");
    let (status, e) = body(app.api_post(&token, "/api/v1/processes", &json!({"org": "nope", "definition": WEEKLY})).await).await;
    assert_eq!((status, e["error"]["field"].as_str()), (400, Some("org")));
    let huge = format!("name: x\ndescription: \"{}\"\nphases: []\n", "a".repeat(2 * 1024 * 1024));
    let (status, e) = body(app.api_post(&token, "/api/v1/processes", &json!({"definition": huge})).await).await;
    assert_eq!((status, e["error"]["code"].as_str()), (413, Some("payload_too_large")));
    let (_, list) = body(app.api_get(&token, "/api/v1/processes").await).await;
    assert_eq!(list["processes"], json!([]), "nothing half-saved");

    let res = browser.post_form("/processes/import", &[("org", ""), ("yaml", "name: x\nphases: [\n")]).await;
    assert_eq!(res.status(), 422);
    let html = res.text().await.unwrap();
    assert!(html.contains("line ") && html.contains("phases: ["), "the error names the line and the text is kept");
}

#[tokio::test]
async fn a_process_is_duplicated_archived_from_new_releases_and_deleted_only_when_unused() {
    let app = TestApp::spawn().await;
    let (_, token, admin) = setup(&app).await;
    let yaml = "name: Nightly\nphases: [{key: p, name: P, activities: [{key: a, name: A, kind: manual}]}]\n";
    let (_, p) = body(app.api_post(&token, "/api/v1/processes", &json!({"definition": yaml})).await).await;
    let pid = p["id"].as_i64().unwrap();
    let (status, draft) = body(app.api_post(&token, "/api/v1/releases", &json!({"process_id": pid, "name": "Nightly 1"})).await).await;
    assert_eq!(status, 201, "{draft}");
    let draft_id = draft["id"].as_i64().unwrap();

    // Duplicate: the same definition under a new name.
    let res = admin.post_form(&format!("/processes/{pid}/duplicate"), &[("name", "Nightly EU")]).await;
    assert_eq!(res.status(), 303);
    let copy_path = res.headers()["location"].to_str().unwrap().to_string();
    let copy_id: i64 = copy_path.trim_start_matches("/processes/").parse().unwrap();
    let (_, copy) = body(app.api_get(&token, &format!("/api/v1/processes/{copy_id}")).await).await;
    assert_eq!(copy["name"], "Nightly EU");
    assert_eq!(copy["definition"]["phases"], p["definition"]["phases"]);

    // Archive: no new release from it, and the new-release form does not offer it; its draft goes on.
    assert_eq!(admin.post_form(&format!("/processes/{pid}/archive"), &[]).await.status(), 303);
    let (status, e) = body(app.api_post(&token, "/api/v1/releases", &json!({"process_id": pid, "name": "Nightly 2"})).await).await;
    assert_eq!((status, e["error"]["field"].as_str()), (422, Some("process_id")), "{e}");
    assert!(e["error"]["message"].as_str().unwrap().contains("archived"), "{e}");
    assert!(!admin.get_html("/releases/new").await.contains(">Nightly</option>"), "not offered for new releases");
    let (status, r) =
        body(app.api_send(Method::PATCH, &token, &format!("/api/v1/releases/{draft_id}"), &json!({"name": "Nightly 1b"})).await).await;
    assert_eq!(status, 200, "its draft is still edited: {r}");
    assert!(admin.get_html("/processes").await.contains("archived"));

    // Delete: refused, naming the release that uses it; the unused copy goes.
    assert_eq!(admin.post_form(&format!("/processes/{pid}/delete"), &[]).await.status(), 303);
    let page = admin.get_html(&format!("/processes/{pid}")).await;
    assert!(page.contains(&format!("#{draft_id} Nightly 1b")), "the refusal names the release");
    assert_eq!(admin.post_form(&format!("/processes/{copy_id}/delete"), &[]).await.status(), 303);
    assert_eq!(app.api_get(&token, &format!("/api/v1/processes/{copy_id}")).await.status(), 404);
    let (_, trail) = body(app.api_get(&token, "/api/v1/audit?action=process.delete").await).await;
    assert_eq!(trail["events"][0]["details"]["name"], "Nightly EU", "{trail}");
    assert_eq!(admin.post_form(&format!("/processes/{pid}/unarchive"), &[]).await.status(), 303);
    let (status, _) = body(app.api_post(&token, "/api/v1/releases", &json!({"process_id": pid, "name": "Nightly 2"})).await).await;
    assert_eq!(status, 201, "restored");
}
