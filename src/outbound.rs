//! Outgoing HTTP to addresses that tenants choose (process webhooks, the account's chat
//! webhook), under DESIGN §9's rules: every resolved address public unless the operator's
//! `RAILYARD_WEBHOOK_PRIVATE_ALLOW` opens it, the request pinned to the checked address, and
//! redirects followed only to the same scheme, host and port.

use std::net::SocketAddr;
use std::time::Duration;

use crate::domain::network::{self, PrivateAllow};

#[derive(Debug, thiserror::Error)]
pub enum Blocked {
    /// The rules refuse it: do not retry.
    #[error("{0}")]
    Refused(String),
    /// The name did not resolve now: it may later.
    #[error("{0}")]
    Unresolved(String),
}

/// A client that can only reach `url`'s host at its checked address, for the account
/// `account_slug`. `shown_host` names the host in messages (the URL itself may hold secrets).
pub async fn checked_client(
    url: &reqwest::Url,
    shown_host: &str,
    private_allow: &[PrivateAllow],
    account_slug: &str,
    timeout: Duration,
) -> Result<reqwest::Client, Blocked> {
    if url.scheme() != "http" && url.scheme() != "https" {
        return Err(Blocked::Refused(format!("{shown_host}: only http and https URLs are called")));
    }
    let Some(host) = url.host_str().map(str::to_string) else { return Err(Blocked::Refused("the URL has no host".into())) };
    let port = url.port_or_known_default().unwrap_or(443);
    let addrs: Vec<SocketAddr> = match url.host() {
        Some(url::Host::Ipv4(ip)) => vec![SocketAddr::new(ip.into(), port)],
        Some(url::Host::Ipv6(ip)) => vec![SocketAddr::new(ip.into(), port)],
        _ => tokio::net::lookup_host((host.as_str(), port))
            .await
            .map_err(|e| Blocked::Unresolved(format!("cannot resolve {shown_host}: {e}")))?
            .collect(),
    };
    let Some(addr) = addrs.first().copied() else { return Err(Blocked::Unresolved(format!("{shown_host} has no address"))) };
    // Every address, not only the one used: a name must not mix public and private answers.
    if let Some(why) = addrs.iter().find_map(|a| network::refusal(&host, *a, private_allow, account_slug)) {
        return Err(Blocked::Refused(format!("{shown_host} resolves to {why}; no request was made")));
    }
    let (scheme, same_host) = (url.scheme().to_string(), host.clone());
    reqwest::Client::builder()
        // An environment proxy (HTTP(S)_PROXY, ALL_PROXY) would resolve the name itself and
        // bypass every check above (DESIGN §9).
        .no_proxy()
        .resolve(&host, addr)
        .timeout(timeout)
        .connect_timeout(Duration::from_secs(10))
        .redirect(reqwest::redirect::Policy::custom(move |attempt| {
            let next = attempt.url();
            let same = next.scheme() == scheme && next.host_str() == Some(same_host.as_str()) && next.port_or_known_default() == Some(port);
            if attempt.previous().len() < 5 && same {
                attempt.follow()
            } else {
                attempt.stop()
            }
        }))
        .build()
        .map_err(|e| Blocked::Unresolved(format!("http client: {}", e.without_url())))
}
