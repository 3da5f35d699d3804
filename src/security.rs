//! Password hashing (argon2id, off the async threads) and random/hashed tokens (SHA-256).

use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::{Algorithm, Argon2, Params, Version};
use base64::Engine;
use rand::RngCore;
use sha2::{Digest, Sha256};
use std::sync::OnceLock;

fn hasher() -> Argon2<'static> {
    // Tests and demo seeding may use lighter parameters; production keeps the library defaults.
    let params = if std::env::var("RAILYARD_FAST_PASSWORD_HASH").is_ok_and(|v| v == "1") {
        Params::new(1024, 1, 1, None).unwrap_or_default()
    } else {
        Params::default()
    };
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

#[derive(Debug, thiserror::Error)]
#[error("password hashing failed: {0}")]
pub struct HashError(String);

pub fn hash_password_blocking(password: &str) -> Result<String, HashError> {
    hasher().hash_password(password.as_bytes()).map(|h| h.to_string()).map_err(|e| HashError(e.to_string()))
}

/// Checks a password against a PHC string; `None` (unknown user) still costs one full verification.
pub fn verify_password_blocking(password: &str, phc: Option<&str>) -> bool {
    let dummy = dummy_hash();
    let (candidate, known) = match phc {
        Some(p) => (p, true),
        None => (dummy.as_str(), false),
    };
    let ok = match PasswordHash::new(candidate) {
        Ok(parsed) => hasher().verify_password(password.as_bytes(), &parsed).is_ok(),
        Err(_) => false,
    };
    ok && known
}

fn dummy_hash() -> &'static String {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| hash_password_blocking("railyard-timing-equaliser").unwrap_or_default())
}

pub async fn hash_password(password: String) -> Result<String, HashError> {
    tokio::task::spawn_blocking(move || hash_password_blocking(&password)).await.map_err(|e| HashError(e.to_string()))?
}

pub async fn verify_password(password: String, phc: Option<String>) -> bool {
    tokio::task::spawn_blocking(move || verify_password_blocking(&password, phc.as_deref())).await.unwrap_or(false)
}

/// A URL-safe random token of `bytes` random bytes (≥ 16 bytes = 128 bits everywhere we use it).
pub fn random_token(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut buf);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(buf)
}

pub fn random_bytes(n: usize) -> Vec<u8> {
    let mut buf = vec![0u8; n];
    rand::rng().fill_bytes(&mut buf);
    buf
}

pub fn sha256_hex(input: &str) -> String {
    hex::encode(Sha256::digest(input.as_bytes()))
}

/// Equal-time comparison for secrets held in memory (CSRF tokens).
pub fn constant_time_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argon2id_round_trip() {
        let h = hash_password_blocking("correct horse").expect("hash");
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_password_blocking("correct horse", Some(&h)));
        assert!(!verify_password_blocking("wrong", Some(&h)));
        assert!(!verify_password_blocking("correct horse", None));
    }

    #[test]
    fn tokens_are_long_and_distinct() {
        let a = random_token(32);
        assert!(a.len() >= 43);
        assert_ne!(a, random_token(32));
        assert_eq!(sha256_hex("abc").len(), 64);
        assert!(constant_time_eq("abc", "abc") && !constant_time_eq("abc", "abd"));
    }
}
