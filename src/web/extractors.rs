//! The current user (page session or API token), htmx detection, and the API's JSON body.

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{web, FromRequest, HttpMessage, HttpRequest};
use futures_util::StreamExt;
use serde::de::DeserializeOwned;
use std::future::Future;
use std::ops::Deref;
use std::pin::Pin;

use super::error::{ApiError, AppError};
use super::{AppState, JSON_LIMIT_BYTES};
use crate::db::models::users::{principal_by_api_token, AuthRow, RoleJson};
use crate::domain::policy::{self, Action, Binding, Role, Scope};
use crate::ops::{Actor, Requester};

/// A signed-in user with every role binding, loaded in one query.
#[derive(Debug, Clone)]
pub struct Principal {
    pub user_id: i64,
    pub account_id: i64,
    pub account_slug: String,
    pub email: String,
    pub name: String,
    pub time_zone: String,
    pub roles: Vec<RoleJson>,
    pub bindings: Vec<Binding>,
    /// The CSRF token of the browser session; `None` for API tokens.
    pub csrf_token: Option<String>,
    pub session_token: Option<String>,
    /// Unread in-app notifications (loaded with the session, for the layout).
    pub unread: i64,
    /// The database's snapshot when the user was loaded (`ops::read_cache`).
    pub snapshot: String,
}

impl Principal {
    pub fn from_row(row: AuthRow, session_token: Option<String>) -> Self {
        Self {
            bindings: row.bindings(),
            roles: row.role_list(),
            user_id: row.user_id,
            account_id: row.account_id,
            account_slug: row.account_slug,
            email: row.email,
            name: row.name,
            time_zone: row.time_zone,
            csrf_token: row.csrf_token,
            unread: row.unread,
            snapshot: row.snapshot,
            session_token,
        }
    }

    /// The policy check every route goes through; a refusal says why (403).
    pub fn require(&self, action: Action, scope: Scope) -> Result<(), AppError> {
        policy::require(&self.bindings, action, scope).map_err(AppError::from)
    }

    pub fn may(&self, action: Action, scope: Scope) -> bool {
        policy::allows(&self.bindings, action, scope)
    }

    /// Allowed at account level or in one of the user's orgs: whether to offer the action.
    pub fn may_somewhere(&self, action: Action) -> bool {
        self.may(action, Scope::Account) || self.bindings.iter().filter_map(|b| b.org).any(|o| self.may(action, Scope::Org(o)))
    }

    pub fn actor(&self) -> Actor {
        Actor::user(self.user_id, self.account_id, &self.email)
    }

    /// This user asking for a change as `actor` (made by `actor()`).
    pub fn requester<'a>(&'a self, actor: &'a Actor) -> Requester<'a> {
        Requester { actor, bindings: &self.bindings, time_zone: &self.time_zone }
    }

    /// How fresh what this request reads must be (`ops::read_cache`).
    pub fn reading(&self, now: chrono::DateTime<chrono::Utc>) -> crate::ops::read_cache::Reading<'_> {
        crate::ops::read_cache::Reading { snapshot: &self.snapshot, now }
    }

    pub fn is_admin(&self) -> bool {
        self.bindings.iter().any(|b| b.role == Role::AccountAdmin)
    }

    /// The user's time zone (UTC if the stored name is unknown).
    pub fn zone(&self) -> chrono_tz::Tz {
        self.time_zone.parse().unwrap_or(chrono_tz::UTC)
    }
}

/// The user of a browser session; anonymous requests are sent to `/login?next=…`.
#[derive(Debug, Clone)]
pub struct CurrentUser(pub Principal);

impl Deref for CurrentUser {
    type Target = Principal;
    fn deref(&self) -> &Principal {
        &self.0
    }
}

impl FromRequest for CurrentUser {
    type Error = AppError;
    type Future = std::future::Ready<Result<Self, AppError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let found = req.extensions().get::<Principal>().cloned();
        std::future::ready(match found {
            Some(p) => Ok(CurrentUser(p)),
            None => {
                let next = match req.uri().path_and_query() {
                    Some(pq) if req.method() == actix_web::http::Method::GET => pq.as_str().to_string(),
                    _ => "/".to_string(),
                };
                Err(AppError::LoginRequired { next: crate::web::error::NextPath(next) })
            }
        })
    }
}

/// The user behind `Authorization: Bearer <token>` (401 otherwise, also for a disabled user).
#[derive(Debug, Clone)]
pub struct ApiUser(pub Principal);

impl Deref for ApiUser {
    type Target = Principal;
    fn deref(&self) -> &Principal {
        &self.0
    }
}

impl ApiUser {
    pub fn require(&self, action: Action, scope: Scope) -> Result<(), ApiError> {
        self.0.require(action, scope).map_err(ApiError)
    }
}

impl FromRequest for ApiUser {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let token = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
            .map(|t| t.trim().to_string());
        let state = req.app_data::<web::Data<AppState>>().cloned();
        Box::pin(async move {
            let (Some(token), Some(state)) = (token, state) else { return Err(ApiError(AppError::Unauthorized)) };
            if token.is_empty() || token.len() > 200 {
                return Err(ApiError(AppError::Unauthorized));
            }
            let mut conn = state.db().await?;
            match principal_by_api_token(&mut conn, &token, state.now()).await? {
                Some(row) => Ok(ApiUser(Principal::from_row(row, None))),
                None => Err(ApiError(AppError::Unauthorized)),
            }
        })
    }
}

/// Whether htmx sent the request (and it is not a history restore, which needs a full page).
#[derive(Debug, Clone, Copy)]
pub struct Htmx(pub bool);

impl FromRequest for Htmx {
    type Error = actix_web::Error;
    type Future = std::future::Ready<Result<Self, actix_web::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let h = |name: &str| req.headers().get(name).is_some_and(|v| v == "true");
        std::future::ready(Ok(Htmx(h("HX-Request") && !h("HX-History-Restore-Request"))))
    }
}

/// A JSON body parsed with the path of the field that failed (400), bounded in size (413).
#[derive(Debug)]
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned + 'static> FromRequest for ApiJson<T> {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let declared = req.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<usize>().ok());
        let is_json = req.content_type() == "application/json" || req.content_type().is_empty();
        let mut payload = payload.take();
        Box::pin(async move {
            let too_large = ApiError(AppError::PayloadTooLarge { limit: JSON_LIMIT_BYTES });
            if declared.is_some_and(|n| n > JSON_LIMIT_BYTES) {
                return Err(too_large);
            }
            if !is_json {
                return Err(ApiError(AppError::BadRequest {
                    field: None,
                    message: "the body must be JSON (Content-Type: application/json)".into(),
                }));
            }
            let mut body = web::BytesMut::new();
            while let Some(chunk) = payload.next().await {
                let chunk =
                    chunk.map_err(|e| ApiError(AppError::BadRequest { field: None, message: format!("could not read the body: {e}") }))?;
                if body.len() + chunk.len() > JSON_LIMIT_BYTES {
                    return Err(too_large);
                }
                body.extend_from_slice(&chunk);
            }
            // Every API body is a JSON object; serde would also read a struct from an array.
            if body.iter().find(|b| !b.is_ascii_whitespace()).is_some_and(|b| *b != b'{') {
                return Err(ApiError(AppError::BadRequest { field: None, message: "the body must be a JSON object".into() }));
            }
            parse_json(&body).map(ApiJson)
        })
    }
}

pub fn parse_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    let mut de = serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        // A syntax error is about the body (its line and column), not about a field.
        if inner.is_syntax() || inner.is_eof() {
            return ApiError(AppError::BadRequest { field: None, message: format!("malformed JSON: {inner}") });
        }
        let field = (path != ".").then(|| path.clone());
        let message = match &field {
            Some(f) => format!("{f}: {inner}"),
            None => inner.to_string(),
        };
        ApiError(AppError::BadRequest { field, message })
    })
}

/// The client address used for log-in throttling: the socket's peer, or what a trusted proxy
/// (`RAILYARD_TRUSTED_PROXIES`) says in `X-Forwarded-For`.
pub fn client_addr(req: &HttpRequest, trusted: &[crate::domain::network::PrivateAllow]) -> String {
    let Some(peer) = req.peer_addr().map(|a| a.ip()) else { return "unknown".into() };
    let forwarded = req.headers().get("X-Forwarded-For").and_then(|v| v.to_str().ok());
    crate::domain::network::client_address(peer, forwarded, trusted).to_string()
}
