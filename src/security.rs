//! Password hashing (argon2id, off the async threads) and random/hashed tokens (SHA-256).

use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::{Algorithm, Argon2, Params, Version};
use base64::Engine;
use rand::RngCore;
use sha2::{Digest, Sha256};
use std::sync::OnceLock;

/// Tests and demo seeding may use lighter parameters; production (an https base URL, as in
/// `config`) never does, whatever the environment says.
pub fn fast_hash_allowed(fast: Option<&str>, base_url: Option<&str>) -> bool {
    fast == Some("1") && !base_url.is_some_and(|u| u.trim().starts_with("https://"))
}

fn hasher() -> Argon2<'static> {
    let fast = std::env::var("RAILYARD_FAST_PASSWORD_HASH").ok();
    let base = std::env::var("RAILYARD_BASE_URL").ok();
    let params = if fast_hash_allowed(fast.as_deref(), base.as_deref()) {
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

/// Checks a password against a PHC string. `None` (unknown user) and a stored value that is no
/// hash (a user made by single sign-on has none) still cost one full verification, so the time
/// of an answer says nothing about who exists.
pub fn verify_password_blocking(password: &str, phc: Option<&str>) -> bool {
    let dummy = dummy_hash();
    let parsed = phc.and_then(|p| PasswordHash::new(p).ok());
    let known = parsed.is_some();
    let candidate = match parsed {
        Some(p) => p,
        None => match PasswordHash::new(dummy.as_str()) {
            Ok(d) => d,
            Err(_) => return false,
        },
    };
    let ok = hasher().verify_password(password.as_bytes(), &candidate).is_ok();
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
    fn production_never_hashes_fast() {
        assert!(fast_hash_allowed(Some("1"), None));
        assert!(fast_hash_allowed(Some("1"), Some("http://127.0.0.1:8080")));
        assert!(!fast_hash_allowed(Some("1"), Some("https://railyard.example.com")));
        assert!(!fast_hash_allowed(None, None));
    }

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

/// Encrypts secret input values at rest with a key derived from the secret key.
#[derive(Clone)]
pub struct SecretBox {
    key: [u8; 32],
}

impl std::fmt::Debug for SecretBox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretBox(<key>)")
    }
}

const SECRET_PREFIX: &str = "v1:";

impl SecretBox {
    pub fn derive(secret_key: &[u8]) -> Self {
        let mut hasher = Sha256::new();
        hasher.update(b"railyard input secrets v1\0");
        hasher.update(secret_key);
        SecretBox { key: hasher.finalize().into() }
    }

    pub fn encrypt(&self, plaintext: &str) -> String {
        use chacha20poly1305::aead::{Aead, KeyInit};
        use chacha20poly1305::{Key, XChaCha20Poly1305, XNonce};
        let cipher = XChaCha20Poly1305::new(Key::from_slice(&self.key));
        let nonce = random_bytes(24);
        // Encryption with a fresh 24-byte nonce cannot fail for inputs of this size.
        let sealed = cipher.encrypt(XNonce::from_slice(&nonce), plaintext.as_bytes()).unwrap_or_default();
        let mut out = nonce;
        out.extend(sealed);
        format!("{SECRET_PREFIX}{}", base64::engine::general_purpose::STANDARD_NO_PAD.encode(out))
    }

    pub fn decrypt(&self, sealed: &str) -> Option<String> {
        use chacha20poly1305::aead::{Aead, KeyInit};
        use chacha20poly1305::{Key, XChaCha20Poly1305, XNonce};
        let bytes = base64::engine::general_purpose::STANDARD_NO_PAD.decode(sealed.strip_prefix(SECRET_PREFIX)?).ok()?;
        if bytes.len() < 24 {
            return None;
        }
        let (nonce, ciphertext) = bytes.split_at(24);
        let cipher = XChaCha20Poly1305::new(Key::from_slice(&self.key));
        String::from_utf8(cipher.decrypt(XNonce::from_slice(nonce), ciphertext).ok()?).ok()
    }
}

#[cfg(test)]
mod secret_tests {
    use super::*;

    #[test]
    fn secrets_round_trip_and_hide_their_text() {
        let sb = SecretBox::derive(b"some secret key material");
        let sealed = sb.encrypt("hunter2");
        assert!(sealed.starts_with("v1:") && !sealed.contains("hunter2"));
        assert_ne!(sealed, sb.encrypt("hunter2"), "fresh nonce every time");
        assert_eq!(sb.decrypt(&sealed).as_deref(), Some("hunter2"));
        assert_eq!(SecretBox::derive(b"another key").decrypt(&sealed), None);
    }
}
