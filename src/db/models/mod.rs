//! Row types that own their queries. Every tenant query filters by `account_id`.

pub mod accounts;
pub mod api_tokens;
pub mod calendar;
pub mod catalog;
pub mod deployments;
pub mod outbox;
pub mod processes;
pub mod releases;
pub mod signoff_tokens;
pub mod sso;
pub mod users;
pub mod webhook_attempts;
