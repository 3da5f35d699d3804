//! Settings from the environment (DESIGN §10). Secrets are never logged.

use std::fmt;

pub const DEFAULT_DATABASE_URL: &str = "postgres://root@%2Fvar%2Frun%2Fpostgresql/railyard";
pub const DEFAULT_BIND: &str = "127.0.0.1:8080";
pub const MIN_SECRET_KEY_BYTES: usize = 64;

#[derive(Clone)]
pub struct Settings {
    pub database_url: String,
    pub bind: String,
    pub base_url: String,
    /// `None` outside production: a development key is then kept in the database.
    pub secret_key: Option<Vec<u8>>,
    pub smtp_url: Option<String>,
    /// The sender of e-mails (`RAILYARD_MAIL_FROM`).
    pub mail_from: String,
    pub retention_days: u32,
    /// The web server's connections (`RAILYARD_POOL_SIZE`, default 16).
    pub pool_size: usize,
    /// The worker's own connections: engine, sends and notifications never wait behind web
    /// traffic (`RAILYARD_WORKER_POOL_SIZE`, default 8).
    pub worker_pool_size: usize,
    /// How long a request waits for a free database connection before it answers 503
    /// (`RAILYARD_POOL_WAIT_MS`, default 5000).
    pub pool_wait: std::time::Duration,
    /// HTTP worker threads (default: one per core).
    pub http_workers: usize,
    /// `RAILYARD_WEBHOOK_PRIVATE_ALLOW`: private addresses (or networks, optionally with a port)
    /// that webhooks may reach; read by `state::Services::start`.
    pub webhook_private_allow: String,
    /// `RAILYARD_TRUSTED_PROXIES`: proxies (addresses or CIDR) whose `X-Forwarded-For` is
    /// believed for the client's address; read by `state::Services::start`.
    pub trusted_proxies: String,
    /// `RAILYARD_STATEMENT_HEADER=1`: every answer carries `X-Railyard-Statements`, the SQL
    /// statements its request sent (tests pin page budgets with it; off in production).
    pub statement_header: bool,
    /// Single sign-on through an OpenID Connect provider (`RAILYARD_OIDC_*`), if configured.
    pub oidc: Option<OidcSettings>,
}

/// The operator's OpenID Connect provider (DESIGN §10).
#[derive(Clone)]
pub struct OidcSettings {
    pub issuer: String,
    pub client_id: String,
    pub client_secret: String,
    /// The slug of the account whose people the provider serves.
    pub account: String,
    /// The log-in button's text: "Sign in with {label}".
    pub label: String,
    /// The ID token claim that lists the person's groups.
    pub groups_claim: String,
}

impl OidcSettings {
    /// `production`: the base URL is https; then so must the issuer be (tokens and keys would
    /// otherwise travel in clear).
    fn from_lookup(get: &impl Fn(&str) -> Option<String>, production: bool) -> Result<Option<OidcSettings>, ConfigError> {
        let names = ["RAILYARD_OIDC_ISSUER", "RAILYARD_OIDC_CLIENT_ID", "RAILYARD_OIDC_CLIENT_SECRET", "RAILYARD_OIDC_ACCOUNT"];
        let values: Vec<Option<String>> = names.iter().map(|n| get(n)).collect();
        if values.iter().all(Option::is_none) {
            return Ok(None);
        }
        if let Some(missing) = names.iter().zip(&values).find(|(_, v)| v.is_none()).map(|(n, _)| *n) {
            return Err(ConfigError::Invalid { name: missing, reason: "is needed with the other RAILYARD_OIDC_ settings".into() });
        }
        let [issuer, client_id, client_secret, account] = [0, 1, 2, 3].map(|i| values[i].clone().unwrap_or_default());
        let issuer = issuer.trim_end_matches('/').to_string();
        if !(issuer.starts_with("https://") || issuer.starts_with("http://")) {
            return Err(ConfigError::Invalid { name: "RAILYARD_OIDC_ISSUER", reason: "must be an http(s) URL".into() });
        }
        if production && !issuer.starts_with("https://") {
            return Err(ConfigError::Invalid {
                name: "RAILYARD_OIDC_ISSUER",
                reason: "must be an https URL when RAILYARD_BASE_URL is https (production)".into(),
            });
        }
        Ok(Some(OidcSettings {
            issuer,
            client_id,
            client_secret,
            account,
            label: get("RAILYARD_OIDC_LABEL").unwrap_or_else(|| "your company account".into()),
            groups_claim: get("RAILYARD_OIDC_GROUPS_CLAIM").unwrap_or_else(|| "groups".into()),
        }))
    }
}

impl fmt::Debug for OidcSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OidcSettings")
            .field("issuer", &self.issuer)
            .field("client_id", &self.client_id)
            .field("client_secret", &"<set>")
            .field("account", &self.account)
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for Settings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Settings")
            .field("bind", &self.bind)
            .field("base_url", &self.base_url)
            .field("secret_key", &self.secret_key.as_ref().map(|_| "<set>"))
            .field("smtp_url", &self.smtp_url.as_ref().map(|_| "<set>"))
            .field("retention_days", &self.retention_days)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("RAILYARD_SECRET_KEY is required when RAILYARD_BASE_URL is https (production); set it to at least {MIN_SECRET_KEY_BYTES} random bytes")]
    MissingSecretKey,
    #[error("RAILYARD_SECRET_KEY is {0} bytes long; it must be at least {MIN_SECRET_KEY_BYTES} bytes")]
    ShortSecretKey(usize),
    #[error("{name} is not valid: {reason}")]
    Invalid { name: &'static str, reason: String },
}

impl Settings {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok().filter(|v| !v.is_empty()))
    }

    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let bind = get("RAILYARD_BIND").unwrap_or_else(|| DEFAULT_BIND.to_string());
        let base_url = get("RAILYARD_BASE_URL").unwrap_or_else(|| format!("http://{bind}"));
        let base_url = base_url.trim_end_matches('/').to_string();
        if !(base_url.starts_with("http://") || base_url.starts_with("https://")) {
            return Err(ConfigError::Invalid { name: "RAILYARD_BASE_URL", reason: "must start with http:// or https://".into() });
        }
        let production = base_url.starts_with("https://");
        let secret_key = match get("RAILYARD_SECRET_KEY") {
            Some(key) if key.len() < MIN_SECRET_KEY_BYTES => {
                if production {
                    return Err(ConfigError::ShortSecretKey(key.len()));
                }
                tracing::warn!("RAILYARD_SECRET_KEY is shorter than {MIN_SECRET_KEY_BYTES} bytes; using the development key kept in the database instead");
                None
            }
            Some(key) => Some(key.into_bytes()),
            None if production => return Err(ConfigError::MissingSecretKey),
            None => None,
        };
        let retention_days = match get("RAILYARD_RETENTION_DAYS") {
            Some(v) => v.parse::<u32>().ok().filter(|d| *d > 0).ok_or(ConfigError::Invalid {
                name: "RAILYARD_RETENTION_DAYS",
                reason: format!("{v:?} is not a positive number of days"),
            })?,
            None => 365,
        };
        let pool_size = match get("RAILYARD_POOL_SIZE") {
            Some(v) => v
                .parse::<usize>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or(ConfigError::Invalid { name: "RAILYARD_POOL_SIZE", reason: format!("{v:?} is not a positive number") })?,
            None => 16,
        };
        let worker_pool_size = match get("RAILYARD_WORKER_POOL_SIZE") {
            Some(v) => v
                .parse::<usize>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or(ConfigError::Invalid { name: "RAILYARD_WORKER_POOL_SIZE", reason: format!("{v:?} is not a positive number") })?,
            None => 8,
        };
        let pool_wait = match get("RAILYARD_POOL_WAIT_MS") {
            Some(v) => std::time::Duration::from_millis(v.parse::<u64>().ok().filter(|n| *n > 0).ok_or(ConfigError::Invalid {
                name: "RAILYARD_POOL_WAIT_MS",
                reason: format!("{v:?} is not a positive number of milliseconds"),
            })?),
            None => std::time::Duration::from_secs(5),
        };
        let http_workers = match get("RAILYARD_HTTP_WORKERS") {
            Some(v) => v
                .parse::<usize>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or(ConfigError::Invalid { name: "RAILYARD_HTTP_WORKERS", reason: format!("{v:?} is not a positive number") })?,
            None => std::thread::available_parallelism().map_or(2, |n| n.get()),
        };
        let oidc = OidcSettings::from_lookup(&get, production)?;
        Ok(Self {
            oidc,
            http_workers,
            database_url: get("DATABASE_URL").unwrap_or_else(|| DEFAULT_DATABASE_URL.to_string()),
            bind,
            base_url,
            secret_key,
            smtp_url: get("SMTP_URL"),
            mail_from: get("RAILYARD_MAIL_FROM").unwrap_or_else(|| "Railyard <railyard@localhost.localdomain>".to_string()),
            retention_days,
            pool_size,
            worker_pool_size,
            pool_wait,
            webhook_private_allow: get("RAILYARD_WEBHOOK_PRIVATE_ALLOW").unwrap_or_default(),
            trusted_proxies: get("RAILYARD_TRUSTED_PROXIES").unwrap_or_default(),
            statement_header: get("RAILYARD_STATEMENT_HEADER").is_some_and(|v| v == "1" || v == "true"),
        })
    }

    pub fn is_production(&self) -> bool {
        self.base_url.starts_with("https://")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn settings(vars: &[(&str, &str)]) -> Result<Settings, ConfigError> {
        let map: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Settings::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn production_needs_a_long_secret_key() {
        assert!(matches!(settings(&[("RAILYARD_BASE_URL", "https://r.example.com")]), Err(ConfigError::MissingSecretKey)));
        assert!(matches!(
            settings(&[("RAILYARD_BASE_URL", "https://r.example.com"), ("RAILYARD_SECRET_KEY", "short")]),
            Err(ConfigError::ShortSecretKey(5))
        ));
        let key = "k".repeat(64);
        assert!(settings(&[("RAILYARD_BASE_URL", "https://r.example.com"), ("RAILYARD_SECRET_KEY", &key)]).is_ok());
    }

    #[test]
    fn production_needs_an_https_issuer() {
        let key = "k".repeat(64);
        let oidc = |issuer: &'static str| {
            [
                ("RAILYARD_OIDC_ISSUER", issuer),
                ("RAILYARD_OIDC_CLIENT_ID", "railyard"),
                ("RAILYARD_OIDC_CLIENT_SECRET", "s"),
                ("RAILYARD_OIDC_ACCOUNT", "acme"),
            ]
        };
        let mut vars = vec![("RAILYARD_BASE_URL", "https://r.example.com"), ("RAILYARD_SECRET_KEY", key.as_str())];
        vars.extend(oidc("http://idp.example.com"));
        assert!(matches!(settings(&vars), Err(ConfigError::Invalid { name: "RAILYARD_OIDC_ISSUER", .. })));
        let mut vars = vec![("RAILYARD_BASE_URL", "https://r.example.com"), ("RAILYARD_SECRET_KEY", key.as_str())];
        vars.extend(oidc("https://idp.example.com"));
        assert!(settings(&vars).is_ok());
        assert!(settings(&oidc("http://127.0.0.1:9000")).is_ok(), "plain http outside production (tests, a laptop)");
    }

    #[test]
    fn development_defaults() {
        let s = settings(&[]).expect("defaults");
        assert_eq!(s.bind, "127.0.0.1:8080");
        assert_eq!(s.base_url, "http://127.0.0.1:8080");
        assert!(s.secret_key.is_none());
        assert_eq!(s.retention_days, 365);
    }
}
