//! Release state, status and lifecycle rules (DESIGN §4), as pure functions.

use chrono::{DateTime, TimeDelta, Utc};
use serde_json::{Map, Value};

use super::process::definition::InputType;
use super::process::Definition;

string_enum!(ReleaseType { Standard => "standard", Hotfix => "hotfix", Feature => "feature", System => "system" });
string_enum!(State { Draft => "draft", Active => "active", Archived => "archived" });
string_enum!(Status {
    NotStarted => "NotStarted",
    Running => "Running",
    OnHold => "OnHold",
    Success => "Success",
    PartialSuccess => "PartialSuccess",
    Failed => "Failed",
    RolledBack => "RolledBack",
    Aborted => "Aborted",
});
string_enum!(Hold {
    Freeze => "freeze",
    Decision => "decision",
    Approval => "approval",
    Manual => "manual",
    DeployLock => "deploy_lock",
    EngineError => "engine_error",
});
string_enum!(LinkKind { DependsOn => "depends_on", HotfixFor => "hotfix_for", SubprocessOf => "subprocess_of", RestartedFrom => "restarted_from" });

/// How many consecutive advances may fail in the database before a release is set aside
/// (OnHold, hold `engine_error`) so that it never holds back the others (DESIGN §9).
pub const MAX_ENGINE_FAILURES: i32 = 5;

impl Status {
    pub fn is_finished(self) -> bool {
        matches!(self, Status::Success | Status::PartialSuccess | Status::Failed | Status::RolledBack | Status::Aborted)
    }
}

/// In flight = active and Running or OnHold.
pub fn in_flight(state: State, status: Status) -> bool {
    state == State::Active && matches!(status, Status::Running | Status::OnHold)
}

const GENERIC_WORDS: &[&str] = &[
    "release",
    "releases",
    "deploy",
    "deployment",
    "prod",
    "production",
    "test",
    "testing",
    "hotfix",
    "fix",
    "new",
    "update",
    "weekly",
    "daily",
    "monthly",
    "the",
    "a",
    "my",
    "our",
    "rollout",
    "change",
    "version",
    "build",
    "staging",
    "qa",
];

/// Generic names get a warning with an example of a good one.
pub fn generic_name_warning(name: &str) -> Option<String> {
    let words: Vec<String> = name
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty() && !w.chars().all(|c| c.is_ascii_digit()))
        .map(str::to_lowercase)
        .collect();
    let generic = words.is_empty() || words.iter().all(|w| GENERIC_WORDS.contains(&w.as_str()));
    generic
        .then(|| format!("{name:?} is a generic name; say what is released where, e.g. \"Payment Service v2.1.3 - Production Deployment\""))
}

/// Owners fall back: activity → phase → the release manager.
pub fn resolve_owner(activity_owner: Option<&str>, phase_owner: Option<&str>, release_manager_email: Option<&str>) -> String {
    activity_owner.or(phase_owner).map(str::to_string).or_else(|| release_manager_email.map(|e| format!("user:{e}"))).unwrap_or_default()
}

/// Why a draft cannot start yet (DESIGN §4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ActivationProblem {
    MissingInput(String),
    /// A template the run would need cannot be resolved (the text says which and why).
    Unresolved(String),
    NoReleaseManager,
    DependsOnUnfinished {
        id: i64,
        name: String,
        status: Status,
    },
    UnknownGroup(String),
    UnknownUser(String),
    UnknownEnvironment(String),
}

impl std::fmt::Display for ActivationProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ActivationProblem::MissingInput(name) => write!(f, "input {name} is required"),
            ActivationProblem::Unresolved(text) => f.write_str(text),
            ActivationProblem::NoReleaseManager => f.write_str("the release has no release manager"),
            ActivationProblem::DependsOnUnfinished { id, name, status } => {
                write!(f, "it depends on release #{id} \"{name}\", which has not finished ({status})")
            }
            ActivationProblem::UnknownGroup(g) => write!(f, "group {g:?} does not exist"),
            ActivationProblem::UnknownUser(u) => write!(f, "user {u} does not exist"),
            ActivationProblem::UnknownEnvironment(e) => write!(f, "environment {e:?} does not exist"),
        }
    }
}

/// Required inputs with neither a value nor a default.
pub fn missing_inputs(def: &Definition, values: &Map<String, Value>) -> Vec<String> {
    def.inputs
        .iter()
        .filter(|i| i.required && i.default.is_none())
        .filter(|i| match values.get(&i.name) {
            None | Some(Value::Null) => true,
            Some(Value::String(s)) => s.trim().is_empty(),
            Some(Value::Array(a)) => a.is_empty(),
            _ => false,
        })
        .map(|i| i.name.clone())
        .collect()
}

/// Inputs with defaults filled in (secret inputs have no defaults).
pub fn with_defaults(def: &Definition, values: &Map<String, Value>) -> Map<String, Value> {
    let mut out = values.clone();
    for i in &def.inputs {
        if !out.contains_key(&i.name) {
            if let Some(d) = &i.default {
                out.insert(i.name.clone(), d.clone());
            }
        }
    }
    out
}

/// Environments and services a release targets: its environment/service inputs plus literal `deploys`.
pub fn targets(def: &Definition, values: &Map<String, Value>) -> (Vec<String>, Vec<String>) {
    let values = with_defaults(def, values);
    let mut envs = Vec::new();
    let mut services = Vec::new();
    let push = |list: &mut Vec<String>, v: &Value| match v {
        Value::String(s) if !s.is_empty() && !list.contains(s) => list.push(s.clone()),
        Value::Array(items) => {
            for i in items.iter().filter_map(Value::as_str) {
                if !list.contains(&i.to_string()) {
                    list.push(i.to_string());
                }
            }
        }
        _ => {}
    };
    for i in &def.inputs {
        let Some(v) = values.get(&i.name) else { continue };
        match i.kind {
            InputType::Environment | InputType::EnvironmentList => push(&mut envs, v),
            InputType::Service | InputType::ServiceList => push(&mut services, v),
            InputType::ServiceVersions => {
                if let Value::Object(map) = v {
                    push(&mut services, &Value::Array(map.keys().cloned().map(Value::String).collect()));
                }
            }
            _ => {}
        }
    }
    let lookup: std::collections::BTreeMap<String, Value> = values.iter().map(|(k, v)| (format!("inputs.{k}"), v.clone())).collect();
    for phase in &def.phases {
        for a in &phase.activities {
            let Some(d) = &a.deploys else { continue };
            for (field, list) in [(&d.environment, &mut envs), (&d.service, &mut services)] {
                if let Some(t) = field {
                    if let Ok(v) = super::process::template::render(&Value::String(t.clone()), &lookup) {
                        push(list, &v);
                    }
                }
            }
        }
    }
    (envs, services)
}

/// Facts about a release that decide whether (and how) it may be deleted.
#[derive(Debug, Clone)]
pub struct DeletionFacts {
    pub state: State,
    pub status: Status,
    pub finished_at: Option<DateTime<Utc>>,
    pub activated: bool,
    /// Releases (id, name, link kind) that link to this one.
    pub linked_by: Vec<(i64, String, String)>,
    /// (service, environment) cells whose latest deployment is this release's: what the
    /// deployed report (`/reports/deployed`) points at.
    pub current_deployments: Vec<(String, String)>,
    pub now: DateTime<Utc>,
    pub retention_days: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Deletion {
    /// A draft: deleted with the links pointing at it (which are listed).
    Draft,
    /// Execution history and its audit chain are removed through the purge path.
    Purge,
}

pub fn deletion(f: &DeletionFacts) -> Result<Deletion, String> {
    if f.state == State::Draft {
        return Ok(Deletion::Draft);
    }
    if in_flight(f.state, f.status) {
        return Err(format!("It is in flight ({}): abort it first.", f.status));
    }
    if let Some((id, name, kind)) = f.linked_by.first() {
        return Err(format!("Release #{id} \"{name}\" links to it ({kind}); remove that link first."));
    }
    if !f.current_deployments.is_empty() {
        let cells = f.current_deployments.iter().map(|(s, e)| format!("{s} in {e}")).collect::<Vec<_>>().join(", ");
        return Err(format!(
            "The deployed report (/reports/deployed) points at it: it is the current deployment of {cells}. Deploy a newer version first."
        ));
    }
    if f.state == State::Active && f.activated {
        let until = f.finished_at.map(|t| t + TimeDelta::days(i64::from(f.retention_days)));
        if until.is_none_or(|u| u > f.now) {
            let when = until.map(|u| u.format("%Y-%m-%d").to_string()).unwrap_or_else(|| "after it finishes".into());
            return Err(format!(
                "It has execution history inside the retention period of {} days; it can be deleted from {when}.",
                f.retention_days
            ));
        }
    }
    Ok(Deletion::Purge)
}

/// Whether the retention job archives a release now: finished (or a draft whose window ended)
/// more than `days` ago, never one in flight.
pub fn retention_due(
    state: State,
    status: Status,
    finished_at: Option<DateTime<Utc>>,
    schedule_end: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
    days: u32,
) -> bool {
    let limit = now - TimeDelta::days(i64::from(days));
    match state {
        State::Active => status.is_finished() && finished_at.is_some_and(|t| t < limit),
        State::Draft => schedule_end.is_some_and(|t| t < limit),
        State::Archived => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn generic_names_are_flagged() {
        for g in ["Release 1", "Prod Deploy", "weekly release", "Hotfix", "  "] {
            assert!(generic_name_warning(g).is_some(), "{g}");
        }
        for ok in ["Payment Service v2.1.3 - Production Deployment", "Week 48 System Release - November 2026"] {
            assert!(generic_name_warning(ok).is_none(), "{ok}");
        }
    }

    #[test]
    fn owners_fall_back() {
        assert_eq!(resolve_owner(Some("group:ops"), Some("group:dev"), Some("rm@x.io")), "group:ops");
        assert_eq!(resolve_owner(None, Some("group:dev"), Some("rm@x.io")), "group:dev");
        assert_eq!(resolve_owner(None, None, Some("rm@x.io")), "user:rm@x.io");
    }

    fn facts(state: State, status: Status, finished_days_ago: Option<i64>) -> DeletionFacts {
        let now = Utc.with_ymd_and_hms(2026, 11, 28, 9, 0, 0).unwrap();
        DeletionFacts {
            state,
            status,
            finished_at: finished_days_ago.map(|d| now - TimeDelta::days(d)),
            activated: state != State::Draft,
            linked_by: vec![],
            current_deployments: vec![],
            now,
            retention_days: 365,
        }
    }

    #[test]
    fn the_current_deployment_of_a_cell_is_not_deleted() {
        let mut current = facts(State::Archived, Status::Success, Some(400));
        current.current_deployments.push(("payment-service".into(), "PROD1".into()));
        let refusal = deletion(&current).unwrap_err();
        assert!(refusal.contains("/reports/deployed") && refusal.contains("payment-service in PROD1"), "{refusal}");
        assert_eq!(deletion(&facts(State::Archived, Status::Success, Some(400))), Ok(Deletion::Purge));
    }

    #[test]
    fn deletion_rules_name_their_reason() {
        assert_eq!(deletion(&facts(State::Draft, Status::NotStarted, None)), Ok(Deletion::Draft));
        assert!(deletion(&facts(State::Active, Status::Running, None)).unwrap_err().contains("in flight"));
        assert!(deletion(&facts(State::Active, Status::Success, Some(10))).unwrap_err().contains("retention period of 365 days"));
        assert_eq!(deletion(&facts(State::Active, Status::Success, Some(400))), Ok(Deletion::Purge));
        assert_eq!(deletion(&facts(State::Archived, Status::Success, Some(400))), Ok(Deletion::Purge));
        let mut linked = facts(State::Archived, Status::Success, Some(400));
        linked.linked_by.push((7, "Hotfix".into(), "hotfix_for".into()));
        assert!(deletion(&linked).unwrap_err().contains("#7"));
    }

    #[test]
    fn retention_never_touches_flight() {
        let now = Utc.with_ymd_and_hms(2026, 11, 28, 9, 0, 0).unwrap();
        let old = Some(now - TimeDelta::days(400));
        assert!(retention_due(State::Active, Status::Success, old, None, now, 365));
        assert!(!retention_due(State::Active, Status::Running, old, None, now, 365));
        assert!(!retention_due(State::Active, Status::Success, Some(now - TimeDelta::days(10)), None, now, 365));
        assert!(retention_due(State::Draft, Status::NotStarted, None, old, now, 365));
        assert!(!retention_due(State::Draft, Status::NotStarted, None, None, now, 365));
    }

    #[test]
    fn targets_come_from_inputs_and_deploys() {
        let def =
            super::super::process::definition::parse_yaml(include_str!("../../tests/fixtures/weekly-production-release.yaml")).unwrap();
        let values = serde_json::json!({"services": ["api", "web"], "version": "1.2"}).as_object().unwrap().clone();
        let (envs, services) = targets(&def, &values);
        assert_eq!(envs, ["PROD1"], "the environment default and the deploys template");
        assert_eq!(services, ["api", "web"]);
        assert_eq!(missing_inputs(&def, &Map::new()), ["services", "version"]);
    }
}
