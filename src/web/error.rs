//! One web error type: the right status, and a page or the JSON error shape of DESIGN §10.

use actix_web::http::{header, StatusCode};
use actix_web::{HttpResponse, ResponseError};
use askama::Template;

use crate::domain::policy::Refusal;
use crate::domain::rule::RuleCode;
use crate::domain::validate::FieldErrors;
use crate::ops::OpError;

/// Where to go after logging in. Its `Debug` (what the request log prints for an error) is
/// redacted: the path may be a sign-off or status link whose token is a credential.
#[derive(Clone, PartialEq, Eq)]
pub struct NextPath(pub String);

impl std::fmt::Debug for NextPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", super::log_redaction::redact_target(&self.0))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("Not found")]
    NotFound,
    #[error("{0}")]
    Forbidden(String),
    #[error("Log in to continue")]
    LoginRequired { next: NextPath },
    #[error("A valid API token is required")]
    Unauthorized,
    #[error("{message}")]
    BadRequest { field: Option<String>, message: String },
    #[error("invalid input")]
    Invalid(FieldErrors),
    #[error("{message}")]
    Conflict { field: Option<String>, message: String },
    #[error("{message}")]
    Rule { code: RuleCode, field: Option<String>, message: String },
    #[error("Too many failed log-ins; try again in {retry_after} seconds")]
    TooManyRequests { retry_after: i64 },
    #[error("The request body is larger than {limit} bytes")]
    PayloadTooLarge { limit: usize },
    #[error("the definition is not valid")]
    Definition(Vec<crate::domain::process::DefinitionError>),
    #[error("This address answers only {allow}.")]
    MethodNotAllowed { allow: String },
    /// The database is out of reach or every connection is busy: try again shortly.
    #[error("The service is busy or its database is unavailable; try again in a few seconds.")]
    Unavailable(#[source] diesel_async::pooled_connection::deadpool::PoolError),
    #[error("unexpected error")]
    Unexpected(#[from] anyhow::Error),
}

impl From<diesel::result::Error> for AppError {
    fn from(e: diesel::result::Error) -> Self {
        match e {
            diesel::result::Error::NotFound => AppError::NotFound,
            e if crate::db::is_unstorable_text(&e) => AppError::BadRequest { field: None, message: crate::db::UNSTORABLE_TEXT.into() },
            other => AppError::Unexpected(other.into()),
        }
    }
}

impl From<diesel_async::pooled_connection::deadpool::PoolError> for AppError {
    /// Waiting too long for a connection, or PostgreSQL refusing new ones, is a 503 (the request
    /// may be tried again), not a server bug.
    fn from(e: diesel_async::pooled_connection::deadpool::PoolError) -> Self {
        use diesel_async::pooled_connection::deadpool::PoolError;
        match e {
            PoolError::Timeout(_) | PoolError::Backend(_) => {
                tracing::warn!(error = ?e, "no database connection");
                AppError::Unavailable(e)
            }
            other => AppError::Unexpected(anyhow::Error::new(other).context("database pool")),
        }
    }
}

impl From<Refusal> for AppError {
    fn from(r: Refusal) -> Self {
        AppError::Forbidden(r.0)
    }
}

impl From<OpError> for AppError {
    fn from(e: OpError) -> Self {
        match e {
            OpError::Invalid(errors) => AppError::Invalid(errors),
            OpError::NotFound => AppError::NotFound,
            OpError::Forbidden(m) => AppError::Forbidden(m),
            OpError::Duplicate { field, message } => AppError::Conflict { field: Some(field.to_string()), message },
            OpError::Rule { code, message, field } => AppError::Rule { code, field: field.map(str::to_string), message },
            OpError::Parse { field, message } => AppError::BadRequest { field, message },
            OpError::Conflict { message } => AppError::Conflict { field: None, message },
            OpError::Definition(errors) => AppError::Definition(errors),
            OpError::Throttled { retry_after_seconds } => AppError::TooManyRequests { retry_after: retry_after_seconds },
            OpError::Db(e) => e.into(),
            OpError::Unexpected(e) => AppError::Unexpected(e),
        }
    }
}

impl AppError {
    pub fn bad_request(field: &str, message: impl Into<String>) -> Self {
        AppError::BadRequest { field: Some(field.to_string()), message: message.into() }
    }

    fn code(&self) -> &str {
        match self {
            AppError::NotFound => "not_found",
            AppError::Forbidden(_) => "forbidden",
            AppError::LoginRequired { .. } | AppError::Unauthorized => "unauthorized",
            AppError::BadRequest { .. } => "bad_request",
            AppError::Invalid(_) => "invalid",
            AppError::Conflict { .. } => "conflict",
            AppError::Rule { code, .. } => code.as_str(),
            AppError::TooManyRequests { .. } => "too_many_requests",
            AppError::PayloadTooLarge { .. } => "payload_too_large",
            AppError::Unavailable(_) => "unavailable",
            AppError::MethodNotAllowed { .. } => "method_not_allowed",
            AppError::Definition(errors) => errors.first().map_or("invalid", |e| e.code),
            AppError::Unexpected(_) => "internal",
        }
    }

    fn field_and_message(&self) -> (Option<String>, String) {
        match self {
            AppError::BadRequest { field, message } | AppError::Conflict { field, message } | AppError::Rule { field, message, .. } => {
                (field.clone(), message.clone())
            }
            AppError::Definition(errors) => match errors.first() {
                Some(e) => (Some(e.path.clone()), e.message.clone()),
                None => (None, "the definition is not valid".into()),
            },
            AppError::Invalid(errors) => match errors.first() {
                Some((field, message)) => (Some(field.to_string()), format!("{field} {message}")),
                None => (None, "invalid input".into()),
            },
            other => (None, other.to_string()),
        }
    }

    /// Logs unexpected errors with their cause chain and returns the reference shown to the user.
    fn log_unexpected(&self) -> Option<String> {
        if let AppError::Unexpected(e) = self {
            let reference = crate::security::random_token(6);
            tracing::error!(reference = %reference, error = ?e, "unexpected error");
            Some(reference)
        } else {
            None
        }
    }

    pub fn json_response(&self) -> HttpResponse {
        let reference = self.log_unexpected();
        let (field, mut message) = self.field_and_message();
        if let Some(r) = reference {
            message = format!("An unexpected error occurred (reference {r}).");
        }
        let body = ErrorJson {
            error: ErrorDetailJson {
                code: self.code().to_string(),
                message,
                field,
                fields: match self {
                    AppError::Invalid(errors) => Some(errors.0.clone()),
                    _ => None,
                },
                errors: match self {
                    AppError::Definition(errors) => Some(
                        errors
                            .iter()
                            .map(|e| DefinitionErrorJson { code: e.code.to_string(), field: e.path.clone(), message: e.message.clone() })
                            .collect(),
                    ),
                    _ => None,
                },
            },
        };
        let mut response = HttpResponse::build(self.status_code());
        if let AppError::TooManyRequests { retry_after } = self {
            response.insert_header((header::RETRY_AFTER, retry_after.to_string()));
        }
        if let AppError::Unavailable(_) = self {
            response.insert_header((header::RETRY_AFTER, "5"));
        }
        if matches!(self, AppError::Unauthorized) {
            response.insert_header((header::WWW_AUTHENTICATE, "Bearer"));
        }
        response.json(body)
    }
}

/// The JSON error shape of DESIGN §10: `{error: {code, message, field?}}`.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct ErrorJson {
    pub error: ErrorDetailJson,
}

#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct ErrorDetailJson {
    /// What went wrong, for programs: `not_found`, `invalid`, `not_draft`, `missing_inputs`, …
    pub code: String,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// Every field error, by field (code `invalid`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fields: Option<std::collections::BTreeMap<String, String>>,
    /// Every definition error (a process definition refused).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub errors: Option<Vec<DefinitionErrorJson>>,
}

#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct DefinitionErrorJson {
    pub code: String,
    pub field: String,
    pub message: String,
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    status: u16,
    title: &'a str,
    message: String,
}

pub fn error_page(status: StatusCode, message: String) -> HttpResponse {
    let title = match status.as_u16() {
        403 => "Not allowed",
        404 => "Not found",
        409 => "Conflict",
        413 => "Too large",
        422 => "Not accepted",
        429 => "Too many attempts",
        400 => "Bad request",
        405 => "Method not allowed",
        503 => "Unavailable",
        _ => "Something went wrong",
    };
    let page = ErrorPage { status: status.as_u16(), title, message };
    match page.render() {
        Ok(html) => HttpResponse::build(status).content_type("text/html; charset=utf-8").body(html),
        Err(e) => {
            tracing::error!(error = ?e, "error page failed to render");
            HttpResponse::build(status).content_type("text/plain; charset=utf-8").body(page.message)
        }
    }
}

impl ResponseError for AppError {
    fn status_code(&self) -> StatusCode {
        match self {
            AppError::NotFound => StatusCode::NOT_FOUND,
            AppError::Forbidden(_) => StatusCode::FORBIDDEN,
            AppError::LoginRequired { .. } => StatusCode::SEE_OTHER,
            AppError::Unauthorized => StatusCode::UNAUTHORIZED,
            AppError::BadRequest { .. } => StatusCode::BAD_REQUEST,
            AppError::Rule { code, .. } if code.is_state_conflict() => StatusCode::CONFLICT,
            AppError::Rule { code, .. } if code.is_forbidden() => StatusCode::FORBIDDEN,
            AppError::Invalid(_) | AppError::Rule { .. } | AppError::Definition(_) => StatusCode::UNPROCESSABLE_ENTITY,
            AppError::Conflict { .. } => StatusCode::CONFLICT,
            AppError::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            AppError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            AppError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            AppError::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            AppError::Unexpected(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        if let AppError::LoginRequired { next } = self {
            let location = format!("/login?next={}", percent_encode(&next.0));
            return HttpResponse::SeeOther()
                .insert_header((header::LOCATION, location.clone()))
                .insert_header(("HX-Redirect", location))
                .finish();
        }
        let reference = self.log_unexpected();
        let message = match reference {
            Some(r) => format!("An unexpected error occurred. Reference: {r}"),
            None => match self {
                AppError::NotFound => "The page or object you asked for does not exist, or is not yours to see.".to_string(),
                AppError::Invalid(errors) => errors.0.iter().map(|(f, m)| format!("{f} {m}")).collect::<Vec<_>>().join("; "),
                AppError::Definition(errors) => errors.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("; "),
                other => other.to_string(),
            },
        };
        let mut response = error_page(self.status_code(), message);
        if let AppError::Unavailable(_) = self {
            response.headers_mut().insert(header::RETRY_AFTER, header::HeaderValue::from_static("5"));
        }
        if let AppError::TooManyRequests { retry_after } = self {
            if let Ok(v) = header::HeaderValue::from_str(&retry_after.to_string()) {
                response.headers_mut().insert(header::RETRY_AFTER, v);
            }
        }
        response
    }
}

/// The same error rendered as the JSON error shape, for `/api/v1`.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct ApiError(#[from] pub AppError);

impl From<diesel::result::Error> for ApiError {
    fn from(e: diesel::result::Error) -> Self {
        ApiError(e.into())
    }
}
impl From<diesel_async::pooled_connection::deadpool::PoolError> for ApiError {
    fn from(e: diesel_async::pooled_connection::deadpool::PoolError) -> Self {
        ApiError(e.into())
    }
}
impl From<Refusal> for ApiError {
    fn from(e: Refusal) -> Self {
        ApiError(e.into())
    }
}
impl From<OpError> for ApiError {
    fn from(e: OpError) -> Self {
        ApiError(e.into())
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.0.status_code()
    }
    fn error_response(&self) -> HttpResponse {
        self.0.json_response()
    }
}

pub fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => out.push(b as char),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_log_never_sees_the_token_of_a_link_that_asks_to_log_in() {
        let e = AppError::LoginRequired { next: NextPath("/signoff/secret-token-123".into()) };
        let logged = format!("{e:?}");
        assert!(!logged.contains("secret-token-123"), "{logged}");
        assert!(e.error_response().headers().get("location").is_some_and(|l| l.to_str().unwrap_or("").contains("secret-token-123")));
    }
}
