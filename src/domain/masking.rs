//! A receiver's answer may echo what it was sent (an error page that prints the request's
//! `Authorization` header): before such text is stored or shown, every secret input's exact
//! value is replaced by `********` (DESIGN §9).

use serde_json::Value;

pub const MASK: &str = "********";

/// `text` with each of `secrets` replaced by the mask; longer secrets first, so one that
/// contains another is masked whole.
pub fn mask_text(text: &str, secrets: &[String]) -> String {
    let mut ordered: Vec<&str> = secrets.iter().map(String::as_str).filter(|s| !s.is_empty()).collect();
    ordered.sort_by_key(|s| std::cmp::Reverse(s.len()));
    let mut out = text.to_string();
    for secret in ordered {
        if out.contains(secret) {
            out = out.replace(secret, MASK);
        }
    }
    out
}

/// Masks every string inside `value` (keys too); returns whether anything was masked.
pub fn mask_value(value: &mut Value, secrets: &[String]) -> bool {
    match value {
        Value::String(s) => {
            let masked = mask_text(s, secrets);
            let changed = masked != *s;
            *s = masked;
            changed
        }
        Value::Array(items) => items.iter_mut().fold(false, |changed, v| mask_value(v, secrets) | changed),
        Value::Object(map) => {
            let mut changed = false;
            let entries = std::mem::take(map);
            for (k, mut v) in entries {
                changed |= mask_value(&mut v, secrets);
                let key = mask_text(&k, secrets);
                changed |= key != k;
                map.insert(key, v);
            }
            changed
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn an_echoed_secret_is_masked_in_text_and_inside_json_strings() {
        let secrets = vec!["s3cret-token".to_string(), "s3cret".to_string(), String::new()];
        assert_eq!(mask_text("Authorization: Bearer s3cret-token; s3cret", &secrets), "Authorization: Bearer ********; ********");
        assert_eq!(mask_text("nothing here", &secrets), "nothing here");
        let mut v = json!({"echo": "Bearer s3cret-token", "n": 1, "list": ["a", "x s3cret"], "s3cret": true});
        assert!(mask_value(&mut v, &secrets));
        assert_eq!(v, json!({"echo": "Bearer ********", "n": 1, "list": ["a", "x ********"], "********": true}));
        let mut clean = json!({"version": "1.2.3"});
        assert!(!mask_value(&mut clean, &secrets));
    }
}
