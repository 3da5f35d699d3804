//! Field checks shared by pages, the API and the CLI; each error names its field.

use std::collections::BTreeMap;

pub const MAX_NAME_LEN: usize = 200;
/// DESIGN §9: descriptions ≤ 20,000 characters, comments and reasons ≤ 10,000.
pub const MAX_DESCRIPTION_LEN: usize = 20_000;
pub const MAX_COMMENT_LEN: usize = 10_000;
pub const MAX_EMAIL_LEN: usize = 254;
pub const MIN_PASSWORD_LEN: usize = 8;
pub const MAX_PASSWORD_LEN: usize = 256;

/// Field name → message, in field order for stable rendering.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct FieldErrors(pub BTreeMap<String, String>);

impl FieldErrors {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn add(&mut self, field: &str, message: impl Into<String>) {
        self.0.entry(field.to_string()).or_insert_with(|| message.into());
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    pub fn get(&self, field: &str) -> Option<&str> {
        self.0.get(field).map(String::as_str)
    }
    pub fn first(&self) -> Option<(&str, &str)> {
        self.0.iter().next().map(|(k, v)| (k.as_str(), v.as_str()))
    }
    pub fn into_result(self) -> Result<(), FieldErrors> {
        if self.is_empty() {
            Ok(())
        } else {
            Err(self)
        }
    }
    /// Records the error of a check, keeping its value when it passed.
    pub fn check<T>(&mut self, field: &str, result: Result<T, String>) -> Option<T> {
        match result {
            Ok(v) => Some(v),
            Err(message) => {
                self.add(field, message);
                None
            }
        }
    }
}

pub fn required_text(value: &str, max: usize) -> Result<String, String> {
    let v = value.trim();
    if v.is_empty() {
        return Err("is required".into());
    }
    if v.chars().count() > max {
        return Err(format!("must be at most {max} characters"));
    }
    if v.chars().any(|c| c.is_control()) {
        return Err("must not contain control characters".into());
    }
    Ok(v.to_string())
}

/// An optional text (a comment) within `max` characters; empty is fine.
pub fn optional_text(value: &str, max: usize) -> Result<(), String> {
    if value.chars().count() > max {
        return Err(format!("must be at most {max} characters"));
    }
    Ok(())
}

pub fn name(value: &str) -> Result<String, String> {
    required_text(value, MAX_NAME_LEN)
}

pub fn email(value: &str) -> Result<String, String> {
    let v = value.trim();
    if v.is_empty() {
        return Err("is required".into());
    }
    if v.len() > MAX_EMAIL_LEN {
        return Err(format!("must be at most {MAX_EMAIL_LEN} characters"));
    }
    let valid = match v.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
                && !domain.contains('@')
                && !v.chars().any(|c| c.is_whitespace() || c.is_control() || c == '<' || c == '>' || c == ',')
        }
        None => false,
    };
    if !valid {
        return Err(format!("{v:?} is not a valid e-mail address"));
    }
    Ok(v.to_ascii_lowercase())
}

pub fn password(value: &str) -> Result<String, String> {
    let n = value.chars().count();
    if n < MIN_PASSWORD_LEN {
        return Err(format!("must be at least {MIN_PASSWORD_LEN} characters"));
    }
    if n > MAX_PASSWORD_LEN {
        return Err(format!("must be at most {MAX_PASSWORD_LEN} characters"));
    }
    Ok(value.to_string())
}

/// Slugs appear in URLs: lower-case letters, digits and dashes.
pub fn slug(value: &str) -> Result<String, String> {
    let v = value.trim();
    if v.is_empty() {
        return Err("is required".into());
    }
    let ok = v.len() <= 63 && v.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-') && !v.starts_with('-');
    if !ok {
        return Err("must be 1–63 lower-case letters, digits or dashes, not starting with a dash".into());
    }
    Ok(v.to_string())
}

/// Catalog names (environments, services, groups) are used in references like `group:qa`.
pub fn catalog_name(value: &str) -> Result<String, String> {
    let v = required_text(value, 100)?;
    if !v.chars().all(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | '.')) {
        return Err("may contain only letters, digits, '-', '_' and '.'".into());
    }
    Ok(v)
}

pub fn time_zone(value: &str) -> Result<String, String> {
    let v = value.trim();
    v.parse::<chrono_tz::Tz>()
        .map(|tz| tz.name().to_string())
        .map_err(|_| format!("{v:?} is not a known IANA time zone (e.g. Europe/Berlin)"))
}

/// `host` or `host:port`, lower-cased; no scheme or path.
pub fn allow_list_host(value: &str) -> Result<String, String> {
    let v = value.trim().to_lowercase();
    // An IPv6 address is written in brackets: `[::1]` or `[::1]:8443`.
    if let Some(rest) = v.strip_prefix('[') {
        let bad = || format!("{value:?} is not a host or host:port");
        let (inner, after) = rest.split_once(']').ok_or_else(bad)?;
        inner.parse::<std::net::Ipv6Addr>().map_err(|_| bad())?;
        let port_ok = after.is_empty() || after.strip_prefix(':').is_some_and(|p| p.parse::<u16>().is_ok_and(|n| n > 0));
        return if port_ok { Ok(v) } else { Err(bad()) };
    }
    let (host, port) = match v.rsplit_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (v.as_str(), None),
    };
    let host_ok = !host.is_empty() && host.len() <= 253 && host.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '*'));
    let port_ok = port.is_none_or(|p| p.parse::<u16>().is_ok_and(|n| n > 0));
    if !(host_ok && port_ok) {
        return Err(format!("{value:?} is not a host or host:port"));
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails() {
        assert_eq!(email(" Ana@Example.COM ").unwrap(), "ana@example.com");
        for bad in ["", "ana", "ana@", "@x.com", "ana@localhost", "a b@x.com", "a@x.com."] {
            assert!(email(bad).is_err(), "{bad}");
        }
        assert!(email(&format!("{}@x.com", "a".repeat(10_000))).is_err());
    }

    #[test]
    fn names_and_limits() {
        assert!(name("   ").is_err());
        assert!(name(&"x".repeat(10_000)).unwrap_err().contains("at most 200"));
        assert_eq!(name(" Ana ").unwrap(), "Ana");
        assert!(slug("Payments").is_err());
        assert!(slug("payments-eu").is_ok());
        assert!(catalog_name("PROD 1").is_err());
        assert!(catalog_name("PROD1").is_ok());
    }

    #[test]
    fn zones_and_hosts() {
        assert_eq!(time_zone("Europe/Berlin").unwrap(), "Europe/Berlin");
        assert!(time_zone("Mars/Olympus").is_err());
        assert_eq!(allow_list_host("CI.example.com:8443").unwrap(), "ci.example.com:8443");
        assert!(allow_list_host("https://x").is_err());
        assert!(allow_list_host("x:0").is_err());
    }
}
