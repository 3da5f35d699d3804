//! The hostile corpus: every route of the route table, every path parameter, the query
//! parameters the handlers read, and every field of each form and JSON body, sent hostile values
//! (markup, SQL metacharacters, Unicode edge cases, NUL, huge numbers, 1 MB text, wrong JSON
//! types and content types, broken multipart, deep nesting).
//!
//! Asserted: no 5xx, no dropped connection, no panic in the server's code, no payload reflected
//! unescaped into HTML, and the audit trail still verifies. The CI run sends each (route,
//! parameter) a rotating share of the payloads; `HOSTILE_FULL=1` (scripts/hostile) sends all.

use std::sync::atomic::{AtomicUsize, Ordering};

use crate::common::TestApp;
use crate::matrix::{sign_in, world, Persona};
use serde_json::{json, Value};

/// Panics raised in the server's own code (`src/`), counted by a panic hook: a handler panic
/// counts even when actix turns it into a 500 or drops only that connection.
static SERVER_PANICS: AtomicUsize = AtomicUsize::new(0);

fn count_server_panics() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if info.location().is_some_and(|l| l.file().starts_with("src/")) {
            SERVER_PANICS.fetch_add(1, Ordering::SeqCst);
        }
        previous(info);
    }));
}

const MARKUP: &str = "<script>alert('ry')</script>";
const ATTRIBUTE: &str = "\"><img src=x onerror=alert('ry')>";

/// Payloads for paths and query strings: as `payloads`, with the long text at 4,000 characters
/// (a URL of 100 KB is refused by the HTTP client before it is sent).
fn url_payloads() -> Vec<String> {
    payloads().into_iter().map(|p| if p.len() > 4000 { "a".repeat(4000) } else { p }).collect()
}

fn payloads() -> Vec<String> {
    vec![
        MARKUP.into(),
        ATTRIBUTE.into(),
        "' OR 1=1; DROP TABLE releases; --".into(),
        "%' AND pg_sleep(5) IS NULL --".into(),
        "\u{202e}gpj.exe\u{202c}".into(),
        "zero\u{200b}width\u{feff}".into(),
        "🚀".into(),
        "é".into(),
        "x\u{0}y".into(),
        "9223372036854775808".into(),
        "-9223372036854775809".into(),
        "340282366920938463463374607431768211456".into(),
        "-1".into(),
        "../../etc/passwd".into(),
        "${inputs.secret}{{x}}".into(),
        "a".repeat(100_000),
        String::new(),
        // Security review II: anchors behind a line break only libyaml knows, and a forged log line.
        "name: x # c\u{2028}variables: [{name: a, value: &a [x, x, x]}, {name: b, value: [*a, *a, *a]}]\nphases: []".into(),
        "ann@acme.example.com\r\nINFO railyard: login.success user:admin@acme.example.com\u{85}".into(),
    ]
}

/// Query parameters the handlers read (any route ignores the ones it does not know).
const QUERY_NAMES: &[&str] = &[
    "page",
    "from",
    "to",
    "org",
    "status",
    "state",
    "q",
    "after",
    "limit",
    "format",
    "view",
    "date",
    "process_id",
    "input_set",
    "environment",
    "service",
    "release",
    "actor",
    "action",
    "subject",
    "version",
    "versions",
    "next",
    "token",
    "trail_after",
    "type",
    "owner",
    "group",
];

fn full() -> bool {
    std::env::var("HOSTILE_FULL").is_ok_and(|v| v == "1")
}

/// Which payload indexes a (route, parameter) gets: all of them in the full run, a rotating three
/// in CI (so that over the routes every payload meets every kind of parameter).
fn chosen(seed: usize, count: usize) -> Vec<usize> {
    if full() {
        (0..count).collect()
    } else {
        (0..3).map(|k| (seed * 7 + k * 5) % count).collect()
    }
}

fn enc(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

#[derive(Default)]
struct Tally {
    requests: usize,
    failures: Vec<String>,
}

impl Tally {
    async fn check(&mut self, what: String, res: Result<reqwest::Response, reqwest::Error>) {
        self.requests += 1;
        let res = match res {
            Ok(res) => res,
            Err(e) => {
                self.failures.push(format!("{what}: dropped: {}", e.without_url()));
                return;
            }
        };
        let status = res.status().as_u16();
        let html = res.headers().get("content-type").and_then(|v| v.to_str().ok()).is_some_and(|t| t.starts_with("text/html"));
        let text = match res.text().await {
            Ok(t) => t,
            Err(e) => {
                self.failures.push(format!("{what}: body cut: {e}"));
                return;
            }
        };
        if status >= 500 {
            let excerpt: String = text.chars().take(200).collect();
            self.failures.push(format!("{what}: {status} {excerpt}"));
        }
        if html && (text.contains(MARKUP) || text.contains("<img src=x onerror")) {
            self.failures.push(format!("{what}: payload reflected unescaped"));
        }
    }
}

async fn send_raw(
    app: &TestApp,
    who: &Persona,
    method: &str,
    path: &str,
    body: Option<(&str, Vec<u8>)>,
) -> Result<reqwest::Response, reqwest::Error> {
    let method = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).expect("method");
    let mut req = who.client.http.request(method, format!("{}{path}", app.address));
    if path.starts_with("/api/v1") {
        if let Some(token) = &who.token {
            req = req.bearer_auth(token);
        }
    } else {
        req = req.header("X-CSRF-Token", &who.csrf);
    }
    if let Some((content_type, bytes)) = body {
        req = req.header("content-type", content_type).body(bytes);
    }
    req.send().await
}

fn form_bytes(csrf: &str, body: &Value) -> Vec<u8> {
    let mut form = url::form_urlencoded::Serializer::new(String::new());
    form.append_pair("csrf_token", csrf);
    for (k, v) in body.as_object().into_iter().flatten() {
        form.append_pair(k, v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string()).as_str());
    }
    form.finish().into_bytes()
}

fn nested(depth: usize) -> String {
    format!("{}{}", "[".repeat(depth), "]".repeat(depth))
}

/// Routes that end the session or count password guesses go last, so that they do not sign the
/// admin out (or throttle the address) while other routes are still being tried.
fn last(path: &str) -> u8 {
    match path {
        "/profile/password" | "/login" => 1,
        "/logout" => 2,
        _ => 0,
    }
}

#[tokio::test]
async fn no_route_fails_on_hostile_input() {
    count_server_panics();
    railyard::telemetry::init();
    let app = TestApp::spawn().await;
    let (world, personas) = world(&app).await;
    let admin = personas.into_iter().find(|p| p.letter == 'D').expect("the admin");
    let admin = sign_in(&app, admin.letter, admin.email.clone(), admin.token.clone()).await;
    let payloads = payloads();
    let url_payloads = url_payloads();
    let mut routes: Vec<_> = railyard::web::all_routes().collect();
    routes.sort_by_key(|r| last(r.path));
    let mut tally = Tally::default();
    for (n, route) in routes.iter().enumerate() {
        let api = route.path.starts_with("/api/v1");
        let good_path = world.fill(route.method, route.path);
        let good_body = world.body(route.method, route.path);

        // Path parameters: each segment that the template names, replaced in turn.
        let template: Vec<&str> = route.path.split('/').collect();
        let filled: Vec<&str> = good_path.split('/').collect();
        for (i, segment) in template.iter().enumerate() {
            if !segment.starts_with('{') || segment.contains(":.*") {
                continue;
            }
            for k in chosen(n + i, payloads.len()) {
                let mut parts: Vec<String> = filled.iter().map(|s| s.to_string()).collect();
                parts[i] = enc(&url_payloads[k]);
                let path = parts.join("/");
                let body = (route.method != "get").then(|| {
                    if api {
                        ("application/json", good_body.to_string().into_bytes())
                    } else {
                        ("application/x-www-form-urlencoded", form_bytes(&admin.csrf, &good_body))
                    }
                });
                let what = format!("{} {} [{segment} = payload {k}]", route.method.to_uppercase(), route.path);
                tally.check(what, send_raw(&app, &admin, route.method, &path, body).await).await;
            }
        }

        // Query parameters, on the routes that read them.
        if route.method == "get" {
            for (q, name) in QUERY_NAMES.iter().enumerate() {
                for k in chosen(n + q, payloads.len()) {
                    let sep = if good_path.contains('?') { '&' } else { '?' };
                    let path = format!("{good_path}{sep}{name}={}", enc(&url_payloads[k]));
                    let what = format!("GET {} [?{name} = payload {k}]", route.path);
                    tally.check(what, send_raw(&app, &admin, "get", &path, None).await).await;
                }
            }
            continue;
        }

        // Body fields: each replaced by each payload; for JSON also by wrong types.
        let fields: Vec<String> = good_body.as_object().map(|o| o.keys().cloned().collect()).unwrap_or_default();
        let mut variants: Vec<(String, Value)> = Vec::new();
        for (f, field) in fields.iter().chain(std::iter::once(&"unexpected".to_string())).enumerate() {
            for k in chosen(n + f, payloads.len()) {
                let mut body = good_body.clone();
                body[field.as_str()] = Value::String(payloads[k].clone());
                variants.push((format!("{field} = payload {k}"), body));
            }
            if api {
                for (t, wrong) in [json!(9223372036854775807i64), json!(1e308), json!([1, "x"]), json!({"a": {}}), json!(null), json!(true)]
                    .into_iter()
                    .enumerate()
                {
                    if full() || (n + f + t) % 3 == 0 {
                        let mut body = good_body.clone();
                        body[field.as_str()] = wrong;
                        variants.push((format!("{field} = wrong type {t}"), body));
                    }
                }
            }
        }
        for (label, body) in variants {
            let bytes = if api {
                ("application/json", body.to_string().into_bytes())
            } else {
                ("application/x-www-form-urlencoded", form_bytes(&admin.csrf, &body))
            };
            let what = format!("{} {} [{label}]", route.method.to_uppercase(), route.path);
            tally.check(what, send_raw(&app, &admin, route.method, &good_path, Some(bytes)).await).await;
        }

        // Whole bodies: wrong content types, broken multipart, deep nesting, 1 MB text, not JSON.
        let megabyte = "a".repeat(1024 * 1024 + 1);
        let wholes: Vec<(&str, &str, Vec<u8>)> = vec![
            ("text/plain", "text/plain", b"hello".to_vec()),
            (
                "broken multipart",
                "multipart/form-data; boundary=xyz",
                b"--xyz\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nb".to_vec(),
            ),
            ("deep nesting", "application/json", nested(100_000).into_bytes()),
            ("not json", "application/json", b"{\"name\": ".to_vec()),
            ("1 MB field", "application/json", json!({"name": megabyte}).to_string().into_bytes()),
            ("1 MB form", "application/x-www-form-urlencoded", format!("csrf_token={}&name={megabyte}", admin.csrf).into_bytes()),
            ("invalid UTF-8", "application/json", vec![b'{', b'"', 0xff, 0xfe, b'"', b':', b'1', b'}']),
        ];
        for (label, content_type, bytes) in wholes {
            let what = format!("{} {} [{label}]", route.method.to_uppercase(), route.path);
            tally.check(what, send_raw(&app, &admin, route.method, &good_path, Some((content_type, bytes))).await).await;
        }
    }

    let mut conn = app.conn().await;
    let verified = railyard::db::audit::verify(&mut conn, None).await.expect("verify");
    let panics = SERVER_PANICS.load(Ordering::SeqCst);
    println!(
        "hostile corpus: {} routes, {} requests, {} failures, {panics} server panics, audit {} events verified",
        routes.len(),
        tally.requests,
        tally.failures.len(),
        verified.events
    );
    assert!(verified.broken.is_none(), "the audit chain broke");
    assert_eq!(panics, 0, "a handler panicked");
    assert!(tally.failures.is_empty(), "{} failures:\n{}", tally.failures.len(), tally.failures.join("\n"));
}
