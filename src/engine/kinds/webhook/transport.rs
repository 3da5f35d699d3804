//! The HTTP transport of a webhook: the allow-list, the checked address, the bounded answer,
//! and masking what the receiver echoes (DESIGN §9). No database here.

use serde_json::{Map, Value};

use super::request::Request;
use crate::domain::network::PrivateAllow;
use crate::outbound::Blocked;

pub const MAX_RESPONSE_BYTES: usize = 1024 * 1024;

#[derive(Debug, Clone)]
pub struct Outcome {
    /// `Some` when a response arrived.
    pub status: Option<u16>,
    pub body: Option<String>,
    pub error: Option<String>,
    /// A refusal (allow-list): no retries.
    pub permanent: bool,
    /// How long the request took, for the release page's attempt list.
    pub duration_ms: Option<i32>,
    /// A JSON object answer, read before masking and masked inside its strings.
    pub outputs: Option<Map<String, Value>>,
}

impl Outcome {
    pub fn refused(message: String) -> Outcome {
        Outcome { status: None, body: None, error: Some(message), permanent: true, duration_ms: None, outputs: None }
    }

    /// Reads the outputs of a JSON answer, then masks every secret value in them, in the body
    /// and in the error (DESIGN §9: a receiver may echo what it was sent).
    fn mask(&mut self, secrets: &[String]) {
        let mut outputs: Option<Map<String, Value>> =
            self.body.as_deref().and_then(|b| serde_json::from_str::<Value>(b).ok()).and_then(|v| v.as_object().cloned());
        if !secrets.is_empty() {
            if let Some(map) = outputs.as_mut() {
                for value in map.values_mut() {
                    crate::domain::masking::mask_value(value, secrets);
                }
            }
            self.body = self.body.as_deref().map(|b| crate::domain::masking::mask_text(b, secrets));
            self.error = self.error.as_deref().map(|e| crate::domain::masking::mask_text(e, secrets));
        }
        self.outputs = outputs;
    }
}

/// Whether `host`/`port` is on the allow-list (`host` or `host:port`, case-insensitive).
pub fn allowed(allow_list: &[String], host: &str, port: u16) -> bool {
    let host = host.trim_matches(['[', ']']).to_lowercase();
    allow_list.iter().any(|entry| {
        let (h, p) = match entry.strip_prefix('[') {
            Some(rest) => match rest.split_once(']') {
                Some((inner, after)) => (inner, after.strip_prefix(':')),
                None => return false,
            },
            None => match entry.rsplit_once(':') {
                Some((h, p)) if p.parse::<u16>().is_ok() => (h, Some(p)),
                _ => (entry.as_str(), None),
            },
        };
        h == host && p.is_none_or(|p| p.parse::<u16>().ok() == Some(port))
    })
}

/// Sends a rendered request. The host must be on the account's allow-list, and every address
/// it resolves to must be public or opened by the operator (`private_allow`); the request then
/// goes to exactly the checked address, and redirects are followed only to the same scheme,
/// host and port. Messages name the masked URL only; secrets the receiver echoes are masked.
pub async fn send(request: &Request, private_allow: &[PrivateAllow], secrets: &[String]) -> Outcome {
    let started = std::time::Instant::now();
    let mut outcome = send_once(request, private_allow).await;
    outcome.duration_ms = Some(i32::try_from(started.elapsed().as_millis()).unwrap_or(i32::MAX));
    outcome.mask(secrets);
    outcome
}

async fn send_once(request: &Request, private_allow: &[PrivateAllow]) -> Outcome {
    let shown = reqwest::Url::parse(&request.shown_url).ok();
    let shown_host = shown.as_ref().and_then(|u| u.host_str().map(str::to_string)).unwrap_or_else(|| "the host".into());
    let url = match reqwest::Url::parse(&request.url) {
        Ok(u) if u.scheme() == "http" || u.scheme() == "https" => u,
        _ => return Outcome::refused(format!("{:?} is not an http(s) URL", request.shown_url)),
    };
    let Some(host) = url.host_str().map(str::to_string) else { return Outcome::refused("the URL has no host".into()) };
    let port = url.port_or_known_default().unwrap_or(443);
    if !allowed(&request.allow_list, &host, port) {
        return Outcome::refused(format!("host {shown_host}:{port} is not on the account's webhook allow-list; no request was made"));
    }
    let client = match crate::outbound::checked_client(&url, &shown_host, private_allow, &request.account_slug, request.timeout).await {
        Ok(c) => c,
        Err(Blocked::Refused(why)) => return Outcome::refused(why),
        Err(Blocked::Unresolved(why)) => {
            return Outcome { status: None, body: None, error: Some(why), permanent: false, duration_ms: None, outputs: None }
        }
    };
    let method = reqwest::Method::from_bytes(request.method.as_bytes()).unwrap_or(reqwest::Method::POST);
    let mut outgoing = client.request(method, url);
    for (k, v) in &request.headers {
        outgoing = outgoing.header(k.as_str(), v.as_str());
    }
    if let Some(body) = &request.body {
        outgoing = outgoing.json(body);
    }
    match outgoing.send().await {
        Err(e) => Outcome {
            status: None,
            body: None,
            error: Some(format!("request to {shown_host} failed: {}", e.without_url())),
            permanent: false,
            duration_ms: None,
            outputs: None,
        },
        Ok(mut res) => {
            let status = res.status().as_u16();
            let mut body: Vec<u8> = Vec::new();
            loop {
                match res.chunk().await {
                    Ok(Some(chunk)) => {
                        if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
                            return Outcome {
                                status: Some(status),
                                body: None,
                                error: Some(format!("response larger than {MAX_RESPONSE_BYTES} bytes")),
                                permanent: false,
                                duration_ms: None,
                                outputs: None,
                            };
                        }
                        body.extend_from_slice(&chunk);
                    }
                    Ok(None) => break,
                    Err(e) => {
                        return Outcome {
                            status: Some(status),
                            body: None,
                            error: Some(format!("reading the response: {}", e.without_url())),
                            permanent: false,
                            duration_ms: None,
                            outputs: None,
                        }
                    }
                }
            }
            let text = String::from_utf8_lossy(&body).to_string();
            let error = (!(200..300).contains(&status)).then(|| format!("HTTP {status}"));
            Outcome { status: Some(status), body: Some(text), error, permanent: false, duration_ms: None, outputs: None }
        }
    }
}

/// A 2xx answer that was read whole.
pub fn is_success(o: &Outcome) -> bool {
    o.status.is_some_and(|s| (200..300).contains(&s)) && o.error.is_none()
}

#[cfg(test)]
mod tests {
    #[test]
    fn allow_list_matches_host_and_port() {
        let list = vec!["ci.example.com".to_string(), "127.0.0.1:8443".to_string()];
        assert!(super::allowed(&list, "CI.example.com", 443));
        assert!(super::allowed(&list, "127.0.0.1", 8443));
        assert!(!super::allowed(&list, "127.0.0.1", 80));
        assert!(!super::allowed(&list, "localhost", 8443), "a name is not its address");
        let v6 = vec!["[::1]:8443".to_string(), "[fd00::5]".to_string()];
        assert!(super::allowed(&v6, "[::1]", 8443) && !super::allowed(&v6, "[::1]", 80));
        assert!(super::allowed(&v6, "[fd00::5]", 9999));
    }
}
