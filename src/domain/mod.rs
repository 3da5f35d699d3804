//! Pure domain logic: no I/O, unit- and property-tested.

pub mod audit;
pub mod engine;
pub mod insights;
pub mod masking;
pub mod network;
pub mod pipeline;
pub mod policy;
pub mod process;
pub mod release;
pub mod rule;
pub mod schedule;
pub mod signoff;
pub mod sso;
pub mod validate;
