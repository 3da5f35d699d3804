//! The definition schema with every key of DESIGN §3, parsing (YAML or JSON) and defaults.

use super::bounded::{Bounded, Budget};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Definition {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default)]
    pub inputs: Vec<InputDef>,
    #[serde(default)]
    pub variables: Vec<VariableDef>,
    pub phases: Vec<PhaseDef>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InputType {
    String,
    Text,
    Number,
    Boolean,
    Enum,
    Datetime,
    Environment,
    EnvironmentList,
    Service,
    ServiceList,
    Version,
    /// A manifest: service → version.
    ServiceVersions,
}

impl InputType {
    pub const ALL: [InputType; 12] = [
        InputType::String,
        InputType::Text,
        InputType::Number,
        InputType::Boolean,
        InputType::Enum,
        InputType::Datetime,
        InputType::Environment,
        InputType::EnvironmentList,
        InputType::Service,
        InputType::ServiceList,
        InputType::Version,
        InputType::ServiceVersions,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            InputType::String => "string",
            InputType::Text => "text",
            InputType::Number => "number",
            InputType::Boolean => "boolean",
            InputType::Enum => "enum",
            InputType::Datetime => "datetime",
            InputType::Environment => "environment",
            InputType::EnvironmentList => "environment_list",
            InputType::Service => "service",
            InputType::ServiceList => "service_list",
            InputType::Version => "version",
            InputType::ServiceVersions => "service_versions",
        }
    }

    pub fn is_list(self) -> bool {
        matches!(self, InputType::EnvironmentList | InputType::ServiceList)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InputDef {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: InputType,
    #[serde(default)]
    pub required: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default)]
    pub secret: bool,
    /// The choices of an `enum` input.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub values: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VariableDef {
    pub name: String,
    /// A template string (`${…}`), or any JSON value kept as it is.
    pub value: Value,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PhaseDef {
    pub key: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    #[serde(default, deserialize_with = "one_or_many", skip_serializing_if = "Vec::is_empty")]
    pub depends_on: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_before: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub variables: Vec<VariableDef>,
    #[serde(default)]
    pub rollback: bool,
    pub activities: Vec<ActivityDef>,
}

string_enum!(ActivityKind { Manual => "manual", Approval => "approval", Webhook => "webhook", Subprocess => "subprocess", Wait => "wait" });

string_enum!(OnFailure { Manual => "manual", Fail => "fail", Ignore => "ignore" });

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Threshold {
    Any,
    All,
    Majority,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Completion {
    Response,
    Callback,
}

pub const DEFAULT_BACKOFF: &str = "30s";
pub const DEFAULT_WEBHOOK_TIMEOUT: &str = "1h";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetryDef {
    #[serde(default = "one")]
    pub max_attempts: u32,
    #[serde(default = "default_backoff")]
    pub backoff: String,
}

fn one() -> u32 {
    1
}

fn default_backoff() -> String {
    DEFAULT_BACKOFF.to_string()
}

impl Default for RetryDef {
    fn default() -> Self {
        RetryDef { max_attempts: 1, backoff: default_backoff() }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct DeploysDef {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    pub url: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completion: Option<Completion>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActivityDef {
    pub key: String,
    pub name: String,
    pub kind: ActivityKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    #[serde(default, deserialize_with = "one_or_many", skip_serializing_if = "Vec::is_empty")]
    pub depends_on: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub variables: Vec<VariableDef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub critical: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry: Option<RetryDef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_failure: Option<OnFailure>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub escalate_after: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deploys: Option<DeploysDef>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub records: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<WebhookConfig>,
    #[serde(default, deserialize_with = "one_or_many", skip_serializing_if = "Vec::is_empty")]
    pub approvers: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold: Option<Threshold>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub required_approvals: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub separation_of_duties: Option<bool>,
    /// Subprocess: the process to run (by name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub process: Option<String>,
    /// Subprocess: the child's inputs (templates).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub inputs: BTreeMap<String, Value>,
    #[serde(default, rename = "for", skip_serializing_if = "Option::is_none")]
    pub wait_for: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<String>,
    /// Fan-out: a template resolving to a list or a map; the activity runs once per item.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub for_each: Option<String>,
    /// Fan-out: how many instances run at once (default `DEFAULT_MAX_PARALLEL`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_parallel: Option<u32>,
}

/// How many fan-out instances run at once when `max_parallel` is not given.
pub const DEFAULT_MAX_PARALLEL: u32 = 10;
/// How many items one fan-out may have.
pub const MAX_FAN_OUT: usize = 1_000;

impl ActivityDef {
    pub fn new(key: &str, name: &str, kind: ActivityKind) -> Self {
        ActivityDef {
            key: key.into(),
            name: name.into(),
            kind,
            description: None,
            owner: None,
            depends_on: Vec::new(),
            variables: Vec::new(),
            critical: None,
            retry: None,
            on_failure: None,
            timeout: None,
            escalate_after: None,
            deploys: None,
            records: Vec::new(),
            config: None,
            approvers: Vec::new(),
            threshold: None,
            required_approvals: None,
            separation_of_duties: None,
            process: None,
            inputs: BTreeMap::new(),
            wait_for: None,
            until: None,
            for_each: None,
            max_parallel: None,
        }
    }

    pub fn is_critical(&self) -> bool {
        self.critical.unwrap_or(true)
    }

    /// How many fan-out instances may run at once.
    pub fn parallelism(&self) -> usize {
        usize::try_from(self.max_parallel.unwrap_or(DEFAULT_MAX_PARALLEL).max(1)).unwrap_or(1)
    }
}

/// `depends_on: build` and `depends_on: [build, test]` both mean a list.
fn one_or_many<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    Ok(match OneOrMany::deserialize(d)? {
        OneOrMany::One(s) => vec![s],
        OneOrMany::Many(v) => v,
    })
}

impl Definition {
    /// Fills in every default of DESIGN §3, so that equal meaning gives equal values.
    pub fn normalized(mut self) -> Definition {
        for phase in &mut self.phases {
            for a in &mut phase.activities {
                let critical = a.critical.unwrap_or(true);
                a.critical = Some(critical);
                a.on_failure.get_or_insert(if critical { OnFailure::Manual } else { OnFailure::Ignore });
                a.retry.get_or_insert_with(RetryDef::default);
                match a.kind {
                    ActivityKind::Webhook => {
                        if let Some(config) = &mut a.config {
                            let method = config.method.take().unwrap_or_else(|| "POST".into()).to_uppercase();
                            config.method = Some(method);
                            config.completion.get_or_insert(Completion::Response);
                            config.timeout.get_or_insert_with(|| DEFAULT_WEBHOOK_TIMEOUT.to_string());
                        }
                    }
                    ActivityKind::Approval => {
                        if a.required_approvals.is_none() {
                            a.threshold.get_or_insert(Threshold::Any);
                        }
                        a.separation_of_duties.get_or_insert(false);
                    }
                    _ => {}
                }
            }
        }
        self
    }

    pub fn phase(&self, key: &str) -> Option<&PhaseDef> {
        self.phases.iter().find(|p| p.key == key)
    }

    /// The activity `key`, or the activity of a fan-out instance `key[item]`.
    pub fn activity(&self, phase: &str, key: &str) -> Option<&ActivityDef> {
        let key = super::template::split_instance(key).0;
        self.phase(phase).and_then(|p| p.activities.iter().find(|a| a.key == key))
    }

    pub fn to_yaml(&self) -> String {
        serde_yaml_ng::to_string(self).unwrap_or_default()
    }

    pub fn to_json(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }
}

/// Why a definition could not be read: the line (YAML) or the field path (JSON).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ParseError {
    pub field: Option<String>,
    pub line: Option<usize>,
    pub message: String,
    /// Readable, but refused by a safety rule (anchors, foreign line breaks, the value bound),
    /// as opposed to text that could not be read.
    pub refused: bool,
}

impl ParseError {
    fn malformed(field: Option<String>, line: Option<usize>, message: String) -> Self {
        ParseError { field, line, message, refused: false }
    }

    fn refused(line: Option<usize>, message: String) -> Self {
        ParseError { field: None, line, message, refused: true }
    }
}

pub const MAX_DEFINITION_BYTES: usize = 512 * 1024;

/// Parses YAML text (JSON is YAML too), naming the line and the field that failed.
pub fn parse_yaml(text: &str) -> Result<Definition, ParseError> {
    if text.len() > MAX_DEFINITION_BYTES {
        return Err(ParseError::malformed(None, None, format!("the definition is larger than {MAX_DEFINITION_BYTES} bytes")));
    }
    if text.trim().is_empty() {
        return Err(ParseError::malformed(None, None, "the definition is empty".into()));
    }
    // A leading byte-order mark only says the encoding; anywhere else it is refused below.
    let text = text.strip_prefix('\u{FEFF}').unwrap_or(text);
    refuse_foreign_line_breaks(text)?;
    refuse_aliases(text)?;
    let budget = Budget::definition();
    let de = Bounded::new(serde_yaml_ng::Deserializer::from_str(text), &budget);
    serde_path_to_error::deserialize(de).map_err(|e| {
        if budget.is_exceeded() {
            return ParseError::refused(None, budget.exceeded_message());
        }
        let path = e.path().to_string();
        let inner = e.into_inner();
        let line = inner.location().map(|l| l.line());
        let field = (path != "." && path != "?" && !path.is_empty()).then_some(path);
        let message = match (&field, line) {
            (Some(f), Some(l)) => format!("line {l}: {f}: {}", strip_location(&inner.to_string())),
            (None, Some(l)) => format!("line {l}: {}", strip_location(&inner.to_string())),
            (Some(f), None) => format!("{f}: {inner}"),
            (None, None) => inner.to_string(),
        };
        ParseError::malformed(field, line, message)
    })
}

/// The parser (libyaml) also ends a line at NEL, U+2028 and U+2029, where the alias check's
/// scanner (YAML 1.2) does not: text after such a break would be a comment to one and YAML to the
/// other. A definition never needs them, nor a byte-order mark inside it.
fn refuse_foreign_line_breaks(text: &str) -> Result<(), ParseError> {
    for (index, c) in text.char_indices() {
        let name = match c {
            '\u{85}' => "a NEL line break (U+0085)",
            '\u{2028}' => "a line separator (U+2028)",
            '\u{2029}' => "a paragraph separator (U+2029)",
            '\u{FEFF}' => "a byte-order mark (U+FEFF)",
            _ => continue,
        };
        let line = 1 + text[..index].bytes().filter(|&b| b == b'\n').count();
        return Err(ParseError::refused(
            Some(line),
            format!("line {line}: {name} is not accepted in a definition; use an ordinary line break"),
        ));
    }
    Ok(())
}

/// Anchors and aliases let a few kilobytes expand to billions of values ("billion laughs"); a
/// process definition never needs them, so the first one is refused by line before parsing.
/// Text this scanner cannot read is refused too: what it did not see, it cannot vouch for.
fn refuse_aliases(text: &str) -> Result<(), ParseError> {
    use yaml_rust2::scanner::{Scanner, TokenType};
    let mut scanner = Scanner::new(text.chars());
    for token in scanner.by_ref() {
        if let TokenType::Alias(name) | TokenType::Anchor(name) = &token.1 {
            let line = token.0.line();
            return Err(ParseError::refused(
                Some(line),
                format!("line {line}: YAML anchors and aliases (&{name}, *{name}) are not accepted; write the values out"),
            ));
        }
    }
    if let Some(error) = scanner.get_error() {
        let line = error.marker().line();
        return Err(ParseError::malformed(None, Some(line), format!("line {line}: {}", error.info())));
    }
    Ok(())
}

fn strip_location(message: &str) -> String {
    match message.find(" at line ") {
        Some(i) => message[..i].to_string(),
        None => message.to_string(),
    }
}

/// Parses a JSON value (the API's `definition` object), naming the field that failed.
pub fn parse_value(value: Value) -> Result<Definition, ParseError> {
    let budget = Budget::definition();
    serde_path_to_error::deserialize(Bounded::new(value, &budget)).map_err(|e| {
        if budget.is_exceeded() {
            return ParseError::refused(None, budget.exceeded_message());
        }
        let path = e.path().to_string();
        let field = (path != ".").then_some(path);
        let message = match &field {
            Some(f) => format!("{f}: {}", e.inner()),
            None => e.inner().to_string(),
        };
        ParseError::malformed(field, None, message)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const WEEKLY: &str = include_str!("../../../tests/fixtures/weekly-production-release.yaml");

    #[test]
    fn weekly_release_parses_with_defaults() {
        let def = parse_yaml(WEEKLY).expect("parses").normalized();
        assert_eq!(def.name, "Weekly Production Release");
        let compile = &def.phases[0].activities[0];
        assert_eq!(compile.kind, ActivityKind::Webhook);
        assert_eq!(compile.on_failure, Some(OnFailure::Manual));
        assert_eq!(compile.retry, Some(RetryDef { max_attempts: 3, backoff: "30s".into() }));
        assert_eq!(compile.config.as_ref().unwrap().completion, Some(Completion::Callback));
        let approve = &def.phases[1].activities[0];
        assert_eq!(approve.required_approvals, Some(2));
        assert_eq!(approve.threshold, None, "required_approvals stands instead of a threshold");
        assert_eq!(approve.approvers, vec!["group:qa".to_string()]);
        assert!(def.phases[3].rollback);
    }

    #[test]
    fn export_then_import_is_equal() {
        let def = parse_yaml(WEEKLY).unwrap().normalized();
        let again = parse_yaml(&def.to_yaml()).unwrap().normalized();
        assert_eq!(def, again);
        let via_json = parse_value(def.to_json()).unwrap().normalized();
        assert_eq!(def, via_json);
    }

    #[test]
    fn parse_errors_name_the_line_and_field() {
        let err =
            parse_yaml("name: x\nphases:\n  - key: a\n    name: A\n    activities: [{key: b, name: B, kind: teleport}]\n").unwrap_err();
        assert_eq!(err.line, Some(5));
        assert!(err.field.as_deref().unwrap().starts_with("phases[0].activities[0]"), "{err:?}");
        assert!(err.message.contains("teleport"), "{}", err.message);
        let err = parse_yaml("name: [unclosed\n").unwrap_err();
        assert!(err.message.starts_with("line "), "{}", err.message);
        let err = parse_yaml("name: x\nphases: []\ncolour: red\n").unwrap_err();
        assert!(err.message.contains("unknown field `colour`"), "{}", err.message);
    }

    /// The second security review's payload: after a U+2028 the alias scanner saw a comment,
    /// libyaml saw anchors that expand 100 KB into gigabytes.
    pub fn hidden_anchor_payload(width: usize) -> String {
        let xs = vec!["x"; width].join(", ");
        let refs = vec!["*a"; width].join(", ");
        format!("name: x # c\u{2028}variables: [{{name: a, value: &a [{xs}]}}, {{name: b, value: [{refs}]}}]\nphases: []\n")
    }

    #[test]
    fn a_line_break_the_scanner_does_not_know_is_refused_before_parsing() {
        let payload = hidden_anchor_payload(1000);
        assert!(payload.len() < 64 * 1024);
        let err = parse_yaml(&payload).unwrap_err();
        assert_eq!(err.line, Some(1));
        assert!(err.message.contains("U+2028"), "{}", err.message);
        for c in ['\u{85}', '\u{2029}'] {
            let err = parse_yaml(&format!("name: x # c{c}phases: []\n")).unwrap_err();
            assert!(err.message.contains("not accepted"), "{}", err.message);
        }
        let err = parse_yaml("name: x\n\u{FEFF}phases: []\n").unwrap_err();
        assert!(err.message.contains("byte-order mark"), "{}", err.message);
        assert!(parse_yaml("\u{FEFF}name: x\nphases: []\n").is_ok(), "a leading BOM is an encoding mark");
    }

    #[test]
    fn anchors_are_refused_and_a_scanner_error_is_not_waved_through() {
        let err = parse_yaml("name: x\nvariables: [{name: a, value: &a [1]}, {name: b, value: *a}]\nphases: []\n").unwrap_err();
        assert!(err.message.contains("anchors and aliases"), "{}", err.message);
        let err = parse_yaml("name: x\nphases: []\n\tbad: [\n").unwrap_err();
        assert!(err.message.starts_with("line "), "{}", err.message);
    }

    #[test]
    fn a_definition_past_the_value_bound_is_refused() {
        let many = vec!["0"; super::super::bounded::MAX_VALUES + 1].join(",");
        let text = format!("name: x\nvariables: [{{name: a, value: [{many}]}}]\nphases: []\n");
        let err = parse_yaml(&text).unwrap_err();
        assert!(err.message.contains("100000 values"), "{}", err.message);
        let json: Value = serde_json::from_str(&format!(
            "{{\"name\": \"x\", \"phases\": [], \"variables\": [{{\"name\": \"a\", \"value\": [{many}]}}]}}"
        ))
        .unwrap();
        let err = parse_value(json).unwrap_err();
        assert!(err.message.contains("100000 values"), "{}", err.message);
    }
}
