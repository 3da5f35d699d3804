//! One chromedriver per test binary (its own process group, killed at exit); a fresh
//! headless chromium session per test.

use fantoccini::{Client, ClientBuilder, Locator};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

static DRIVER: OnceLock<Mutex<Option<(Child, u16)>>> = OnceLock::new();

extern "C" fn kill_driver() {
    if let Some(lock) = DRIVER.get() {
        if let Ok(mut guard) = lock.lock() {
            if let Some((child, _)) = guard.take() {
                let pgid = child.id() as i32;
                // Chromium outlives chromedriver unless the whole group goes; never signal pgid <= 1.
                if pgid > 1 {
                    unsafe {
                        libc::killpg(pgid, libc::SIGKILL);
                    }
                }
            }
        }
    }
}

fn state_dir() -> std::path::PathBuf {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target").join("browser-tests");
    let _ = std::fs::create_dir_all(&dir);
    dir
}

fn driver_port() -> u16 {
    let lock = DRIVER.get_or_init(|| {
        let path = ["/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver"].into_iter().find(|p| std::path::Path::new(p).exists());
        let path =
            path.unwrap_or_else(|| panic!("chromedriver is missing: install Debian's chromium and chromium-driver (scripts/test does)"));
        let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("free port");
        let home = state_dir();
        let mut command = Command::new(path);
        command
            .arg(format!("--port={port}"))
            .env("HOME", &home)
            .env("TMPDIR", &home)
            .env("XDG_CONFIG_HOME", home.join("config"))
            .env("XDG_CACHE_HOME", home.join("cache"))
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        std::os::unix::process::CommandExt::process_group(&mut command, 0);
        let child = command.spawn().expect("start chromedriver");
        unsafe {
            libc::atexit(kill_driver);
        }
        Mutex::new(Some((child, port)))
    });
    let guard = lock.lock().unwrap_or_else(|e| e.into_inner());
    guard.as_ref().map(|(_, port)| *port).expect("chromedriver running")
}

pub struct Browser {
    pub client: Client,
}

impl Browser {
    pub async fn open() -> Browser {
        let port = driver_port();
        let profile = state_dir().join(format!("profile-{}", railyard::security::random_token(6)));
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            serde_json::json!({
                "binary": "/usr/bin/chromium",
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic", "--no-first-run",
                         "--disable-background-networking", "--disable-component-update", "--disable-sync",
                         format!("--user-data-dir={}", profile.display())]
            }),
        );
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        let mut last_error = None;
        // The driver needs a moment to listen after it starts.
        for _ in 0..50 {
            match ClientBuilder::new(connector.clone()).capabilities(caps.clone()).connect(&format!("http://127.0.0.1:{port}")).await {
                Ok(client) => return Browser { client },
                Err(e) => {
                    last_error = Some(e);
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        }
        panic!("could not start a chromium session: {last_error:?}");
    }

    pub async fn goto(&self, url: &str) {
        self.client.goto(url).await.expect("goto");
    }

    pub async fn fill(&self, selector: &str, value: &str) {
        self.until_done(selector, "fill", || async {
            let el = self.client.find(Locator::Css(selector)).await?;
            el.clear().await?;
            el.send_keys(value).await
        })
        .await
    }

    /// Clicks the element once it is there. A click that starts a navigation may itself be
    /// answered "aborted by navigation": it happened, so it is not repeated.
    pub async fn click(&self, selector: &str) {
        self.until_done(selector, "click", || async {
            let el = self.client.find(Locator::Css(selector)).await?;
            match el.click().await {
                Err(e) if e.to_string().contains("navigation") => Ok(()),
                other => other.map(drop),
            }
        })
        .await
    }

    pub async fn text(&self, selector: &str) -> String {
        self.wait_text(selector).await
    }

    /// Runs `step` until it succeeds, for up to 10 s: while a page is loading, chromium answers
    /// "aborted by navigation", a stale element or none yet, and each means "not yet".
    async fn until_done<T, F, Fut>(&self, selector: &str, what: &str, step: F) -> T
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<T, fantoccini::error::CmdError>>,
    {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            match step().await {
                Ok(done) => return done,
                Err(_not_yet) if std::time::Instant::now() < deadline => tokio::time::sleep(Duration::from_millis(100)).await,
                Err(e) => panic!("{what} {selector}: not possible within 10 s: {e}"),
            }
        }
    }

    /// The text of the first element matching `selector`, waiting up to 10 s for it. While a
    /// navigation or an htmx swap is under way, chromium answers "aborted by navigation", a stale
    /// element or no element at all: each of those means "not yet", not a failure.
    pub async fn wait_text(&self, selector: &str) -> String {
        self.until_done(selector, "read", || async { self.client.find(Locator::Css(selector)).await?.text().await }).await
    }

    /// The element's text now, or "" while an htmx swap replaces it.
    pub async fn text_now(&self, selector: &str) -> String {
        match self.client.find(Locator::Css(selector)).await {
            Ok(el) => el.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        }
    }

    /// Waits until some element matching `selector` contains `text` (e.g. after a redirect).
    pub async fn wait_for_text(&self, selector: &str, text: &str) {
        for _ in 0..200 {
            if let Ok(elements) = self.client.find_all(Locator::Css(selector)).await {
                for el in elements {
                    if el.text().await.is_ok_and(|t| t.contains(text)) {
                        return;
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let body = self.client.source().await.unwrap_or_default();
        panic!("no {selector} containing {text:?} appeared; page was:\n{body}");
    }

    pub async fn value(&self, selector: &str) -> String {
        // An htmx swap may replace the element between finding and reading it: then "".
        match self.client.find(Locator::Css(selector)).await {
            Ok(el) => el.prop("value").await.ok().flatten().unwrap_or_default(),
            Err(_) => String::new(),
        }
    }

    /// Logs in through the real page and waits for the dashboard.
    pub async fn log_in(&self, base: &str, email: &str, password: &str) {
        self.goto(&format!("{base}/login")).await;
        self.fill("#email", email).await;
        self.fill("#password", password).await;
        self.click("#login-form button[type=submit]").await;
        self.wait_text("#my-work").await;
    }

    pub async fn close(self) {
        let _ = self.client.close().await;
    }
}
