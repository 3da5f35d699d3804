//! Which addresses an outgoing webhook may reach (DESIGN §9): public ones, and private ones
//! only where the operator's `RAILYARD_WEBHOOK_PRIVATE_ALLOW` says so. A tenant's allow-list
//! names hosts; it never opens a private, loopback or link-local address.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// Whether an address is on the public internet (not loopback, private, link-local, shared,
/// multicast, documentation, unspecified or reserved; IPv4 inside IPv6 judged as IPv4).
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => is_public_v4(v4),
            None => is_public_v6(v6),
        },
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_broadcast()
        || ip.is_documentation()
        || ip.is_multicast()
        || a == 0
        || (a == 100 && (64..128).contains(&b)) // shared address space (CGNAT)
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments
        || (a == 198 && (b == 18 || b == 19)) // benchmarking
        || a >= 240)
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let first = ip.segments()[0];
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_multicast()
        || (first & 0xfe00) == 0xfc00 // unique local
        || (first & 0xffc0) == 0xfe80 // link-local
        || (first & 0xffc0) == 0xfec0 // site-local (deprecated)
        || first == 0x2001 && ip.segments()[1] == 0x0db8 // documentation
        || first == 0x0064 && ip.segments()[1] == 0xff9b // NAT64 (reaches IPv4 inside)
        || ip.to_ipv4().is_some_and(|v4| ip.segments()[..6] == [0; 6] && !is_public_v4(v4)))
    // IPv4-compatible
}

/// What an operator entry names: a network (an address is a /32 or /128), or a host name as
/// it appears in webhook URLs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Network { network: IpAddr, prefix: u8 },
    Host(String),
}

/// One entry of `RAILYARD_WEBHOOK_PRIVATE_ALLOW` (DESIGN §9): host[:port] or CIDR, for every
/// account, or for one account only when written `slug=entry`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrivateAllow {
    pub target: Target,
    pub port: Option<u16>,
    /// `Some(slug)`: this entry opens the address to that account only.
    pub account: Option<String>,
}

impl PrivateAllow {
    /// Reads `10.1.2.3`, `10.0.0.0/8`, `127.0.0.1:8081`, `::1`, `[::1]:8081`, `fd00::/8`,
    /// `ci.internal`, `ci.internal:8443`, each optionally after `slug=` (`acme=10.1.2.3:8443`).
    pub fn parse(text: &str) -> Result<PrivateAllow, String> {
        let t = text.trim();
        if let Some((slug, entry)) = t.split_once('=') {
            let slug = slug.trim();
            let valid = !slug.is_empty() && slug.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
            if !valid {
                return Err(format!("{t:?}: {slug:?} is not an account slug (lowercase letters, digits and -)"));
            }
            let scoped = PrivateAllow::parse_unscoped(entry)?;
            return Ok(PrivateAllow { account: Some(slug.to_string()), ..scoped });
        }
        PrivateAllow::parse_unscoped(t)
    }

    fn parse_unscoped(text: &str) -> Result<PrivateAllow, String> {
        let t = text.trim();
        let bad = || format!("{t:?} is not a host[:port], an address[:port] or a network (10.0.0.0/8)");
        if let Ok(socket) = t.parse::<SocketAddr>() {
            let prefix = if socket.is_ipv4() { 32 } else { 128 };
            return Ok(PrivateAllow { target: Target::Network { network: socket.ip(), prefix }, port: Some(socket.port()), account: None });
        }
        let (addr, prefix) = match t.split_once('/') {
            Some((a, p)) => (a, Some(p.parse::<u8>().map_err(|_| bad())?)),
            None => (t, None),
        };
        if let Ok(network) = addr.trim_matches(['[', ']']).parse::<IpAddr>() {
            let max = if network.is_ipv4() { 32 } else { 128 };
            let prefix = prefix.unwrap_or(max);
            if prefix > max {
                return Err(bad());
            }
            return Ok(PrivateAllow { target: Target::Network { network, prefix }, port: None, account: None });
        }
        if prefix.is_some() {
            return Err(bad());
        }
        let (host, port) = match t.rsplit_once(':') {
            Some((h, p)) => (h, Some(p.parse::<u16>().map_err(|_| bad())?)),
            None => (t, None),
        };
        let valid = !host.is_empty() && host.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.');
        if !valid || host.chars().all(|c| c.is_ascii_digit() || c == '.') {
            return Err(bad());
        }
        Ok(PrivateAllow { target: Target::Host(host.to_ascii_lowercase()), port, account: None })
    }

    /// Reads a comma- or space-separated list.
    pub fn parse_list(text: &str) -> Result<Vec<PrivateAllow>, String> {
        text.split([',', ' ']).filter(|s| !s.trim().is_empty()).map(PrivateAllow::parse).collect()
    }

    /// Whether this entry opens `addr`, reached for the URL host `host`.
    pub fn covers(&self, host: &str, addr: SocketAddr) -> bool {
        if self.port.is_some_and(|p| p != addr.port()) {
            return false;
        }
        let ip = match addr.ip() {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(IpAddr::V6(v6)),
            v4 => v4,
        };
        let (network, prefix) = match &self.target {
            Target::Host(name) => return name.eq_ignore_ascii_case(host.trim_matches(['[', ']'])),
            Target::Network { network, prefix } => (*network, *prefix),
        };
        match (network, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

/// Why an address (reached for the URL host `host` on behalf of the account `account`) may not
/// be reached, or `None` when it may.
pub fn refusal(host: &str, addr: SocketAddr, private_allow: &[PrivateAllow], account: &str) -> Option<String> {
    let opens = |a: &PrivateAllow| a.account.as_deref().is_none_or(|slug| slug == account) && a.covers(host, addr);
    if is_public(addr.ip()) || private_allow.iter().any(opens) {
        return None;
    }
    Some(format!("{addr} is a private, loopback or link-local address; only the operator's RAILYARD_WEBHOOK_PRIVATE_ALLOW can open it"))
}

/// The client's address: the socket's peer, unless the peer is a trusted proxy; then the
/// rightmost `X-Forwarded-For` entry that is not itself a trusted proxy (entries left of it
/// could be forged by the client).
pub fn client_address(peer: IpAddr, forwarded_for: Option<&str>, trusted: &[PrivateAllow]) -> IpAddr {
    let is_trusted =
        |ip: IpAddr| trusted.iter().any(|t| matches!(t.target, Target::Network { .. }) && t.covers("", SocketAddr::new(ip, 0)));
    if !is_trusted(peer) {
        return peer;
    }
    let Some(header) = forwarded_for else { return peer };
    let mut client = peer;
    for hop in header.rsplit(',') {
        match hop.trim().trim_matches(['[', ']']).parse::<IpAddr>() {
            Ok(ip) => {
                client = ip;
                if !is_trusted(ip) {
                    break;
                }
            }
            Err(_) => break,
        }
    }
    client
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sock(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_proxies() {
        let trusted = PrivateAllow::parse_list("10.0.0.0/8").unwrap();
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(client_address(ip("203.0.113.9"), Some("1.2.3.4"), &trusted), ip("203.0.113.9"), "not from a proxy");
        assert_eq!(client_address(ip("10.0.0.2"), Some("1.2.3.4, 198.51.100.7"), &trusted), ip("198.51.100.7"));
        assert_eq!(client_address(ip("10.0.0.2"), Some("198.51.100.7, 10.0.0.9"), &trusted), ip("198.51.100.7"), "proxy chain");
        assert_eq!(client_address(ip("10.0.0.2"), None, &trusted), ip("10.0.0.2"));
        assert_eq!(client_address(ip("10.0.0.2"), Some("garbage"), &trusted), ip("10.0.0.2"));
    }

    #[test]
    fn private_and_special_addresses_are_not_public() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "224.0.0.1",
            "255.255.255.255",
            "::1",
            "::",
            "fe80::1",
            "fd00::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::a9fe:a9fe",
            "::127.0.0.1",
        ] {
            assert!(!is_public(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["93.184.216.34", "8.8.8.8", "2606:4700::1111", "::ffff:8.8.8.8"] {
            assert!(is_public(ip.parse().unwrap()), "{ip}");
        }
    }

    #[test]
    fn the_operator_list_opens_exactly_what_it_names() {
        let list = PrivateAllow::parse_list("127.0.0.1:8081, 10.0.0.0/8 [::1]:9000,ci.internal:8443").unwrap();
        let h = "x.example";
        assert_eq!(refusal(h, sock("127.0.0.1:8081"), &list, "acme"), None);
        assert!(refusal(h, sock("127.0.0.1:8082"), &list, "acme").is_some(), "another port");
        assert_eq!(refusal(h, sock("10.9.8.7:443"), &list, "acme"), None);
        assert!(refusal(h, sock("11.0.0.1:443"), &list, "acme").is_none(), "public anyway");
        assert!(refusal(h, sock("[::1]:9001"), &list, "acme").is_some());
        assert_eq!(refusal(h, sock("[::ffff:127.0.0.1]:8081"), &list, "acme"), None, "mapped IPv4 is IPv4");
        assert!(refusal(h, sock("169.254.169.254:80"), &list, "acme").unwrap().contains("RAILYARD_WEBHOOK_PRIVATE_ALLOW"));
        assert_eq!(refusal("CI.internal", sock("10.200.0.5:8443"), &list, "acme"), None, "a named host opens its own answers");
        assert!(refusal("ci.internal", sock("192.168.0.5:9443"), &list, "acme").is_some(), "on its port only");
        assert!(refusal("localhost", sock("127.0.0.1:8443"), &list, "acme").is_some());
        assert!(PrivateAllow::parse("10.0.0.0/33").is_err());
        assert!(PrivateAllow::parse("bad host").is_err());
    }

    #[test]
    fn an_entry_with_a_slug_opens_the_address_to_that_account_only() {
        let list = PrivateAllow::parse_list("acme=10.1.2.3:8443, 127.0.0.1:9000").unwrap();
        assert_eq!(list[0].account.as_deref(), Some("acme"));
        assert_eq!(refusal("ci", sock("10.1.2.3:8443"), &list, "acme"), None);
        assert!(refusal("ci", sock("10.1.2.3:8443"), &list, "globex").is_some(), "another account");
        assert_eq!(refusal("x", sock("127.0.0.1:9000"), &list, "globex"), None, "no slug: every account");
        assert!(PrivateAllow::parse("Acme Corp=10.0.0.1").is_err());
        assert!(PrivateAllow::parse("acme=").is_err());
    }
}
