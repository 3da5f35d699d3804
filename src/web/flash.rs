//! One-shot messages shown on the next page (POST → 303 → page with flash).

use actix_session::Session;
use serde::{Deserialize, Serialize};

const KEY: &str = "flash";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Flash {
    pub level: String,
    pub message: String,
}

pub fn push(session: &Session, level: &str, message: impl Into<String>) {
    let mut all: Vec<Flash> = session.get(KEY).ok().flatten().unwrap_or_default();
    all.push(Flash { level: level.to_string(), message: message.into() });
    if let Err(e) = session.insert(KEY, all) {
        tracing::warn!(error = %e, "could not store a flash message");
    }
}

pub fn success(session: &Session, message: impl Into<String>) {
    push(session, "success", message)
}

pub fn take(session: &Session) -> Vec<Flash> {
    session.remove_as::<Vec<Flash>>(KEY).and_then(Result::ok).unwrap_or_default()
}
