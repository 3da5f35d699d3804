//! The authorization matrix: every route of the route table (pages and API) tried by every
//! persona, each answer asserted. A route added without an entry here fails the test.
//!
//! Personas (letters in the table): `A` anonymous, `S` the admin of another account, `V` an
//! account-wide viewer, `P` an approver (a viewer of the org, named on the approval), `O` the
//! org release manager of the release's org, `X` the org release manager of another org, `R` an
//! account release manager, `D` the account admin. The objects in the paths belong to org
//! `payments` of account `acme`.
//!
//! Each entry names who is let through; everyone else must be refused: anonymous callers are sent
//! to log in (303 to `/login`, or 401 from the API), signed-in callers get 403 or 404. "Let
//! through" means any answer that is not a refusal: a page, a redirect after a change, or a
//! 400/409/422 about the input or the state. `*` marks routes whose credential is a token in the
//! path (or that are public): every answer there is asserted to be no refusal to log in and no
//! server error. No route may ever answer 5xx.

use std::collections::HashMap;

use crate::common::{body, csrf_from, Client, TestApp, PASSWORD};
use serde_json::{json, Value};

const PERSONAS: [char; 8] = ['A', 'S', 'V', 'P', 'O', 'X', 'R', 'D'];
const EVERYONE_SIGNED_IN: &str = "SVPOXRD";
const SEES_THE_RELEASE: &str = "VPORD";
const MANAGES_THE_RELEASE: &str = "OD";

/// Who is let through, by route.
pub fn expected(method: &str, path: &str) -> Option<&'static str> {
    let p = path.strip_prefix("/api/v1").unwrap_or(path);
    Some(match (method, p) {
        // Public, or the token in the path is the credential.
        (_, "/healthz" | "/metrics" | "/static/{path:.*}" | "/login" | "/calendar.ics") => "*",
        (_, "/callbacks/{token}" | "/status/{token}" | "/openapi.json") => "*",
        // Single sign-on's start and return (not configured here: not found for everyone).
        (_, "/login/sso" | "/login/sso/callback") => "*",
        // A sign-off link asks to log in first, then the token decides (an unknown one gets a page saying so).
        (_, "/signoff/{token}") => EVERYONE_SIGNED_IN,
        // Anyone signed in, about themselves or their own account.
        ("get", "/me" | "/settings" | "/" | "/profile" | "/work" | "/notifications" | "/calendar" | "/deployments") => EVERYONE_SIGNED_IN,
        ("post", "/me/calendar-feed" | "/profile/calendar-feed" | "/profile" | "/profile/password" | "/logout") => EVERYONE_SIGNED_IN,
        ("post", "/notifications/read" | "/profile/delegations" | "/profile/mutes" | "/profile/tokens") => EVERYONE_SIGNED_IN,
        ("get", "/me/tokens") => EVERYONE_SIGNED_IN,
        // A token never makes a token (DESIGN §10): refused for everyone.
        ("post", "/me/tokens") => "",
        // Somebody else's token or delegation (the admin's) is not found for anyone else.
        ("delete", "/me/tokens/{id}") | ("post", "/profile/tokens/{id}/revoke" | "/profile/delegations/{id}/delete") => "D",
        // Lists show what the caller may see.
        ("get", "/orgs" | "/environments" | "/services" | "/groups" | "/processes" | "/releases") => EVERYONE_SIGNED_IN,
        ("get", "/reports/deployed" | "/reports/history" | "/reports/releases" | "/insights" | "/release-groups") => EVERYONE_SIGNED_IN,
        ("get", "/audit") => "SOXRD",
        // The account's catalog and settings: read by its members, changed by its admins.
        ("get", "/orgs/{slug}" | "/environments/{name}" | "/services/{name}" | "/groups/{name}") => "VPOXRD",
        ("post", "/orgs" | "/environments" | "/services" | "/groups") => "SD",
        ("patch" | "delete", "/orgs/{slug}" | "/environments/{name}" | "/services/{name}" | "/groups/{name}") => "D",
        ("patch", "/settings") => "SD",
        ("get" | "post", "/admin/users" | "/admin/groups" | "/admin/orgs" | "/admin/environments" | "/admin/services") => "SD",
        ("get" | "post", "/admin/settings") | ("get", "/admin") => "SD",
        ("post", "/admin/settings/sso" | "/admin/settings/sso/mappings") => "SD",
        ("post", "/admin/settings/sso/mappings/{id}/delete") => "D",
        ("get", "/admin/users/{id}" | "/admin/groups/{id}" | "/admin/orgs/{id}" | "/admin/environments/{id}" | "/admin/services/{id}") => {
            "D"
        }
        ("post", "/admin/users/{id}/disable" | "/admin/users/{id}/enable" | "/admin/users/{id}/password" | "/admin/users/{id}/roles") => {
            "D"
        }
        (
            "post",
            "/admin/users/{id}/roles/{binding}/delete" | "/admin/groups/{id}/members" | "/admin/groups/{id}/members/{user}/delete",
        ) => "D",
        ("post", "/admin/groups/{id}/delete" | "/admin/orgs/{id}" | "/admin/orgs/{id}/delete" | "/admin/environments/{id}") => "D",
        ("post", "/admin/environments/{id}/move" | "/admin/environments/{id}/delete" | "/admin/services/{id}") => "D",
        ("post", "/admin/services/{id}/delete") => "D",
        ("get", "/admin/freezes") => "SOXRD",
        ("post", "/admin/freezes") => "SRD",
        ("get", "/freezes") => EVERYONE_SIGNED_IN,
        ("get", "/locks") => EVERYONE_SIGNED_IN,
        ("post", "/freezes") => "SORD",
        ("delete", "/freezes/{id}") => "RD",
        ("post", "/admin/freezes/{id}/delete") => "RD",
        ("post", "/audit/verify") => "SRD",
        // Processes of org payments.
        ("post", "/processes" | "/processes/import") => MANAGES_THE_RELEASE,
        ("get", "/processes/{id}" | "/processes/{id}/export" | "/processes/{id}/input-sets") => SEES_THE_RELEASE,
        ("get", "/processes/{id}/versions/{version}" | "/processes/{id}/diff") => SEES_THE_RELEASE,
        ("get", "/processes/{id}/input-sets/{set}") => SEES_THE_RELEASE,
        ("put", "/processes/{id}") | ("post" | "put" | "delete", "/processes/{id}/input-sets" | "/processes/{id}/input-sets/{name}") => {
            MANAGES_THE_RELEASE
        }
        ("get" | "post", "/processes/{id}/yaml" | "/processes/{id}/phases/{phase}" | "/processes/{id}/phases/{phase}/activities") => {
            MANAGES_THE_RELEASE
        }
        ("get" | "post", "/processes/{id}/phases/{phase}/activities/{activity}") => MANAGES_THE_RELEASE,
        (
            "post",
            "/processes/{id}/save" | "/processes/{id}/discard" | "/processes/{id}/phases" | "/processes/{id}/phases/{phase}/delete",
        ) => MANAGES_THE_RELEASE,
        ("post", "/processes/{id}/phases/{phase}/activities/{activity}/delete" | "/processes/{id}/input-sets/{set}") => MANAGES_THE_RELEASE,
        ("post", "/processes/{id}/input-sets/{set}/delete") => MANAGES_THE_RELEASE,
        ("post", "/processes/{id}/duplicate" | "/processes/{id}/archive" | "/processes/{id}/unarchive" | "/processes/{id}/delete") => {
            MANAGES_THE_RELEASE
        }
        // Releases of org payments.
        ("get", "/releases/new") => "SOXRD",
        ("post", "/releases" | "/release-groups") => MANAGES_THE_RELEASE,
        ("post", "/release-groups/{id}/pause" | "/release-groups/{id}/resume" | "/release-groups/{id}/skip") => MANAGES_THE_RELEASE,
        ("get", "/release-groups/{id}" | "/release-groups/{id}/preview") => SEES_THE_RELEASE,
        ("post" | "patch" | "delete", "/release-groups/{id}") | ("post", "/release-groups/{id}/delete") => MANAGES_THE_RELEASE,
        ("get", "/releases/{id}" | "/calendar/entries/{id}") => SEES_THE_RELEASE,
        // The release's own trail is part of its page.
        ("get", "/releases/{id}/audit" | "/releases/{id}/board") => SEES_THE_RELEASE,
        ("post", "/releases/{id}/override-freeze") => "RD",
        // Retrying a release the engine set aside is a failure decision.
        ("post", "/releases/{id}/retry") => MANAGES_THE_RELEASE,
        ("post", "/releases/{id}/activities/{phase}/{activity}/{action}") => "P",
        ("post", "/releases/{id}/activities/{phase}/{activity}/comment") => SEES_THE_RELEASE,
        ("get", "/releases/{id}/instances/{phase}/{activity}") => SEES_THE_RELEASE,
        ("post", "/releases/{id}/activities/{phase}/{activity}/reassign") => MANAGES_THE_RELEASE,
        ("patch" | "delete", "/releases/{id}") | ("get" | "post", "/releases/{id}/edit") => MANAGES_THE_RELEASE,
        ("post", "/releases/{id}/activate" | "/releases/{id}/run-now" | "/releases/{id}/abort" | "/releases/{id}/restart") => {
            MANAGES_THE_RELEASE
        }
        ("post", "/releases/{id}/rebase" | "/releases/{id}/rollback" | "/releases/{id}/delete") => MANAGES_THE_RELEASE,
        ("post", "/releases/{id}/status-link" | "/releases/{id}/status-link/revoke") => MANAGES_THE_RELEASE,
        _ => return None,
    })
}

/// The ids and names of the objects the paths name.
pub struct World {
    ids: HashMap<&'static str, String>,
}

impl World {
    fn id(&self, key: &str) -> &str {
        self.ids.get(key).unwrap_or_else(|| panic!("no {key} in the world"))
    }

    /// The path with its parameters filled: destructive routes get objects of their own.
    pub fn fill(&self, method: &str, path: &str) -> String {
        let p = path.strip_prefix("/api/v1").unwrap_or(path);
        let api = path.starts_with("/api/v1");
        let release = match (method, p) {
            ("delete", _) | (_, "/releases/{id}/delete") => "release_to_delete",
            ("patch", _) | (_, "/releases/{id}/edit") => "draft",
            (_, "/releases/{id}/activate" | "/releases/{id}/run-now" | "/releases/{id}/rebase") => "draft_to_start",
            _ => "live",
        };
        let deleting = method == "delete" || p.ends_with("/delete");
        let (org, env, service, group) = if deleting {
            if api {
                ("spare_org_api", "spare_env_api", "spare_service_api", "spare_group_api")
            } else {
                ("spare_org", "spare_env", "spare_service", "spare_group")
            }
        } else {
            ("org", "env", "service", "group")
        };
        let mut out = p.to_string();
        let sub = |out: &mut String, from: &str, to: &str| *out = out.replace(from, to);
        if p.starts_with("/static/") {
            sub(&mut out, "{path:.*}", "css/app.css");
        }
        if p.starts_with("/orgs/") {
            sub(&mut out, "{slug}", self.id(&format!("{org}_slug")));
        }
        if p.starts_with("/environments/") {
            sub(&mut out, "{name}", self.id(&format!("{env}_name")));
        }
        if p.starts_with("/services/") {
            sub(&mut out, "{name}", self.id(&format!("{service}_name")));
        }
        if p.starts_with("/groups/") {
            sub(&mut out, "{name}", self.id(&format!("{group}_name")));
        }
        if p.starts_with("/admin/orgs/") {
            sub(&mut out, "{id}", self.id(org));
        }
        if p.starts_with("/admin/environments/") {
            sub(&mut out, "{id}", self.id(env));
        }
        if p.starts_with("/admin/services/") {
            sub(&mut out, "{id}", self.id(service));
        }
        if p.starts_with("/admin/groups/") {
            let g = if p.contains("/members/") { "spare_group_members" } else { group };
            sub(&mut out, "{id}", self.id(g));
            sub(&mut out, "{user}", self.id("spare_user"));
        }
        if p.starts_with("/admin/users/") {
            sub(&mut out, "{id}", self.id("spare_user"));
            sub(&mut out, "{binding}", self.id("spare_binding"));
        }
        if p.starts_with("/admin/settings/sso/mappings/") {
            sub(&mut out, "{id}", self.id("spare_mapping"));
        }
        if p.starts_with("/admin/freezes/") {
            sub(&mut out, "{id}", self.id("spare_freeze"));
        }
        if p.starts_with("/freezes/") {
            sub(&mut out, "{id}", self.id("spare_freeze_api"));
        }
        if p.starts_with("/me/tokens/") || p.starts_with("/profile/tokens/") {
            sub(&mut out, "{id}", self.id(if api { "admin_token_api" } else { "admin_token_page" }));
        }
        if p.starts_with("/profile/delegations/") {
            sub(&mut out, "{id}", self.id("admin_delegation"));
        }
        if p.starts_with("/release-groups/") {
            let group = match (deleting, api) {
                (false, _) => "release_group",
                (true, true) => "spare_release_group_api",
                (true, false) => "spare_release_group",
            };
            sub(&mut out, "{id}", self.id(group));
        }
        if p.starts_with("/processes/") {
            let process = if p.contains("/phases") {
                "editor_process"
            } else if p == "/processes/{id}/delete" {
                "spare_process"
            } else if p == "/processes/{id}/archive" {
                "archive_process"
            } else {
                "process"
            };
            sub(&mut out, "{id}", self.id(process));
            sub(&mut out, "{version}", "1");
            sub(&mut out, "{phase}", if p.starts_with("/processes/{id}/phases/{phase}/delete") { "gone" } else { "p" });
            sub(&mut out, "{activity}", if p.ends_with("/delete") { "spare" } else { "work" });
            let set = if !deleting {
                "staging"
            } else if api {
                "spare-api"
            } else {
                "spare-page"
            };
            sub(&mut out, "{name}", set);
            sub(&mut out, "{set}", self.id(set));
        }
        if p.starts_with("/calendar/entries/") {
            sub(&mut out, "{id}", self.id("live"));
        }
        if p.starts_with("/releases/") {
            sub(&mut out, "{id}", self.id(release));
            sub(&mut out, "{phase}", "p");
            sub(&mut out, "{activity}", "ok");
            sub(&mut out, "{action}", "approve");
        }
        for token in ["/callbacks/{token}", "/status/{token}", "/signoff/{token}"] {
            if p == token {
                sub(&mut out, "{token}", "not-a-real-token-0123456789abcdef");
            }
        }
        assert!(!out.contains('{'), "{method} {path}: a parameter is not filled: {out}");
        if api {
            format!("/api/v1{out}")
        } else {
            out
        }
    }

    /// A body that parses, so that the answer is about who asks and not about the input.
    pub fn body(&self, method: &str, path: &str) -> Value {
        let p = path.strip_prefix("/api/v1").unwrap_or(path);
        match (method, p) {
            ("post", "/orgs") | ("post", "/admin/orgs") => json!({"slug": "neworg", "name": "New org"}),
            ("post", "/environments") | ("post", "/admin/environments") => json!({"name": "NEWENV", "production": false}),
            ("post", "/services") | ("post", "/admin/services") => json!({"name": "newsvc"}),
            ("post", "/groups") | ("post", "/admin/groups") => json!({"name": "newgroup", "members": []}),
            ("patch", "/orgs/{slug}") => json!({"name": "Payments"}),
            ("patch", "/environments/{name}") => json!({"name": "PROD1"}),
            ("patch", "/services/{name}") => json!({"name": "ledger"}),
            ("patch", "/groups/{name}") => json!({"name": "approvers"}),
            ("patch", "/settings") => json!({}),
            ("post", "/processes") => json!({"org": "payments", "definition": PROCESS.replace("Pay run", "Another")}),
            ("put", "/processes/{id}") => json!({"definition": PROCESS}),
            ("post", "/processes/{id}/input-sets") => json!({"name": "newset", "values": {}}),
            ("put", "/processes/{id}/input-sets/{name}") => json!({"name": "staging", "values": {}}),
            ("post", "/releases") => {
                json!({"process_id": self.id("process").parse::<i64>().unwrap(), "org": "payments", "name": "Matrix release"})
            }
            ("patch", "/releases/{id}") => json!({"name": "Renamed draft"}),
            ("post", p) if p.starts_with("/releases/{id}/") => json!({"reason": "matrix"}),
            ("post", "/me/tokens") => json!({"name": "matrix"}),
            ("post", "/releases/{id}/retry") => json!({"reason": "matrix"}),
            ("post", "/signoff/{token}") => json!({"decision": "approve"}),
            ("post", "/callbacks/{token}") => json!({"status": "success", "outputs": {}}),
            ("post", "/login") => json!({"email": "nobody@acme.example.com", "password": "wrong-password"}),
            ("post", "/profile") => json!({"name": "Same Name", "time_zone": ""}),
            ("post", "/profile/password") => json!({"current_password": "wrong", "new_password": "x", "confirm_password": "y"}),
            ("post", "/profile/delegations") => json!({"delegate": "nobody@acme.example.com", "starts_at": "", "ends_at": ""}),
            ("post", "/profile/tokens") => json!({"name": "matrix"}),
            ("post", "/admin/users") => json!({"email": "new@acme.example.com", "name": "New", "password": PASSWORD, "role": "viewer"}),
            ("post", "/admin/users/{id}/password") => json!({"password": "another-long-password"}),
            ("post", "/admin/users/{id}/roles") => json!({"role": "viewer", "org": "shipping"}),
            ("post", "/admin/groups/{id}/members") => json!({"email": "viewer@acme.example.com"}),
            ("post", "/admin/orgs/{id}") | ("post", "/admin/services/{id}") => json!({"name": "renamed"}),
            ("post", "/admin/environments/{id}") => json!({"name": "PROD1", "production": "on"}),
            ("post", "/admin/environments/{id}/move") => json!({"direction": "up"}),
            ("post", "/admin/freezes") => {
                json!({"reason": "matrix", "environments": "PROD1", "starts_at": "2027-01-01T00:00", "ends_at": "2027-01-02T00:00"})
            }
            ("post", "/freezes") => {
                json!({"reason": "matrix", "environments": ["PROD1"], "org": "payments", "start": "2027-01-01T00:00", "end": "2027-01-02T00:00"})
            }
            ("post", "/release-groups") if path.starts_with("/api/v1") => {
                json!({"name": "Matrix group", "process_id": self.id("process").parse::<i64>().unwrap()})
            }
            ("post", "/release-groups") => json!({"name": "Matrix group", "process_id": self.id("process")}),
            ("patch", "/release-groups/{id}") => json!({"horizon_days": 15}),
            ("post", "/release-groups/{id}/skip") if path.starts_with("/api/v1") => json!({"date": "2026-12-08"}),
            ("post", "/release-groups/{id}") => json!({"name": "Weekly", "process_id": self.id("process"), "horizon_days": "x"}),
            ("post", "/releases/{id}/edit") => json!({"name": "Renamed draft"}),
            ("post", "/processes/import") => json!({"org": "payments", "yaml": PROCESS.replace("Pay run", "Imported")}),
            ("post", "/processes/{id}/yaml") => json!({"yaml": PROCESS}),
            ("post", "/processes/{id}/phases") => json!({"key": "q", "name": "Q"}),
            ("post", "/processes/{id}/phases/{phase}") => json!({"name": "P"}),
            ("post", "/processes/{id}/phases/{phase}/activities") => json!({"key": "more", "name": "More", "kind": "manual"}),
            ("post", "/processes/{id}/input-sets/{set}") => json!({"name": "staging"}),
            _ => json!({}),
        }
    }
}

const PROCESS: &str = "name: Pay run
phases:
  - key: p
    name: P
    activities:
      - {key: work, name: Work, kind: manual, owner: \"user:orgrm@acme.example.com\"}
      - {key: ok, name: Go, kind: approval, approvers: \"user:approver@acme.example.com\", required_approvals: 1}
      - {key: spare, name: Spare, kind: manual}
  - key: gone
    name: Gone
    activities:
      - {key: x, name: X, kind: manual}
";

pub struct Persona {
    pub letter: char,
    pub email: Option<String>,
    pub client: Client,
    pub csrf: String,
    pub token: Option<String>,
}

pub async fn sign_in(app: &TestApp, letter: char, email: Option<String>, token: Option<String>) -> Persona {
    let client = app.new_client();
    if let Some(email) = &email {
        assert_eq!(client.login(email, PASSWORD).await.status(), 303, "{letter} logs in");
    }
    let csrf = csrf_from(&client.get_html("/login").await).unwrap_or_default();
    let csrf = if email.is_some() { client.csrf("/profile").await } else { csrf };
    Persona { letter, email, client, csrf, token }
}

async fn created_id(res: reqwest::Response) -> String {
    let (status, v) = body(res).await;
    assert_eq!(status, 201, "{v}");
    v["id"].as_i64().map(|i| i.to_string()).unwrap_or_default()
}

pub async fn world(app: &TestApp) -> (World, Vec<Persona>) {
    let (account, admin, _) = app.admin_session("acme").await;
    let admin_token = app.api_token(&admin).await;
    let mut ids: HashMap<&'static str, String> = HashMap::new();
    let post = |path: &str, body: Value| {
        let (path, body, token) = (path.to_string(), body, admin_token.clone());
        async move { app.api_post(&token, &path, &body).await }
    };
    let (status, settings) =
        body(app.api_send(reqwest::Method::PATCH, &admin_token, "/api/v1/settings", &json!({"release_level": "organization"})).await).await;
    assert_eq!(status, 200, "{settings}");
    for (key, slug) in [("org", "payments"), ("other_org", "shipping"), ("spare_org", "spare-org"), ("spare_org_api", "spare-org-api")] {
        ids.insert(key, created_id(post("/api/v1/orgs", json!({"slug": slug, "name": slug})).await).await);
        ids.insert(Box::leak(format!("{key}_slug").into_boxed_str()), slug.to_string());
    }
    for (key, name) in [("env", "PROD1"), ("spare_env", "SPARE1"), ("spare_env_api", "SPARE2")] {
        ids.insert(key, created_id(post("/api/v1/environments", json!({"name": name, "production": true})).await).await);
        ids.insert(Box::leak(format!("{key}_name").into_boxed_str()), name.to_string());
    }
    for (key, name) in [("service", "ledger"), ("spare_service", "spare-svc"), ("spare_service_api", "spare-svc-api")] {
        ids.insert(key, created_id(post("/api/v1/services", json!({"name": name})).await).await);
        ids.insert(Box::leak(format!("{key}_name").into_boxed_str()), name.to_string());
    }
    let users = [
        ('V', "viewer", "viewer", ""),
        ('P', "approver", "viewer", "payments"),
        ('O', "orgrm", "org_release_manager", "payments"),
        ('X', "otherrm", "org_release_manager", "shipping"),
        ('R', "accrm", "account_release_manager", ""),
    ];
    let mut personas = Vec::new();
    for (letter, name, role, org) in users {
        let user = app.create_user(account, &format!("{name}@acme.example.com"), role, org).await;
        let token = app.api_token(&user).await;
        personas.push((letter, Some(user.email.clone()), Some(token)));
    }
    personas.push(('D', Some(admin.email.clone()), Some(admin_token.clone())));
    let stranger_account = app.create_account("evil").await;
    let stranger = app.create_user(stranger_account, "admin@evil.example.com", "account_admin", "").await;
    personas.push(('S', Some(stranger.email.clone()), Some(app.api_token(&stranger).await)));
    personas.push(('A', None, None));

    let spare = app.create_user(account, "spare@acme.example.com", "viewer", "").await;
    ids.insert("spare_user", spare.id.to_string());
    {
        let mut conn = app.conn().await;
        let bindings = railyard::db::models::users::bindings_of_account(&mut conn, account).await.expect("bindings");
        ids.insert("spare_binding", bindings.iter().find(|b| b.user_id == spare.id).expect("spare binding").id.to_string());
    }
    for (key, name, members) in [
        ("group", "approvers", vec!["approver@acme.example.com"]),
        ("spare_group", "spare-group", vec![]),
        ("spare_group_api", "spare-group-api", vec![]),
        ("spare_group_members", "spare-members", vec!["spare@acme.example.com"]),
    ] {
        ids.insert(key, created_id(post("/api/v1/groups", json!({"name": name, "members": members})).await).await);
        ids.insert(Box::leak(format!("{key}_name").into_boxed_str()), name.to_string());
    }

    let process = created_id(post("/api/v1/processes", json!({"org": "payments", "definition": PROCESS})).await).await;
    let editor_process =
        created_id(post("/api/v1/processes", json!({"org": "payments", "definition": PROCESS.replace("Pay run", "Editor")})).await).await;
    for set in ["staging", "spare-api", "spare-page"] {
        let id = created_id(post(&format!("/api/v1/processes/{process}/input-sets"), json!({"name": set, "values": {}})).await).await;
        ids.insert(set, id);
    }
    let release = |name: &str, activate: bool| {
        post(
            "/api/v1/releases",
            json!({"process_id": process.parse::<i64>().unwrap(), "org": "payments", "name": name, "activate": activate}),
        )
    };
    ids.insert("live", created_id(release("Live", true).await).await);
    ids.insert("draft", created_id(release("Draft", false).await).await);
    ids.insert("draft_to_start", created_id(release("To start", false).await).await);
    ids.insert("release_to_delete", created_id(release("To delete", false).await).await);
    ids.insert("process", process.clone());
    ids.insert("editor_process", editor_process);
    for (key, name) in [("spare_process", "Spare run"), ("archive_process", "Archived run")] {
        let body = json!({"org": "payments", "definition": PROCESS.replace("Pay run", name)});
        ids.insert(key, created_id(post("/api/v1/processes", body).await).await);
    }
    app.run_until_idle().await;

    let admin_actor = railyard::ops::Actor::user(admin.id, account, &admin.email);
    let mut conn = app.conn().await;
    let now = app.clock_now();
    let freeze = railyard::ops::freezes::FreezeInput {
        reason: "spare".into(),
        environments: "PROD1".into(),
        time_zone: "UTC".into(),
        starts_at: "2027-03-01T00:00".into(),
        ends_at: "2027-03-02T00:00".into(),
        ..Default::default()
    };
    ids.insert("spare_freeze", railyard::ops::freezes::create(&mut conn, &admin_actor, &freeze, now).await.expect("freeze").id.to_string());
    ids.insert(
        "spare_freeze_api",
        railyard::ops::freezes::create(&mut conn, &admin_actor, &freeze, now).await.expect("freeze").id.to_string(),
    );
    railyard::ops::sso::add_mapping(&mut conn, &admin_actor, ("matrix-group", "viewer", ""), now).await.expect("mapping");
    let spare_mapping = railyard::db::models::sso::mapping(&mut conn, account).await.expect("mapping")[0].id;
    ids.insert("spare_mapping", spare_mapping.to_string());
    let group = railyard::ops::release_groups::ReleaseGroupInput {
        name: "Weekly".into(),
        process_id: process.clone(),
        rrule: "FREQ=WEEKLY;BYDAY=TU".into(),
        dtstart: "2026-12-01T10:00".into(),
        time_zone: "UTC".into(),
        duration: "1d".into(),
        name_template: "Weekly {date}".into(),
        horizon_days: "14".into(),
        ..Default::default()
    };
    for (key, name) in [("release_group", "Weekly"), ("spare_release_group", "Spare page"), ("spare_release_group_api", "Spare api")] {
        let group = railyard::ops::release_groups::ReleaseGroupInput { name: name.into(), ..group.clone() };
        let group = railyard::ops::release_groups::create(&mut conn, &admin_actor, &group, now).await.expect("release group");
        ids.insert(key, group.id.to_string());
    }
    let token = |name: &'static str| railyard::ops::tokens::TokenInput { name: name.into(), expires_at: None };
    for (key, name) in [("admin_token_api", "spare-api"), ("admin_token_page", "spare-page")] {
        let made = railyard::ops::tokens::create_own(&mut conn, &admin_actor, "UTC", &token(name), now).await.expect("token");
        ids.insert(key, made.row.id.to_string());
    }
    let delegation = railyard::ops::profile::DelegationInput {
        delegate: "viewer@acme.example.com".into(),
        starts_at: "2027-01-01T00:00".into(),
        ends_at: "2027-01-02T00:00".into(),
    };
    railyard::ops::profile::add_delegation(&mut conn, &admin_actor, &delegation, chrono_tz::UTC, now).await.expect("delegation");
    let (delegations, _) = railyard::ops::profile::delegations_and_mutes(&mut conn, admin.id).await.expect("delegations");
    ids.insert("admin_delegation", delegations[0].id.to_string());

    let mut signed_in = Vec::new();
    for (letter, email, token) in personas {
        signed_in.push(sign_in(app, letter, email, token).await);
    }
    (World { ids }, signed_in)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Answer {
    /// Sent to log in: 303 to `/login`, or 401.
    LogIn,
    /// 403 or 404.
    Refused,
    /// Anything else below 500.
    LetThrough,
    ServerError,
}

fn classify(status: u16, location: &str) -> Answer {
    match status {
        500.. => Answer::ServerError,
        401 => Answer::LogIn,
        300..=399 if location.starts_with("/login") => Answer::LogIn,
        403 | 404 => Answer::Refused,
        _ => Answer::LetThrough,
    }
}

pub async fn send(app: &TestApp, persona: &Persona, method: &str, path: &str, body: &Value) -> reqwest::Response {
    let url = format!("{}{path}", app.address);
    let http = &persona.client.http;
    let method = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).expect("method");
    if path.starts_with("/api/v1") {
        let mut req = http.request(method.clone(), &url);
        if let Some(token) = &persona.token {
            req = req.bearer_auth(token);
        }
        if method != reqwest::Method::GET {
            req = req.json(body);
        }
        return req.send().await.expect("API request");
    }
    if method == reqwest::Method::GET {
        return http.get(&url).send().await.expect("GET");
    }
    let mut form: Vec<(String, String)> = vec![("csrf_token".into(), persona.csrf.clone())];
    for (k, v) in body.as_object().into_iter().flatten() {
        form.push((k.clone(), v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string())));
    }
    http.post(&url).form(&form).send().await.expect("POST")
}

#[tokio::test]
async fn every_route_times_every_persona() {
    let app = TestApp::spawn().await;
    let (world, mut personas) = world(&app).await;
    let routes: Vec<_> = railyard::web::all_routes().collect();
    let mut failures = Vec::new();
    let mut asserted = 0;
    for route in &routes {
        let Some(who) = expected(route.method, route.path) else {
            failures.push(format!("{} {}: no entry in the matrix", route.method.to_uppercase(), route.path));
            continue;
        };
        let path = world.fill(route.method, route.path);
        let body = world.body(route.method, route.path);
        // Refused personas first: a change made by one let through must not hide a refusal.
        let mut order: Vec<usize> = (0..personas.len()).collect();
        order.sort_by_key(|i| who.contains(personas[*i].letter));
        let mut done = false;
        for i in order {
            let persona = &personas[i];
            let res = send(&app, persona, route.method, &path, &body).await;
            let status = res.status().as_u16();
            let location = res.headers().get("location").and_then(|l| l.to_str().ok()).unwrap_or("").to_string();
            let text = res.text().await.unwrap_or_default();
            let answer = classify(status, &location);
            let let_through = who == "*" || who.contains(persona.letter);
            let ok = match answer {
                Answer::ServerError => false,
                _ if who == "*" => answer != Answer::LogIn || route.path == "/calendar.ics",
                Answer::LetThrough if let_through => true,
                // After one persona deleted the object, the next finds nothing.
                Answer::Refused if let_through => done && status == 404,
                Answer::Refused => persona.letter != 'A' || !route.path.starts_with("/api/") && route.method != "get",
                // The other account's admin naming this account's objects in a body is told they
                // do not exist there.
                Answer::LetThrough => persona.letter == 'S' && matches!(status, 400 | 422) && text.contains("there is no"),
                Answer::LogIn => persona.letter == 'A' || route.path == "/logout",
            };
            if !ok {
                let excerpt: String = text.chars().take(160).collect();
                failures.push(format!(
                    "{} {} as {}: {status} ({}) {excerpt}",
                    route.method.to_uppercase(),
                    path,
                    persona.letter,
                    if let_through { "expected let through" } else { "expected refused" }
                ));
            } else if answer == Answer::LetThrough && let_through && status < 300 || status == 303 {
                done = true;
            }
            asserted += 1;
        }
        // Logging out ends the session: log in again.
        if route.path == "/logout" {
            for p in personas.iter_mut() {
                *p = sign_in(&app, p.letter, p.email.clone(), p.token.clone()).await;
            }
        }
    }
    println!("authorization matrix: {} routes × {} personas = {asserted} answers asserted", routes.len(), PERSONAS.len());
    assert!(failures.is_empty(), "{} wrong answers:\n{}", failures.len(), failures.join("\n"));
    assert_eq!(asserted, routes.len() * PERSONAS.len());
}
