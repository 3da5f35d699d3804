//! What the engine, notification delivery and the web server share: the pool, the clock, the
//! settings and the key for secrets. It lives below `web`, so a worker-only process builds no
//! web state; `web::AppState` wraps it.

use anyhow::Context;

use crate::clock::SharedClock;
use crate::config::Settings;
use crate::db::{self, DbPool};
use crate::security::SecretBox;

#[derive(Clone)]
pub struct Services {
    pub pool: DbPool,
    pub clock: SharedClock,
    pub settings: Settings,
    pub secrets: SecretBox,
    /// Private addresses the operator lets webhooks reach (DESIGN §9).
    pub private_allow: Vec<crate::domain::network::PrivateAllow>,
    /// Proxies whose `X-Forwarded-For` names the client (log-in throttling).
    pub trusted_proxies: Vec<crate::domain::network::PrivateAllow>,
    /// Parsed process versions for the engine (`ops::releases::DefinitionCache`).
    pub definitions: std::sync::Arc<crate::db::models::processes::DefinitionCache>,
    /// Wakes this process's send loop when the engine may have queued webhook attempts.
    pub send_wake: std::sync::Arc<tokio::sync::Notify>,
    /// Rounds of this process now starting what is due: the send loop claims nothing new
    /// meanwhile, so a burst of due releases starts before its webhooks go out.
    pub starting: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    /// When each worker of this process last wrote its heartbeat, by `clock` (`worker::beat`).
    pub beats: std::sync::Arc<std::sync::Mutex<std::collections::HashMap<String, chrono::DateTime<chrono::Utc>>>>,
}

impl Services {
    /// Migrates the database, opens the pool and loads (or creates) the secret key.
    pub async fn start(settings: Settings, clock: SharedClock) -> anyhow::Result<(Services, Vec<u8>)> {
        let private_allow = crate::domain::network::PrivateAllow::parse_list(&settings.webhook_private_allow)
            .map_err(|e| anyhow::anyhow!("RAILYARD_WEBHOOK_PRIVATE_ALLOW is not valid: {e}"))?;
        let trusted_proxies = crate::domain::network::PrivateAllow::parse_list(&settings.trusted_proxies)
            .ok()
            .filter(|list| list.iter().all(|p| matches!(p.target, crate::domain::network::Target::Network { .. }) && p.port.is_none()))
            .ok_or_else(|| anyhow::anyhow!("RAILYARD_TRUSTED_PROXIES must list addresses or networks (10.0.0.0/8), comma-separated"))?;
        db::run_migrations(&settings.database_url).await?;
        let pool = db::build_pool(&settings.database_url, settings.pool_size, settings.pool_wait)?;
        let secret = {
            let mut conn = pool.get().await.context("connecting to the database")?;
            db::secret_key(&mut conn, settings.secret_key.clone(), clock.now()).await?
        };
        let secrets = SecretBox::derive(&secret);
        Ok((
            Services {
                pool,
                clock,
                settings,
                secrets,
                private_allow,
                trusted_proxies,
                definitions: Default::default(),
                send_wake: Default::default(),
                starting: Default::default(),
                beats: Default::default(),
            },
            secret,
        ))
    }

    /// The same services on a pool of their own (`RAILYARD_WORKER_POOL_SIZE`), for the worker:
    /// a flood of web requests (anonymous ones included) never delays claims or a send's
    /// result, which would then be sent again.
    pub fn with_worker_pool(&self) -> anyhow::Result<Services> {
        let pool = db::build_pool(&self.settings.database_url, self.settings.worker_pool_size, self.settings.pool_wait)?;
        Ok(Services { pool, ..self.clone() })
    }

    pub fn now(&self) -> chrono::DateTime<chrono::Utc> {
        self.clock.now()
    }
}
