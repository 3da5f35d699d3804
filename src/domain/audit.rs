//! The audit hash chain (DESIGN §8): canonical JSON and the chained SHA-256.

use chrono::{DateTime, Utc};
use serde_json::Value;
use sha2::{Digest, Sha256};

pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// An event as hashed: exactly the fields DESIGN §8 lists.
#[derive(Debug, Clone, PartialEq)]
pub struct ChainEvent {
    pub chain: String,
    pub seq: i64,
    pub account_id: Option<i64>,
    pub release_id: Option<i64>,
    pub actor: String,
    pub action: String,
    pub subject: String,
    pub reason: Option<String>,
    pub details: Value,
    pub at: DateTime<Utc>,
}

pub fn chain_for(account_id: Option<i64>, release_id: Option<i64>) -> String {
    match (release_id, account_id) {
        (Some(release), _) => format!("release:{release}"),
        (None, Some(account)) => format!("account:{account}"),
        (None, None) => "installation".to_string(),
    }
}

/// RFC 3339, microseconds, `Z` — the same text whether computed before storing or after reading.
pub fn format_at(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

impl ChainEvent {
    pub fn to_value(&self) -> Value {
        let opt_i = |v: Option<i64>| v.map(Value::from).unwrap_or(Value::Null);
        let mut map = serde_json::Map::new();
        map.insert("chain".into(), Value::from(self.chain.clone()));
        map.insert("seq".into(), Value::from(self.seq));
        map.insert("account_id".into(), opt_i(self.account_id));
        map.insert("release_id".into(), opt_i(self.release_id));
        map.insert("actor".into(), Value::from(self.actor.clone()));
        map.insert("action".into(), Value::from(self.action.clone()));
        map.insert("subject".into(), Value::from(self.subject.clone()));
        map.insert("reason".into(), self.reason.clone().map(Value::from).unwrap_or(Value::Null));
        map.insert("details".into(), self.details.clone());
        map.insert("at".into(), Value::from(format_at(self.at)));
        Value::Object(map)
    }

    pub fn hash(&self, previous_hash: &str) -> String {
        chain_hash(previous_hash, &canonical_json(&self.to_value()))
    }
}

pub fn chain_hash(previous_hash: &str, canonical: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update(previous_hash.as_bytes());
    hasher.update(canonical.as_bytes());
    hex::encode(hasher.finalize())
}

/// Keys sorted at every level by this code (not by a map's iteration order), no whitespace.
pub fn canonical_json(value: &Value) -> String {
    let mut out = String::new();
    write_canonical(value, &mut out);
    out
}

fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, key) in keys.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String((*key).clone()).to_string());
                out.push(':');
                write_canonical(&map[*key], out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use serde_json::json;

    #[test]
    fn canonical_json_sorts_keys_at_every_level() {
        let v = json!({"b": 1, "a": {"z": [3, {"y": true, "x": null}], "c": "é\"q"}});
        assert_eq!(canonical_json(&v), r#"{"a":{"c":"é\"q","z":[3,{"x":null,"y":true}]},"b":1}"#);
    }

    #[test]
    fn times_keep_microseconds_and_z() {
        let at = Utc.with_ymd_and_hms(2026, 3, 1, 9, 5, 0).unwrap() + chrono::TimeDelta::microseconds(42);
        assert_eq!(format_at(at), "2026-03-01T09:05:00.000042Z");
    }

    #[test]
    fn hash_depends_on_previous_and_content() {
        let event = ChainEvent {
            chain: chain_for(Some(1), None),
            seq: 1,
            account_id: Some(1),
            release_id: None,
            actor: "user:a@example.com".into(),
            action: "user.create".into(),
            subject: "user:b@example.com".into(),
            reason: None,
            details: json!({}),
            at: Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap(),
        };
        let first = event.hash(GENESIS_HASH);
        assert_eq!(first.len(), 64);
        assert_ne!(first, event.hash(&first));
        let mut changed = event.clone();
        changed.subject.push('x');
        assert_ne!(first, changed.hash(GENESIS_HASH));
        assert_eq!(chain_for(Some(1), Some(9)), "release:9");
    }
}
