//! `/releases`: list and archive, the release form (new and draft edit), the detail page with
//! its status tree and audit trail, and the lifecycle buttons.

mod actions;
mod detail;
mod form;
pub mod instances;
mod list;
mod pipeline;

pub use actions::*;
pub use detail::*;
pub use form::*;
pub use list::*;

use chrono::{DateTime, Utc};

pub(super) use super::local;

pub(super) fn local_input(t: Option<DateTime<Utc>>, zone: &str) -> String {
    let tz: chrono_tz::Tz = zone.parse().unwrap_or(chrono_tz::UTC);
    t.map(|t| t.with_timezone(&tz).format("%Y-%m-%dT%H:%M").to_string()).unwrap_or_default()
}
