//! `TestApp`: its own database (cloned from a migrated template), its own port, a settable
//! clock, no background worker, and cookie-keeping clients with helpers per route.
#![allow(dead_code)]

use chrono::{TimeZone, Utc};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use railyard::clock::ManualClock;
use railyard::config::Settings;
use railyard::db::models::users::User;
use railyard::ops::users::NewUserInput;
use railyard::ops::Actor;
use railyard::startup::Application;
use sha2::{Digest, Sha256};
use std::sync::Arc;
use tokio::sync::OnceCell;

pub mod oidc;
pub mod smtp;

pub const PASSWORD: &str = "correct-horse-battery";

/// The server's PostgreSQL without a database name (scripts/test makes it reachable as root).
pub fn server_url() -> String {
    std::env::var("RAILYARD_TEST_DATABASE_SERVER").unwrap_or_else(|_| "postgres://root@%2Fvar%2Frun%2Fpostgresql".to_string())
}

pub fn database_url(name: &str) -> String {
    format!("{}/{name}", server_url())
}

async fn admin_connection() -> AsyncPgConnection {
    AsyncPgConnection::establish(&database_url("postgres"))
        .await
        .unwrap_or_else(|e| panic!("cannot reach PostgreSQL at {}: {e} (run scripts/test, which starts it)", server_url()))
}

/// Named by a hash of the migrations, so a changed schema gets a fresh template.
fn template_name() -> String {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
    let mut entries: Vec<_> = walk(&dir);
    entries.sort();
    let mut hasher = Sha256::new();
    for path in entries {
        hasher.update(path.to_string_lossy().as_bytes());
        hasher.update(std::fs::read(&path).unwrap_or_default());
    }
    format!("railyard_tpl_{}", &hex::encode(hasher.finalize())[..16])
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    if let Ok(read) = std::fs::read_dir(dir) {
        for entry in read.flatten() {
            let p = entry.path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}

static TEMPLATE: OnceCell<String> = OnceCell::const_new();

async fn template() -> &'static str {
    TEMPLATE
        .get_or_init(|| async {
            let name = template_name();
            let mut admin = admin_connection().await;
            // Several test binaries may start at once: one builds the template, the others wait.
            diesel::sql_query("SELECT pg_advisory_lock(727274)").execute(&mut admin).await.expect("lock");
            let exists: i64 = diesel::sql_query(format!("SELECT 1 AS n FROM pg_database WHERE datname = '{name}'"))
                .load::<Count>(&mut admin)
                .await
                .expect("pg_database")
                .len() as i64;
            if exists == 0 {
                let building = format!("{name}_build");
                diesel::sql_query(format!("DROP DATABASE IF EXISTS {building} WITH (FORCE)")).execute(&mut admin).await.expect("drop");
                diesel::sql_query(format!("CREATE DATABASE {building}")).execute(&mut admin).await.expect("create template");
                railyard::db::run_migrations(&database_url(&building)).await.expect("migrate template");
                diesel::sql_query(format!("ALTER DATABASE {building} RENAME TO {name}")).execute(&mut admin).await.expect("rename");
            }
            diesel::sql_query("SELECT pg_advisory_unlock(727274)").execute(&mut admin).await.expect("unlock");
            name
        })
        .await
}

#[derive(diesel::QueryableByName)]
struct Count {
    #[diesel(sql_type = diesel::sql_types::Integer)]
    #[allow(dead_code)]
    n: i32,
}

pub async fn create_database() -> String {
    let template = template().await;
    let name = format!("railyard_test_{}", railyard::security::random_token(9).to_lowercase().replace(['-', '_'], "x"));
    let mut admin = admin_connection().await;
    let mut attempts = 0;
    loop {
        match diesel::sql_query(format!("CREATE DATABASE {name} TEMPLATE {template}")).execute(&mut admin).await {
            Ok(_) => break,
            Err(e) if attempts < 20 => {
                attempts += 1;
                eprintln!("retrying database clone: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
            Err(e) => panic!("cloning the template database: {e}"),
        }
    }
    name
}

pub fn drop_database(name: String) {
    // Drop runs outside async code: use a short-lived runtime on another thread.
    let _ = std::thread::spawn(move || {
        if let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() {
            rt.block_on(async {
                if let Ok(mut admin) = AsyncPgConnection::establish(&database_url("postgres")).await {
                    let _ = diesel::sql_query(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).execute(&mut admin).await;
                }
            });
        }
    })
    .join();
}

pub struct TestApp {
    pub address: String,
    pub port: u16,
    pub db_name: String,
    pub database_url: String,
    pub clock: Arc<ManualClock>,
    pub client: Client,
    pub state: actix_web::web::Data<railyard::web::AppState>,
    handles: Vec<actix_web::dev::ServerHandle>,
}

pub fn test_settings(database_url: &str) -> Settings {
    test_settings_with(database_url, None)
}

pub fn test_settings_with(database_url: &str, smtp_url: Option<String>) -> Settings {
    let url = database_url.to_string();
    Settings::from_lookup(move |k| match k {
        "DATABASE_URL" => Some(url.clone()),
        "SMTP_URL" => smtp_url.clone(),
        "RAILYARD_BIND" => Some("127.0.0.1:0".into()),
        "RAILYARD_POOL_SIZE" => Some("4".into()),
        "RAILYARD_HTTP_WORKERS" => Some("1".into()),
        // As an operator would open a CI inside the company network: the tests' receivers
        // listen on 127.0.0.1 (`spawn_without_private_allow` tests the default).
        "RAILYARD_WEBHOOK_PRIVATE_ALLOW" => Some("127.0.0.1".into()),
        "RAILYARD_STATEMENT_HEADER" => Some("1".into()),
        _ => None,
    })
    .expect("test settings")
}

impl TestApp {
    pub async fn spawn() -> TestApp {
        Self::spawn_with_smtp(None).await
    }

    /// A TestApp whose e-mail goes to `smtp_url`.
    pub async fn spawn_with_smtp(smtp_url: Option<String>) -> TestApp {
        Self::spawn_with(|s| s.smtp_url = smtp_url).await
    }

    /// A TestApp with no private address opened to webhooks (the default of a fresh install).
    pub async fn spawn_without_private_allow() -> TestApp {
        Self::spawn_with(|s| s.webhook_private_allow = String::new()).await
    }

    /// A TestApp whose settings `adjust` changes first.
    pub async fn spawn_with(adjust: impl FnOnce(&mut Settings)) -> TestApp {
        let db_name = create_database().await;
        let database_url = database_url(&db_name);
        let clock = Arc::new(ManualClock::new(Utc.with_ymd_and_hms(2026, 11, 28, 9, 0, 0).unwrap()));
        let mut settings = test_settings_with(&database_url, None);
        adjust(&mut settings);
        let app = Application::build(settings, clock.clone()).await.expect("build application");
        let port = app.port();
        let handle = app.handle();
        let state = app.state.clone();
        tokio::spawn(app.run_until_stopped());
        let address = format!("http://127.0.0.1:{port}");
        TestApp { client: Client::new(&address), address, port, db_name, database_url, clock, state, handles: vec![handle] }
    }

    /// A second server on the same database (as behind a load balancer); returns its address.
    pub async fn spawn_second_server(&mut self) -> String {
        let app = Application::build(test_settings(&self.database_url), self.clock.clone()).await.expect("second server");
        let address = format!("http://127.0.0.1:{}", app.port());
        self.handles.push(app.handle());
        tokio::spawn(app.run_until_stopped());
        address
    }

    /// One pass of the background sweeps (auto-activation, retention), as the worker would run it.
    pub async fn run_sweeps(&self) -> (usize, usize) {
        railyard::worker::run_sweeps(&self.state).await.expect("sweeps")
    }

    /// Runs the worker (sweeps and engine) until nothing more moves.
    pub async fn run_until_idle(&self) {
        for _ in 0..100 {
            if railyard::worker::tick_all(&self.state, "test-worker").await.expect("worker tick") == 0 {
                return;
            }
        }
        panic!("the worker did not become idle");
    }

    /// Puts a release into a state and status (until the engine can drive it there), through the
    /// same use case that records history.
    pub async fn force_release(&self, id: i64, state: &str, status: &str, finished_at: Option<chrono::DateTime<Utc>>) {
        use railyard::db::models::releases::{Outcome, Release};
        use railyard::domain::release::{State, Status};
        let mut conn = self.conn().await;
        let release: Release = {
            use diesel::{QueryDsl, SelectableHelper};
            use railyard::db::schema::releases::dsl as r;
            r::releases.find(id).select(Release::as_select()).first(&mut conn).await.expect("the release")
        };
        let outcome =
            Outcome { state: State::parse(state).expect("a state"), status: Status::parse(status).expect("a status"), finished_at };
        let actor = railyard::ops::Actor::system(release.account_id, "test");
        railyard::ops::releases::record_outcome(&mut conn, &actor, id, outcome, self.clock_now()).await.expect("force release");
    }

    pub async fn conn(&self) -> AsyncPgConnection {
        AsyncPgConnection::establish(&self.database_url).await.expect("test database connection")
    }

    /// A fresh client with its own cookie jar (another browser).
    pub fn new_client(&self) -> Client {
        Client::new(&self.address)
    }

    pub async fn create_account(&self, slug: &str) -> i64 {
        let mut conn = self.conn().await;
        railyard::ops::accounts::create_account(&mut conn, slug, &format!("{slug} Inc"), self.clock_now()).await.expect("account").id
    }

    pub fn clock_now(&self) -> chrono::DateTime<Utc> {
        use railyard::clock::Clock;
        self.clock.now()
    }

    /// Creates a user with `PASSWORD`; `role` like "viewer", `org` a slug or "".
    pub async fn create_user(&self, account_id: i64, email: &str, role: &str, org: &str) -> User {
        let mut conn = self.conn().await;
        let input = NewUserInput {
            email: email.into(),
            name: format!("Test {email}"),
            password: PASSWORD.into(),
            role: role.into(),
            org: org.into(),
        };
        railyard::ops::users::create_user(&mut conn, &Actor::system(account_id, "test"), &input, self.clock_now()).await.expect("user")
    }

    pub async fn create_org(&self, account_id: i64, slug: &str) -> i64 {
        let mut conn = self.conn().await;
        railyard::ops::catalog::create_org(&mut conn, &Actor::system(account_id, "test"), slug, slug, self.clock_now())
            .await
            .expect("org")
            .id
    }

    pub async fn api_token(&self, user: &User) -> String {
        let mut conn = self.conn().await;
        railyard::db::models::api_tokens::create(&mut conn, user.account_id, user.id, "test", None, self.clock_now())
            .await
            .expect("token")
            .1
    }

    /// An account with an admin logged in through the form; returns (account id, admin, client).
    pub async fn admin_session(&self, slug: &str) -> (i64, User, Client) {
        let account = self.create_account(slug).await;
        let admin = self.create_user(account, &format!("admin@{slug}.example.com"), "account_admin", "").await;
        let client = self.new_client();
        let res = client.login(&admin.email, PASSWORD).await;
        assert_eq!(res.status(), 303, "admin log-in");
        (account, admin, client)
    }

    pub async fn api_get(&self, token: &str, path: &str) -> reqwest::Response {
        self.client.http.get(format!("{}{path}", self.address)).bearer_auth(token).send().await.expect("GET")
    }

    pub async fn api_send(&self, method: reqwest::Method, token: &str, path: &str, body: &serde_json::Value) -> reqwest::Response {
        self.client.http.request(method, format!("{}{path}", self.address)).bearer_auth(token).json(body).send().await.expect("API request")
    }

    pub async fn api_post(&self, token: &str, path: &str, body: &serde_json::Value) -> reqwest::Response {
        self.api_send(reqwest::Method::POST, token, path, body).await
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        for h in &self.handles {
            drop(h.stop(false));
        }
        drop_database(self.db_name.clone());
    }
}

/// A browser-like HTTP client: keeps cookies, does not follow redirects.
pub struct Client {
    pub http: reqwest::Client,
    pub address: String,
}

pub fn csrf_from(html: &str) -> Option<String> {
    let marker = "name=\"csrf_token\" value=\"";
    let start = html.find(marker)? + marker.len();
    let end = html[start..].find('"')?;
    Some(html[start..start + end].to_string())
}

impl Client {
    pub fn new(address: &str) -> Client {
        let http = reqwest::Client::builder().cookie_store(true).redirect(reqwest::redirect::Policy::none()).build().expect("client");
        Client { http, address: address.to_string() }
    }

    pub fn at(&self, address: &str) -> Client {
        Client { http: self.http.clone(), address: address.to_string() }
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.http.get(format!("{}{path}", self.address)).send().await.expect("GET")
    }

    pub async fn get_html(&self, path: &str) -> String {
        self.get(path).await.text().await.expect("body")
    }

    /// The CSRF token of the current session, read from a page that carries it.
    pub async fn csrf(&self, path: &str) -> String {
        csrf_from(&self.get_html(path).await).unwrap_or_else(|| panic!("no csrf token on {path}"))
    }

    pub async fn post_form_raw(&self, path: &str, form: &[(&str, &str)]) -> reqwest::Response {
        self.http.post(format!("{}{path}", self.address)).form(form).send().await.expect("POST")
    }

    /// POSTs a form with this session's CSRF token (read from `/profile`).
    pub async fn post_form(&self, path: &str, form: &[(&str, &str)]) -> reqwest::Response {
        let token = self.csrf("/profile").await;
        let mut fields = vec![("csrf_token", token.as_str())];
        fields.extend_from_slice(form);
        self.post_form_raw(path, &fields).await
    }

    pub async fn login(&self, email: &str, password: &str) -> reqwest::Response {
        let token = self.csrf("/login").await;
        self.post_form_raw("/login", &[("csrf_token", &token), ("email", email), ("password", password), ("next", "/")]).await
    }
}

/// A JSON answer's status and body (`null` when the body is not JSON).
pub async fn body(res: reqwest::Response) -> (u16, serde_json::Value) {
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(serde_json::Value::Null))
}
