//! Request pipeline: security headers, metrics, and the session guard (principal + CSRF).

use actix_session::SessionExt;
use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::{header, Method, StatusCode};
use actix_web::middleware::{DefaultHeaders, Next};
use actix_web::{web, HttpMessage};

use super::error::{error_page, AppError};
use super::extractors::Principal;
use super::AppState;
use crate::db::models::users::principal_by_session;
use crate::security::constant_time_eq;

pub const SESSION_KEY: &str = "sid";
pub const PRELOGIN_CSRF_KEY: &str = "prelogin_csrf";
pub const CSRF_HEADER: &str = "X-CSRF-Token";
pub const CSRF_FIELD: &str = "csrf_token";

pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
     connect-src 'self'; form-action 'self'; base-uri 'none'; object-src 'none'; frame-ancestors 'none'";

/// Headers on every answer; on https (production) also HSTS, so browsers never try plain http.
pub fn security_headers(https: bool) -> DefaultHeaders {
    let headers = DefaultHeaders::new()
        .add((header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY))
        .add((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        // Sign-off and status links carry tokens in their paths: never leak them as referrers.
        .add((header::REFERRER_POLICY, "no-referrer"))
        .add((header::X_FRAME_OPTIONS, "DENY"));
    if https {
        headers.add((header::STRICT_TRANSPORT_SECURITY, "max-age=31536000; includeSubDomains"))
    } else {
        headers
    }
}

pub async fn record_metrics(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let state = req.app_data::<web::Data<AppState>>().cloned();
    let method = req.method().to_string();
    let started = std::time::Instant::now();
    let res = next.call(req).await?;
    if let Some(state) = state {
        let route = res.request().match_pattern().unwrap_or_else(|| "unmatched".to_string());
        state.metrics.record(&method, &route, res.status().as_u16());
        state.metrics.observe(&route, started.elapsed().as_secs_f64());
    }
    Ok(res)
}

pub const STATEMENTS_HEADER: &str = "X-Railyard-Statements";

/// Counts the SQL statements of each request (the session lookup included) and, when the
/// operator asks for it, names the count in a header.
pub async fn count_statements(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let expose = req.app_data::<web::Data<AppState>>().is_some_and(|s| s.settings.statement_header);
    let (res, statements) = crate::db::statements::counted(next.call(req)).await;
    let mut res = res?;
    if expose {
        res.headers_mut().insert(header::HeaderName::from_static("x-railyard-statements"), header::HeaderValue::from(statements));
    }
    Ok(res)
}

/// Paths that are not browser forms: they authenticate otherwise and take no CSRF token.
fn csrf_exempt(path: &str) -> bool {
    path.starts_with("/api/") || path.starts_with("/status/") || path == "/calendar.ics" || path == "/healthz" || path == "/metrics"
}

/// Loads the signed-in principal (one query) and checks the CSRF token of every unsafe request.
pub async fn session_guard(
    mut req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let path = req.path().to_string();
    if path.starts_with("/api/") || path.starts_with("/static/") || path == "/healthz" || path == "/metrics" {
        return next.call(req).await.map(ServiceResponse::map_into_left_body);
    }
    let Some(state) = req.app_data::<web::Data<AppState>>().cloned() else {
        return next.call(req).await.map(ServiceResponse::map_into_left_body);
    };
    let session = req.get_session();
    let mut csrf_expected: Option<String> = None;
    if let Ok(Some(token)) = session.get::<String>(SESSION_KEY) {
        let found = match state.pool.get().await {
            Ok(mut conn) => principal_by_session(&mut conn, &token, state.now()).await.map_err(|e| AppError::Unexpected(e.into())),
            Err(e) => Err(AppError::from(e)),
        };
        match found {
            Ok(Some(row)) => {
                csrf_expected = row.csrf_token.clone();
                req.extensions_mut().insert(Principal::from_row(row, Some(token)));
            }
            Ok(None) => {
                // Revoked, expired, or its user disabled: the cookie is worthless from now on.
                session.remove(SESSION_KEY);
            }
            Err(e) => {
                let response = actix_web::ResponseError::error_response(&e);
                return Ok(req.into_response(response).map_into_right_body());
            }
        }
    }
    let unsafe_method = !matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    if unsafe_method && !csrf_exempt(&path) {
        let expected = csrf_expected.or_else(|| session.get::<String>(PRELOGIN_CSRF_KEY).ok().flatten());
        let provided = match header_token(&req) {
            Some(t) => Some(t),
            None => form_token(&mut req).await,
        };
        let valid = matches!((&expected, &provided), (Some(e), Some(p)) if constant_time_eq(e, p));
        if !valid {
            let message = if provided.is_none() {
                "This form is missing its security token (CSRF). Reload the page and try again."
            } else {
                "This form's security token (CSRF) is not valid for your session. Reload the page and try again."
            };
            let response = error_page(StatusCode::FORBIDDEN, message.to_string());
            return Ok(req.into_response(response).map_into_right_body());
        }
    }
    next.call(req).await.map(ServiceResponse::map_into_left_body)
}

fn header_token(req: &ServiceRequest) -> Option<String> {
    req.headers().get(CSRF_HEADER).and_then(|v| v.to_str().ok()).map(str::to_string)
}

/// Reads `csrf_token` from a url-encoded form body and puts the body back for the handler.
async fn form_token(req: &mut ServiceRequest) -> Option<String> {
    let is_form = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/x-www-form-urlencoded"));
    if !is_form {
        return None;
    }
    let body = req.extract::<web::Bytes>().await.ok()?;
    let token = serde_urlencoded::from_bytes::<Vec<(String, String)>>(&body)
        .ok()
        .and_then(|pairs| pairs.into_iter().find(|(k, _)| k == CSRF_FIELD).map(|(_, v)| v));
    req.set_payload(actix_web::dev::Payload::from(body));
    token
}
