//! Row types that own their queries. Every tenant query filters by `account_id`.

pub mod accounts;
pub mod catalog;
pub mod processes;
pub mod releases;
pub mod users;
