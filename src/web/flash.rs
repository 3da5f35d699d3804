//! One-shot messages shown on the next page (POST → 303 → page with flash).

use actix_session::Session;
use serde::{Deserialize, Serialize};

const KEY: &str = "flash";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Flash {
    pub level: String,
    pub message: String,
}

const MAX_MESSAGES: usize = 4;
const MAX_MESSAGE_CHARS: usize = 400;

pub fn push(session: &Session, level: &str, message: impl Into<String>) {
    let mut all: Vec<Flash> = session.get(KEY).ok().flatten().unwrap_or_default();
    // The session lives in a cookie (at most 4 KB): keep the newest few messages, each short.
    let mut message: String = message.into();
    if message.chars().count() > MAX_MESSAGE_CHARS {
        message = message.chars().take(MAX_MESSAGE_CHARS).chain(std::iter::once('…')).collect();
    }
    all.push(Flash { level: level.to_string(), message });
    if all.len() > MAX_MESSAGES {
        all.drain(..all.len() - MAX_MESSAGES);
    }
    if let Err(e) = session.insert(KEY, all) {
        tracing::warn!(error = ?e, "could not store a flash message");
    }
}

pub fn success(session: &Session, message: impl Into<String>) {
    push(session, "success", message)
}

pub fn take(session: &Session) -> Vec<Flash> {
    session.remove_as::<Vec<Flash>>(KEY).and_then(Result::ok).unwrap_or_default()
}

/// Whether messages wait to be shown (a page that would show them must render).
pub fn pending(session: &Session) -> bool {
    session.get::<Vec<Flash>>(KEY).ok().flatten().is_some_and(|all| !all.is_empty())
}
