//! Input values checked against their declared types and the account's catalog.

use serde_json::{Map, Value};

use super::definition::{InputDef, InputType};
use crate::domain::validate::FieldErrors;

/// The catalog names values are checked against.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    pub environments: Vec<String>,
    pub services: Vec<String>,
}

pub const MAX_INPUT_TEXT: usize = 10_000;

fn as_list(value: &Value) -> Option<Vec<String>> {
    match value {
        Value::Array(items) => items.iter().map(|i| i.as_str().map(|s| s.trim().to_string())).collect(),
        Value::String(s) => Some(s.split([',', '\n']).map(str::trim).filter(|s| !s.is_empty()).map(str::to_string).collect()),
        _ => None,
    }
}

/// Checks one value and returns it in its canonical JSON form (numbers as numbers, lists as lists).
pub fn check_value(input: &InputDef, value: &Value, catalog: &Catalog) -> Result<Value, String> {
    let text = || value.as_str().map(str::trim);
    match input.kind {
        InputType::String | InputType::Text => {
            let s = value.as_str().ok_or("must be text")?;
            if s.chars().count() > MAX_INPUT_TEXT {
                return Err(format!("must be at most {MAX_INPUT_TEXT} characters"));
            }
            if input.kind == InputType::String && s.contains(['\n', '\r']) {
                return Err("must be a single line".into());
            }
            Ok(Value::String(s.to_string()))
        }
        InputType::Version => {
            let s = text().ok_or("must be a version like 2.1.3")?;
            if s.is_empty() || s.len() > 100 || s.chars().any(char::is_whitespace) {
                return Err(format!("{s:?} is not a version (no spaces, at most 100 characters)"));
            }
            Ok(Value::String(s.to_string()))
        }
        InputType::Number => match value {
            Value::Number(n) => Ok(Value::Number(n.clone())),
            Value::String(s) => {
                let t = s.trim();
                if let Ok(i) = t.parse::<i64>() {
                    Ok(Value::from(i))
                } else {
                    t.parse::<f64>()
                        .ok()
                        .filter(|f| f.is_finite())
                        .and_then(serde_json::Number::from_f64)
                        .map(Value::Number)
                        .ok_or_else(|| format!("{t:?} is not a number"))
                }
            }
            _ => Err("must be a number".into()),
        },
        InputType::Boolean => match value {
            Value::Bool(b) => Ok(Value::Bool(*b)),
            Value::String(s) if s.trim() == "true" => Ok(Value::Bool(true)),
            Value::String(s) if s.trim() == "false" => Ok(Value::Bool(false)),
            _ => Err("must be true or false".into()),
        },
        InputType::Enum => {
            let s = text().ok_or("must be one of the listed values")?;
            if input.values.iter().any(|v| v == s) {
                Ok(Value::String(s.to_string()))
            } else {
                Err(format!("{s:?} is not one of {}", input.values.join(", ")))
            }
        }
        InputType::Datetime => {
            let s = text().ok_or("must be a date and time")?;
            chrono::DateTime::parse_from_rfc3339(s)
                .map(|t| Value::String(t.with_timezone(&chrono::Utc).to_rfc3339_opts(chrono::SecondsFormat::Secs, true)))
                .map_err(|_| format!("{s:?} is not an RFC 3339 date and time (e.g. 2026-12-01T09:00:00Z)"))
        }
        InputType::Environment | InputType::Service => {
            let s = text().ok_or("must be a name")?;
            check_catalog(input.kind, s, catalog)?;
            Ok(Value::String(s.to_string()))
        }
        InputType::EnvironmentList | InputType::ServiceList => {
            let items = as_list(value).ok_or("must be a list of names")?;
            if items.is_empty() {
                return Err("must name at least one".into());
            }
            for item in &items {
                check_catalog(input.kind, item, catalog)?;
            }
            Ok(Value::Array(items.into_iter().map(Value::String).collect()))
        }
        InputType::ServiceVersions => check_manifest(value, catalog),
    }
}

/// How many services one manifest may name.
pub const MAX_MANIFEST_SERVICES: usize = 1_000;

/// A manifest: a JSON object service → version, or `service=version` lines (also `service:
/// version`, or separated by commas), as pasted into the form. Canonical: an object in key order.
fn check_manifest(value: &Value, catalog: &Catalog) -> Result<Value, String> {
    let pairs: Vec<(String, Value)> = match value {
        Value::Object(map) => map.iter().map(|(k, v)| (k.trim().to_string(), v.clone())).collect(),
        Value::String(text) => {
            let mut pairs = Vec::new();
            for (n, line) in text.split(['\n', ',']).map(str::trim).enumerate().filter(|(_, l)| !l.is_empty()) {
                let Some((service, version)) = line.split_once(['=', ':']) else {
                    return Err(format!("line {}: {line:?} is not service=version", n + 1));
                };
                pairs.push((service.trim().to_string(), Value::String(version.trim().to_string())));
            }
            pairs
        }
        _ => return Err("must be a map of service to version (an object, or service=version lines)".into()),
    };
    if pairs.is_empty() {
        return Err("must name at least one service".into());
    }
    if pairs.len() > MAX_MANIFEST_SERVICES {
        return Err(format!("names {} services; at most {MAX_MANIFEST_SERVICES}", pairs.len()));
    }
    let mut out = Map::new();
    for (service, version) in pairs {
        check_catalog(InputType::Service, &service, catalog)?;
        let version = match &version {
            Value::String(s) => s.trim().to_string(),
            Value::Number(n) => n.to_string(),
            _ => return Err(format!("the version of {service:?} must be text like 2.3.1")),
        };
        if version.is_empty() || version.len() > 100 || version.chars().any(char::is_whitespace) {
            return Err(format!("the version of {service:?} ({version:?}) is not a version (no spaces, at most 100 characters)"));
        }
        if out.insert(service.clone(), Value::String(version)).is_some() {
            return Err(format!("{service:?} is named twice"));
        }
    }
    Ok(Value::Object(out))
}

fn check_catalog(kind: InputType, name: &str, catalog: &Catalog) -> Result<(), String> {
    let (list, what) = match kind {
        InputType::Environment | InputType::EnvironmentList => (&catalog.environments, "environment"),
        _ => (&catalog.services, "service"),
    };
    if list.iter().any(|n| n == name) {
        Ok(())
    } else {
        Err(format!("there is no {what} {name:?}"))
    }
}

fn is_empty(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::String(s) => s.trim().is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        _ => false,
    }
}

/// Checks a set of values against the inputs. Errors are keyed `inputs.<name>`. With
/// `require_all`, missing required inputs (without a default) are errors too.
pub fn check_values(
    inputs: &[InputDef],
    values: &Map<String, Value>,
    catalog: &Catalog,
    require_all: bool,
) -> Result<Map<String, Value>, FieldErrors> {
    let mut errors = FieldErrors::new();
    let mut out = Map::new();
    for name in values.keys() {
        if !inputs.iter().any(|i| &i.name == name) {
            errors.add(&format!("inputs.{name}"), format!("{name:?} is not an input of this process"));
        }
    }
    for input in inputs {
        match values.get(&input.name).filter(|v| !is_empty(v)) {
            Some(v) => match check_value(input, v, catalog) {
                Ok(v) => {
                    out.insert(input.name.clone(), v);
                }
                Err(m) => errors.add(&format!("inputs.{}", input.name), m),
            },
            None if require_all && input.required && input.default.is_none() => {
                errors.add(&format!("inputs.{}", input.name), "is required");
            }
            None => {}
        }
    }
    errors.into_result().map(|_| out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn input(name: &str, kind: InputType) -> InputDef {
        InputDef {
            name: name.into(),
            kind,
            required: true,
            default: None,
            description: None,
            secret: false,
            values: vec!["eu".into(), "us".into()],
        }
    }

    fn catalog() -> Catalog {
        Catalog { environments: vec!["QA".into(), "PROD1".into()], services: vec!["api".into(), "web".into()] }
    }

    #[test]
    fn values_are_checked_and_canonical() {
        let c = catalog();
        assert_eq!(check_value(&input("n", InputType::Number), &json!("42"), &c).unwrap(), json!(42));
        assert!(check_value(&input("n", InputType::Number), &json!("abc"), &c).unwrap_err().contains("not a number"));
        assert_eq!(check_value(&input("b", InputType::Boolean), &json!("true"), &c).unwrap(), json!(true));
        assert!(check_value(&input("e", InputType::Enum), &json!("asia"), &c).is_err());
        assert!(check_value(&input("env", InputType::Environment), &json!("PROD9"), &c).unwrap_err().contains("no environment \"PROD9\""));
        assert_eq!(check_value(&input("s", InputType::ServiceList), &json!("api, web"), &c).unwrap(), json!(["api", "web"]));
        assert!(check_value(&input("s", InputType::ServiceList), &json!(["api", "db"]), &c).is_err());
        assert!(check_value(&input("d", InputType::Datetime), &json!("tomorrow"), &c).is_err());
        assert!(check_value(&input("v", InputType::Version), &json!("2.1 beta"), &c).is_err());
    }

    #[test]
    fn a_manifest_is_a_map_of_catalog_services_to_versions() {
        let c = catalog();
        let m = input("m", InputType::ServiceVersions);
        assert_eq!(check_value(&m, &json!({"web": "1.2.0", "api": "2.3.1"}), &c).unwrap(), json!({"api": "2.3.1", "web": "1.2.0"}));
        assert_eq!(check_value(&m, &json!("api=2.3.1\n web = 1.2.0 \n\n"), &c).unwrap(), json!({"api": "2.3.1", "web": "1.2.0"}));
        assert_eq!(check_value(&m, &json!("api: 2.3.1, web: 3"), &c).unwrap(), json!({"api": "2.3.1", "web": "3"}));
        assert!(check_value(&m, &json!("api=1\ndb=2"), &c).unwrap_err().contains("no service \"db\""));
        assert!(check_value(&m, &json!("api=1\napi=2"), &c).unwrap_err().contains("named twice"));
        assert!(check_value(&m, &json!("api 1"), &c).unwrap_err().contains("line 1"));
        assert!(check_value(&m, &json!({"api": "1 2"}), &c).unwrap_err().contains("not a version"));
        assert!(check_value(&m, &json!(["api"]), &c).is_err());
    }

    #[test]
    fn sets_name_each_bad_input() {
        let inputs = vec![input("count", InputType::Number), input("env", InputType::Environment)];
        let values = json!({"count": "abc", "env": "MARS", "extra": 1}).as_object().unwrap().clone();
        let errors = check_values(&inputs, &values, &catalog(), false).unwrap_err();
        assert!(errors.get("inputs.count").unwrap().contains("not a number"));
        assert!(errors.get("inputs.env").unwrap().contains("no environment"));
        assert!(errors.get("inputs.extra").is_some());
        let missing = check_values(&inputs, &Map::new(), &catalog(), true).unwrap_err();
        assert_eq!(missing.get("inputs.count"), Some("is required"));
        assert!(check_values(&inputs, &Map::new(), &catalog(), false).is_ok(), "an input set may be partial");
    }
}
