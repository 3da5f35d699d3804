//! Variable templates: `${inputs.x}`, `${vars.x}`, `${release.name|id|type|start}`,
//! `${phases.P.activities.A.outputs.k}`, `${callback.url}`. Interpolation only.

use serde_json::Value;
use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reference {
    Input(String),
    Var(String),
    Release(String),
    Output {
        phase: String,
        activity: String,
        key: String,
    },
    CallbackUrl,
    /// `${item}` or `${item.key|value|service|version}` inside a fan-out.
    Item(Option<String>),
}

impl std::fmt::Display for Reference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Reference::Input(n) => write!(f, "inputs.{n}"),
            Reference::Var(n) => write!(f, "vars.{n}"),
            Reference::Release(n) => write!(f, "release.{n}"),
            Reference::Output { phase, activity, key } => write!(f, "phases.{phase}.activities.{activity}.outputs.{key}"),
            Reference::CallbackUrl => f.write_str("callback.url"),
            Reference::Item(None) => f.write_str("item"),
            Reference::Item(Some(field)) => write!(f, "item.{field}"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    Text(String),
    Ref(Reference),
}

pub const RELEASE_FIELDS: [&str; 4] = ["name", "id", "type", "start"];

/// What `${item.…}` may name: a map item's key and value; a manifest's service and version.
pub const ITEM_FIELDS: [&str; 4] = ["key", "value", "service", "version"];

/// `deploy` or one fan-out instance `deploy[payment-service]`: its activity key and item.
pub fn split_instance(key: &str) -> (&str, Option<&str>) {
    match key.split_once('[') {
        Some((activity, rest)) if rest.ends_with(']') => (activity, Some(&rest[..rest.len() - 1])),
        _ => (key, None),
    }
}

fn parse_reference(inner: &str) -> Result<Reference, String> {
    let parts: Vec<&str> = inner.trim().split('.').collect();
    let ident = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    match parts.as_slice() {
        ["inputs", n] if ident(n) => Ok(Reference::Input(n.to_string())),
        ["vars", n] if ident(n) => Ok(Reference::Var(n.to_string())),
        ["release", n] if RELEASE_FIELDS.contains(n) => Ok(Reference::Release(n.to_string())),
        ["release", n] => Err(format!("release.{n} is unknown; use release.name, release.id, release.type or release.start")),
        ["phases", p, "activities", a, "outputs", k] if ident(p) && ident(split_instance(a).0) && ident(k) => {
            Ok(Reference::Output { phase: p.to_string(), activity: a.to_string(), key: k.to_string() })
        }
        ["item"] => Ok(Reference::Item(None)),
        ["item", f] if ITEM_FIELDS.contains(f) => Ok(Reference::Item(Some(f.to_string()))),
        ["callback", "url"] => Ok(Reference::CallbackUrl),
        _ => Err(format!(
            "${{{inner}}} is not a known reference (inputs.x, vars.x, release.name, phases.P.activities.A.outputs.k, callback.url, item)"
        )),
    }
}

pub fn parse(text: &str) -> Result<Vec<Segment>, String> {
    let mut segments = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        if start > 0 {
            segments.push(Segment::Text(rest[..start].to_string()));
        }
        let after = &rest[start + 2..];
        let end = after.find('}').ok_or_else(|| format!("unclosed ${{ in {text:?}"))?;
        segments.push(Segment::Ref(parse_reference(&after[..end])?));
        rest = &after[end + 1..];
    }
    if !rest.is_empty() {
        segments.push(Segment::Text(rest.to_string()));
    }
    Ok(segments)
}

/// Every reference in a JSON value's strings (object keys are not templated).
pub fn references_in(value: &Value) -> Result<Vec<Reference>, String> {
    let mut out = Vec::new();
    collect(value, &mut out)?;
    Ok(out)
}

fn collect(value: &Value, out: &mut Vec<Reference>) -> Result<(), String> {
    match value {
        Value::String(s) => {
            for seg in parse(s)? {
                if let Segment::Ref(r) = seg {
                    out.push(r);
                }
            }
        }
        Value::Array(items) => {
            for i in items {
                collect(i, out)?;
            }
        }
        Value::Object(map) => {
            for v in map.values() {
                collect(v, out)?;
            }
        }
        _ => {}
    }
    Ok(())
}

/// What references resolve to when a template is rendered.
pub trait Lookup {
    fn lookup(&self, reference: &Reference) -> Option<Value>;
}

impl Lookup for BTreeMap<String, Value> {
    fn lookup(&self, reference: &Reference) -> Option<Value> {
        self.get(&reference.to_string()).cloned()
    }
}

/// Renders a value: a string that is exactly one `${…}` keeps the referenced JSON type;
/// inside longer text, lists join with ", ". Unknown references are an error naming them.
pub fn render(value: &Value, lookup: &dyn Lookup) -> Result<Value, String> {
    match value {
        Value::String(s) => {
            let segments = parse(s)?;
            if let [Segment::Ref(r)] = segments.as_slice() {
                return lookup.lookup(r).ok_or_else(|| format!("${{{r}}} has no value"));
            }
            let mut out = String::new();
            for seg in segments {
                match seg {
                    Segment::Text(t) => out.push_str(&t),
                    Segment::Ref(r) => {
                        let v = lookup.lookup(&r).ok_or_else(|| format!("${{{r}}} has no value"))?;
                        out.push_str(&to_text(&v));
                    }
                }
            }
            Ok(Value::String(out))
        }
        Value::Array(items) => items.iter().map(|i| render(i, lookup)).collect::<Result<Vec<_>, _>>().map(Value::Array),
        Value::Object(map) => {
            let mut out = serde_json::Map::new();
            for (k, v) in map {
                out.insert(k.clone(), render(v, lookup)?);
            }
            Ok(Value::Object(out))
        }
        other => Ok(other.clone()),
    }
}

pub fn to_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        Value::Array(items) => items.iter().map(to_text).collect::<Vec<_>>().join(", "),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_references() {
        assert_eq!(
            parse("release/${inputs.branch}-${release.id}").unwrap(),
            vec![
                Segment::Text("release/".into()),
                Segment::Ref(Reference::Input("branch".into())),
                Segment::Text("-".into()),
                Segment::Ref(Reference::Release("id".into())),
            ]
        );
        assert!(parse("${inputs.x").unwrap_err().contains("unclosed"));
        assert!(parse("${release.owner}").unwrap_err().contains("release.owner is unknown"));
        assert!(parse("${secrets.x}").is_err());
        assert_eq!(
            parse("${phases.build.activities.cut.outputs.build_number}").unwrap(),
            vec![Segment::Ref(Reference::Output { phase: "build".into(), activity: "cut".into(), key: "build_number".into() })]
        );
    }

    #[test]
    fn whole_references_keep_their_type_and_lists_join_in_text() {
        let mut values = BTreeMap::new();
        values.insert("inputs.services".to_string(), json!(["api", "web"]));
        values.insert("inputs.version".to_string(), json!("2.1.3"));
        assert_eq!(render(&json!("${inputs.services}"), &values).unwrap(), json!(["api", "web"]));
        assert_eq!(render(&json!("Deploy ${inputs.services} v${inputs.version}"), &values).unwrap(), json!("Deploy api, web v2.1.3"));
        assert_eq!(render(&json!({"v": ["${inputs.version}", 3]}), &values).unwrap(), json!({"v": ["2.1.3", 3]}));
        assert!(render(&json!("${inputs.nope}"), &values).unwrap_err().contains("inputs.nope"));
    }
}
