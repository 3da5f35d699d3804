//! HTTP-level tests of the foundation: log-in, sessions, CSRF, policy, tenancy, audit, input.

#[path = "../common/mod.rs"]
mod common;

mod audit;
mod auth;
mod calendar;
mod catalog;
mod changes;
mod csrf;
mod engine;
mod hostile;
mod matrix;
mod notify;
mod policy;
mod processes;
mod release_groups;
mod releases;
mod reports;
mod security;
mod sso;
mod statements;
mod system_releases;
mod tenancy;
mod tokens;
mod validation;
mod webhooks;
