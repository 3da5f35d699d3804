//! `Application::build`: pool, migrations, secret key, routes, middleware.

use actix_session::config::CookieContentSecurity;
use actix_session::storage::CookieSessionStore;
use actix_session::SessionMiddleware;
use actix_web::cookie::{Key, SameSite};
use actix_web::dev::Server;
use actix_web::middleware::from_fn;
use actix_web::web as aweb;
use actix_web::{App, HttpServer};
use sha2::{Digest, Sha512};
use std::net::TcpListener;

use crate::clock::SharedClock;
use crate::config::Settings;
use crate::state::Services;
use crate::web::error::{ApiError, AppError};
use crate::web::{self, AppState, FORM_LIMIT_BYTES};

pub struct Application {
    server: Server,
    port: u16,
    pub state: aweb::Data<AppState>,
}

/// The listener, with a plain message when the port is taken.
pub fn bind(address: &str) -> anyhow::Result<TcpListener> {
    TcpListener::bind(address).map_err(|e| {
        if e.kind() == std::io::ErrorKind::AddrInUse {
            anyhow::anyhow!(
                "{address} is already in use — is Railyard (or something else) already running there? Stop it or set RAILYARD_BIND."
            )
        } else {
            anyhow::Error::new(e).context(format!("cannot listen on {address}"))
        }
    })
}

impl Application {
    pub async fn build(settings: Settings, clock: SharedClock) -> anyhow::Result<Application> {
        let listener = bind(&settings.bind)?;
        Self::build_with_listener(settings, clock, listener).await
    }

    pub async fn build_with_listener(mut settings: Settings, clock: SharedClock, listener: TcpListener) -> anyhow::Result<Application> {
        let port = listener.local_addr()?.port();
        if settings.bind.ends_with(":0") && settings.base_url.ends_with(":0") {
            settings.base_url = format!("http://127.0.0.1:{port}");
        }
        let (services, secret) = Services::start(settings, clock).await?;
        // Any secret length works: the signing key is derived with SHA-512 (64 bytes).
        let key = Key::from(&Sha512::digest(&secret));
        let secure_cookies = services.settings.is_production();
        let http_workers = services.settings.http_workers;
        let sso = match services.settings.oidc.clone() {
            Some(oidc) => Some(crate::web::sso::Sso::start(oidc, &services.settings.base_url).await?),
            None => None,
        };
        let state = aweb::Data::new(AppState::new(services, sso));
        let app_state = state.clone();
        let server = HttpServer::new(move || {
            let session = SessionMiddleware::builder(CookieSessionStore::default(), key.clone())
                .cookie_name("railyard_session".into())
                .cookie_http_only(true)
                .cookie_same_site(SameSite::Lax)
                .cookie_secure(secure_cookies)
                .cookie_content_security(CookieContentSecurity::Signed)
                .build();
            App::new()
                .app_data(app_state.clone())
                .app_data(aweb::FormConfig::default().limit(FORM_LIMIT_BYTES).error_handler(|err, _req| {
                    let message = err.to_string();
                    match err {
                        actix_web::error::UrlencodedError::Overflow { .. } => AppError::PayloadTooLarge { limit: FORM_LIMIT_BYTES }.into(),
                        _ => AppError::BadRequest { field: None, message }.into(),
                    }
                }))
                .app_data(aweb::PathConfig::default().error_handler(|err, req| {
                    let e = AppError::BadRequest { field: Some("path".into()), message: err.to_string() };
                    if req.path().starts_with("/api/") {
                        ApiError(e).into()
                    } else {
                        e.into()
                    }
                }))
                .app_data(aweb::QueryConfig::default().error_handler(|err, req| {
                    let e = AppError::BadRequest { field: Some("query".into()), message: err.to_string() };
                    if req.path().starts_with("/api/") {
                        ApiError(e).into()
                    } else {
                        e.into()
                    }
                }))
                .wrap(from_fn(web::middleware::session_guard))
                .wrap(from_fn(web::middleware::count_statements))
                .wrap(session)
                .wrap(web::middleware::security_headers(secure_cookies))
                .wrap(from_fn(web::middleware::record_metrics))
                .wrap(tracing_actix_web::TracingLogger::<web::log_redaction::RedactedSpan>::new())
                .configure(web::routes)
        })
        .workers(http_workers)
        .listen(listener)?
        .run();
        Ok(Application { server, port, state })
    }

    pub fn handle(&self) -> actix_web::dev::ServerHandle {
        self.server.handle()
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.server.await
    }
}
