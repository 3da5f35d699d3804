//! The identity provider of the single sign-on tests: `tests/oidc/provider.mjs` (the npm package
//! `oidc-provider`), started here on loopback and stopped when dropped.

use std::path::PathBuf;
use std::process::Stdio;

use tokio::io::{AsyncBufReadExt, BufReader};

pub const CLIENT_ID: &str = "railyard-tests";
pub const CLIENT_SECRET: &str = "railyard-tests-secret-0123456789";

pub struct Provider {
    child: tokio::process::Child,
    pub issuer: String,
    accounts_file: PathBuf,
}

/// A port nothing listens on now (the provider takes it later: the app is configured first).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("a free port")
}

impl Provider {
    /// Starts the provider on `port`, accepting `redirect` (the app's callback) for its one client.
    pub async fn start(port: u16, redirect: &str, accounts: serde_json::Value) -> Provider {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/oidc");
        let accounts_file = std::env::temp_dir().join(format!("railyard-oidc-accounts-{}.json", railyard::security::random_token(6)));
        std::fs::write(&accounts_file, accounts.to_string()).expect("accounts file");
        let mut child = tokio::process::Command::new("node")
            .arg(dir.join("provider.mjs"))
            .current_dir(&dir)
            .env("OIDC_PORT", port.to_string())
            .env("OIDC_CLIENT_ID", CLIENT_ID)
            .env("OIDC_CLIENT_SECRET", CLIENT_SECRET)
            .env("OIDC_REDIRECT_URIS", redirect)
            .env("OIDC_ACCOUNTS_FILE", &accounts_file)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("node tests/oidc/provider.mjs (run npm ci in tests/oidc)");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        // Node starts the provider in a second or two; on a loaded 2-core machine, with the whole
        // suite running, a restart has taken over 20 s. This is a wait, not a speed assertion.
        let issuer = tokio::time::timeout(std::time::Duration::from_secs(90), async {
            while let Ok(Some(line)) = lines.next_line().await {
                if let Some(issuer) = line.strip_prefix("OIDC_READY ") {
                    return issuer.trim().to_string();
                }
            }
            panic!("the provider stopped before it was ready");
        })
        .await
        .expect("the provider starts within 90 s");
        Provider { child, issuer, accounts_file }
    }

    /// Changes who may sign in and their groups (read at each log-in).
    pub fn set_accounts(&self, accounts: serde_json::Value) {
        std::fs::write(&self.accounts_file, accounts.to_string()).expect("accounts file");
    }
}

impl Drop for Provider {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
        let _ = std::fs::remove_file(&self.accounts_file);
    }
}

/// The first form of a page: its action and hidden fields.
fn form_of(html: &str) -> (String, Vec<(String, String)>) {
    let form = &html[html.find("<form").expect("a form")..];
    let attr = |tag: &str, name: &str| -> Option<String> {
        let key = format!("{name}=\"");
        let start = tag.find(&key)? + key.len();
        Some(tag[start..start + tag[start..].find('"')?].replace("&amp;", "&"))
    };
    let open = &form[..form.find('>').unwrap_or(form.len())];
    let action = attr(open, "action").expect("a form action");
    let end = form.find("</form>").unwrap_or(form.len());
    let hidden = form[..end]
        .split("<input")
        .skip(1)
        .filter(|tag| tag.contains("type=\"hidden\""))
        .filter_map(|tag| Some((attr(tag, "name")?, attr(tag, "value").unwrap_or_default())))
        .collect();
    (action, hidden)
}

/// Follows redirects by hand (the client keeps cookies, never follows by itself) and returns the
/// last answer with its URL.
async fn follow(http: &reqwest::Client, mut res: reqwest::Response) -> (String, reqwest::Response) {
    loop {
        let url = res.url().clone();
        if !res.status().is_redirection() {
            return (url.to_string(), res);
        }
        let location = res.headers().get("location").and_then(|l| l.to_str().ok()).expect("a location").to_string();
        let next = url.join(&location).expect("a redirect target");
        res = http.get(next).send().await.expect("GET");
    }
}

/// Fills the provider's page at `url` (its log-in form as `login`, or its consent form) and
/// submits it.
async fn submit_provider_form(http: &reqwest::Client, url: &str, page: reqwest::Response, login: &str) -> reqwest::Response {
    let html = page.text().await.expect("page");
    let (action, mut fields) = form_of(&html);
    if html.contains("name=\"login\"") {
        fields.push(("login".into(), login.into()));
        fields.push(("password".into(), "any".into()));
    }
    let target = reqwest::Url::parse(url).and_then(|u| u.join(&action)).expect("form target");
    http.post(target).form(&fields).send().await.expect("POST")
}

/// Signs in through the provider as `login` (its dev log-in and consent pages), starting at the
/// app's `/login/sso`; returns the app's last answer (a page, or the redirect after log-in).
pub async fn sign_in(client: &crate::common::Client, login: &str) -> (String, reqwest::Response) {
    let http = &client.http;
    let res = http.get(format!("{}/login/sso", client.address)).send().await.expect("GET /login/sso");
    let (mut url, mut res) = follow(http, res).await;
    // Log-in, then consent (skipped when already given): each a form on the provider.
    for _ in 0..3 {
        if !url.contains("/interaction/") {
            break;
        }
        let posted = submit_provider_form(http, &url, res, login).await;
        // Stop at the app: its answer is what the test looks at.
        (url, res) = follow_until_app(http, posted, &client.address).await;
    }
    (url, res)
}

/// Goes through the provider as `login`, like `sign_in`, but stops before the app's callback and
/// returns its URL (with `code` and `state`) unvisited.
pub async fn callback_url(client: &crate::common::Client, login: &str) -> String {
    let http = &client.http;
    let callback = format!("{}/login/sso/callback", client.address);
    let mut res = http.get(format!("{}/login/sso", client.address)).send().await.expect("GET /login/sso");
    for _ in 0..20 {
        let url = res.url().clone();
        if res.status().is_redirection() {
            let location = res.headers().get("location").and_then(|l| l.to_str().ok()).expect("a location").to_string();
            let next = url.join(&location).expect("a redirect target");
            if next.as_str().starts_with(&callback) {
                return next.to_string();
            }
            res = http.get(next).send().await.expect("GET");
            continue;
        }
        res = submit_provider_form(http, url.as_str(), res, login).await;
    }
    panic!("the provider never sent the browser back to the app");
}

async fn follow_until_app(http: &reqwest::Client, mut res: reqwest::Response, app: &str) -> (String, reqwest::Response) {
    loop {
        let url = res.url().clone();
        let location = res.headers().get("location").and_then(|l| l.to_str().ok()).map(str::to_string);
        match location {
            Some(location) if res.status().is_redirection() => {
                let next = url.join(&location).expect("a redirect target");
                let at_app_page = next.as_str().starts_with(app) && !next.path().starts_with("/login/sso");
                if at_app_page && url.as_str().starts_with(app) {
                    return (url.to_string(), res);
                }
                res = http.get(next).send().await.expect("GET");
            }
            _ => return (url.to_string(), res),
        }
    }
}

/// The app's provider settings for a provider that will listen on `port` (account `acme`).
pub fn settings(port: u16) -> railyard::config::OidcSettings {
    railyard::config::OidcSettings {
        issuer: format!("http://127.0.0.1:{port}"),
        client_id: CLIENT_ID.into(),
        client_secret: CLIENT_SECRET.into(),
        account: "acme".into(),
        label: "Acme ID".into(),
        groups_claim: "groups".into(),
    }
}
