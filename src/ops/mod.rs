//! Use cases shared by pages, the API and the CLI: validate, change, audit — in one transaction.

pub mod accounts;
pub mod activities;
pub mod activity_talk;
pub mod audit_trail;
pub mod board;
pub mod calendar;
pub mod catalog;
pub mod context;
pub mod dashboard;
pub mod freezes;
pub mod locks;
pub mod outbox;
pub mod outcomes;
pub mod process_lifecycle;
pub mod processes;
pub mod profile;
pub mod read_cache;
pub mod release_groups;
pub mod releases;
pub mod reports;
pub mod results;
pub mod sessions;
pub mod settings;
pub mod sso;
pub mod status_links;
pub mod tokens;
pub mod users;
pub mod work;

use crate::domain::rule::RuleCode;
use crate::domain::validate::FieldErrors;

/// Who performs an operation, as written on the audit trail.
#[derive(Debug, Clone)]
pub struct Actor {
    pub user_id: Option<i64>,
    pub account_id: i64,
    pub label: String,
}

impl Actor {
    pub fn user(user_id: i64, account_id: i64, email: &str) -> Self {
        Self { user_id: Some(user_id), account_id, label: format!("user:{email}") }
    }
    pub fn system(account_id: i64, what: &str) -> Self {
        Self { user_id: None, account_id, label: format!("system:{what}") }
    }
}

/// Who asks for a change through a page or the API: the actor on the audit trail, their rights,
/// and the time zone they type times in.
#[derive(Debug, Clone, Copy)]
pub struct Requester<'a> {
    pub actor: &'a Actor,
    pub bindings: &'a [crate::domain::policy::Binding],
    pub time_zone: &'a str,
}

#[derive(Debug, thiserror::Error)]
pub enum OpError {
    #[error("invalid input")]
    Invalid(FieldErrors),
    #[error("not found")]
    NotFound,
    /// Not allowed for this person, with the reason.
    #[error("{0}")]
    Forbidden(String),
    #[error("{message}")]
    Duplicate { field: &'static str, message: String },
    /// Someone else changed it first (optimistic locking).
    #[error("{message}")]
    Conflict { message: String },
    #[error("{message}")]
    Rule { code: RuleCode, message: String, field: Option<&'static str> },
    /// The text could not be read: names the line (YAML) or the field (JSON).
    #[error("{message}")]
    Parse { field: Option<String>, message: String },
    /// Too many wrong guesses (a password): try again after this many seconds.
    #[error("too many attempts; try again in {retry_after_seconds} s")]
    Throttled { retry_after_seconds: i64 },
    /// A process definition broke save-time rules; each error names its item.
    #[error("the definition is not valid")]
    Definition(Vec<crate::domain::process::DefinitionError>),
    #[error(transparent)]
    Db(diesel::result::Error),
    /// Something that should not happen; the cause is kept for the log.
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

impl From<diesel::result::Error> for OpError {
    fn from(e: diesel::result::Error) -> Self {
        match e {
            diesel::result::Error::NotFound => OpError::NotFound,
            other => OpError::Db(other),
        }
    }
}

impl From<crate::domain::policy::Refusal> for OpError {
    fn from(r: crate::domain::policy::Refusal) -> Self {
        OpError::Forbidden(r.0)
    }
}

impl From<FieldErrors> for OpError {
    fn from(e: FieldErrors) -> Self {
        OpError::Invalid(e)
    }
}

/// The reason a person gives for an action (abort, run now, override, retry): required, within
/// DESIGN §9's limit, named `reason` when refused.
pub fn required_reason(reason: &str) -> Result<String, OpError> {
    crate::domain::validate::required_text(reason, crate::domain::validate::MAX_COMMENT_LEN).map_err(|m| OpError::invalid("reason", m))
}

impl OpError {
    /// A request parameter that could not be read (HTTP 400), naming it.
    pub fn parse(field: &str, message: impl Into<String>) -> Self {
        OpError::Parse { field: Some(field.to_string()), message: message.into() }
    }

    pub fn invalid(field: &str, message: impl Into<String>) -> Self {
        let mut errors = FieldErrors::new();
        errors.add(field, message);
        OpError::Invalid(errors)
    }

    /// Field errors to show on a form; `None` for errors that are not about a field.
    pub fn field_errors(&self) -> Option<FieldErrors> {
        match self {
            OpError::Invalid(errors) => Some(errors.clone()),
            OpError::Duplicate { field, message } => {
                let mut errors = FieldErrors::new();
                errors.add(field, message.clone());
                Some(errors)
            }
            OpError::Rule { field: Some(field), message, .. } => {
                let mut errors = FieldErrors::new();
                errors.add(field, message.clone());
                Some(errors)
            }
            _ => None,
        }
    }
}

/// Maps a unique-key violation to a message about the field the user typed.
pub fn duplicate(e: diesel::result::Error, field: &'static str, message: impl FnOnce() -> String) -> OpError {
    match e {
        diesel::result::Error::DatabaseError(diesel::result::DatabaseErrorKind::UniqueViolation, _) => {
            OpError::Duplicate { field, message: message() }
        }
        other => other.into(),
    }
}
