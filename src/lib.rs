//! Railyard: self-hosted release orchestration.

pub mod clock;
pub mod commands;
pub mod config;
pub mod db;
pub mod demo_ci;
pub mod domain;
pub mod engine;
pub mod notify;
pub mod ops;
pub mod outbound;
pub mod security;
pub mod seed;
pub mod startup;
pub mod state;
pub mod telemetry;
pub mod web;
pub mod worker;
