//! Every save-time rule of DESIGN §3, each error naming its item.

use serde_json::Value;
use std::collections::{BTreeMap, HashSet};

use super::definition::{ActivityDef, ActivityKind, Definition, InputType, OnFailure, PhaseDef, VariableDef, MAX_FAN_OUT};
use super::graph::find_cycle;
use super::inputs::{check_value, Catalog};
use super::template::{self, Reference};
use super::time::{parse_duration, parse_point};
use crate::domain::validate::{MAX_DESCRIPTION_LEN, MAX_NAME_LEN};

/// Headers the engine sends itself (DESIGN §3): a tenant's copy would leave the receiver two.
pub const RESERVED_HEADERS: [&str; 2] = ["Idempotency-Key", "Railyard-Callback-Url"];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DefinitionError {
    /// Where: `phases.build.activities.compile.depends_on`.
    pub path: String,
    /// Which rule: `cycle`, `unknown_dependency`, `duplicate_key`, `unknown_reference`, …
    pub code: &'static str,
    pub message: String,
}

impl std::fmt::Display for DefinitionError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

struct Errors(Vec<DefinitionError>);

impl Errors {
    fn add(&mut self, path: impl Into<String>, code: &'static str, message: impl Into<String>) {
        self.0.push(DefinitionError { path: path.into(), code, message: message.into() });
    }
}

pub fn is_key(s: &str) -> bool {
    !s.is_empty() && s.len() <= 64 && s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

fn is_ident(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !s.starts_with(|c: char| c.is_ascii_digit())
}

/// `user:<email>` or `group:<name>`.
pub fn check_principal(s: &str) -> Result<(), String> {
    match s.split_once(':') {
        Some(("user", email)) if crate::domain::validate::email(email).is_ok() => Ok(()),
        Some(("group", name)) if crate::domain::validate::catalog_name(name).is_ok() => Ok(()),
        _ => Err(format!("{s:?} is not user:<email> or group:<name>")),
    }
}

/// Which variables a template may see: the chain of scopes from inner to outer.
struct Visible<'a> {
    scopes: Vec<(&'a str, &'a [VariableDef])>,
}

impl Visible<'_> {
    fn find(&self, name: &str) -> Option<String> {
        self.scopes.iter().find(|(_, vars)| vars.iter().any(|v| v.name == name)).map(|(scope, _)| format!("{scope}{name}"))
    }
}

struct RefContext<'a> {
    def: &'a Definition,
    visible: Visible<'a>,
    /// Inside a fan-out activity, where `${item…}` means something.
    fan_out: bool,
}

impl RefContext<'_> {
    /// Checks a templated value; returns the variable nodes it references (for cycle checks).
    fn check(&self, value: &Value, path: &str, errors: &mut Errors) -> Vec<String> {
        let refs = match template::references_in(value) {
            Ok(r) => r,
            Err(m) => {
                errors.add(path, "invalid_template", m);
                return Vec::new();
            }
        };
        let mut var_nodes = Vec::new();
        for r in refs {
            match &r {
                Reference::Input(n) if !self.def.inputs.iter().any(|i| &i.name == n) => {
                    errors.add(path, "unknown_reference", format!("${{{r}}}: there is no input {n:?}"));
                }
                Reference::Var(n) => match self.visible.find(n) {
                    Some(node) => var_nodes.push(node),
                    None => errors.add(path, "unknown_reference", format!("${{{r}}}: there is no variable {n:?} in scope")),
                },
                Reference::Output { phase, activity, .. } => match self.def.phase(phase) {
                    None => errors.add(path, "unknown_reference", format!("${{{r}}}: there is no phase {phase:?}")),
                    Some(p) if !p.activities.iter().any(|a| a.key == template::split_instance(activity).0) => {
                        errors.add(path, "unknown_reference", format!("${{{r}}}: phase {phase:?} has no activity {activity:?}"))
                    }
                    _ => {}
                },
                Reference::Item(_) if !self.fan_out => {
                    errors.add(path, "unknown_reference", format!("${{{r}}}: only an activity with `for_each` has an item"))
                }
                _ => {}
            }
        }
        var_nodes
    }
}

fn check_vars(
    vars: &[VariableDef],
    scope: &str,
    path: &str,
    ctx: &RefContext<'_>,
    graph: &mut BTreeMap<String, Vec<String>>,
    errors: &mut Errors,
) {
    let mut seen = HashSet::new();
    for v in vars {
        let vpath = format!("{path}.{}", v.name);
        if !is_ident(&v.name) {
            errors.add(&vpath, "invalid", format!("variable name {:?} must be letters, digits and _", v.name));
        }
        if !seen.insert(v.name.as_str()) {
            errors.add(&vpath, "duplicate_key", format!("variable {:?} is defined twice", v.name));
        }
        let refs = ctx.check(&v.value, &vpath, errors);
        graph.entry(format!("{scope}{}", v.name)).or_default().extend(refs);
    }
}

/// DESIGN §9's text limits, by field.
fn check_len(value: &str, max: usize, path: &str, errors: &mut Errors) {
    if value.chars().count() > max {
        errors.add(path, "too_long", format!("must be at most {max} characters"));
    }
}

fn check_description(value: &Option<String>, path: &str, errors: &mut Errors) {
    if let Some(d) = value {
        check_len(d, MAX_DESCRIPTION_LEN, path, errors);
    }
}

fn check_duration(value: &Option<String>, path: String, errors: &mut Errors) {
    if let Some(d) = value {
        if let Err(m) = parse_duration(d) {
            errors.add(path, "invalid_duration", m);
        }
    }
}

/// All errors of a definition (empty = valid). Defaults need not be filled in first.
pub fn validate(def: &Definition) -> Vec<DefinitionError> {
    let mut errors = Errors(Vec::new());
    if def.name.trim().is_empty() {
        errors.add("name", "invalid", "a process needs a name");
    } else {
        check_len(&def.name, MAX_NAME_LEN, "name", &mut errors);
    }
    check_description(&def.description, "description", &mut errors);
    if def.phases.is_empty() {
        errors.add("phases", "invalid", "a process needs at least one phase");
    }

    let mut input_names = HashSet::new();
    for input in &def.inputs {
        let path = format!("inputs.{}", input.name);
        check_description(&input.description, &format!("{path}.description"), &mut errors);
        if !is_ident(&input.name) {
            errors.add(&path, "invalid", format!("input name {:?} must be letters, digits and _", input.name));
        }
        if !input_names.insert(input.name.as_str()) {
            errors.add(&path, "duplicate_key", format!("input {:?} is defined twice", input.name));
        }
        if input.kind == InputType::Enum && input.values.is_empty() {
            errors.add(&path, "invalid", "an enum input needs `values`");
        }
        if input.kind != InputType::Enum && !input.values.is_empty() {
            errors.add(&path, "invalid", "`values` is only for enum inputs");
        }
        if let Some(default) = &input.default {
            if input.secret {
                errors.add(
                    &path,
                    "secret_default",
                    format!("secret input {:?} takes no default: give its value per release or input set", input.name),
                );
            } else if !matches!(
                input.kind,
                InputType::Environment
                    | InputType::EnvironmentList
                    | InputType::Service
                    | InputType::ServiceList
                    | InputType::ServiceVersions
            ) {
                // Catalog names are checked at activation (and warned about in the editor).
                if let Err(m) = check_value(input, default, &Catalog::default()) {
                    errors.add(&path, "invalid_default", format!("default {m}"));
                }
            }
        }
    }

    let global = Visible { scopes: vec![("global.", def.variables.as_slice())] };
    let mut var_graph: BTreeMap<String, Vec<String>> = BTreeMap::new();
    check_vars(&def.variables, "global.", "variables", &RefContext { def, visible: global, fan_out: false }, &mut var_graph, &mut errors);

    let mut phase_keys = HashSet::new();
    for phase in &def.phases {
        check_phase(def, phase, &mut phase_keys, &mut var_graph, &mut errors);
    }
    let phase_graph: Vec<(String, Vec<String>)> = def.phases.iter().map(|p| (p.key.clone(), p.depends_on.clone())).collect();
    if let Some(cycle) = find_cycle(&phase_graph) {
        errors.add(format!("phases.{}.depends_on", cycle.0[0]), "cycle", format!("phase dependencies form a cycle: {cycle}"));
    }
    let var_nodes: Vec<(String, Vec<String>)> = var_graph.into_iter().collect();
    if let Some(cycle) = find_cycle(&var_nodes) {
        let names: Vec<String> = cycle.0.iter().map(|n| n.rsplit('.').next().unwrap_or(n).to_string()).collect();
        errors.add(
            format!("variables.{}", names[0]),
            "variable_cycle",
            format!("variables refer to each other in a cycle: {}", names.join(" → ")),
        );
    }
    errors.0
}

fn check_phase(
    def: &Definition,
    phase: &PhaseDef,
    keys: &mut HashSet<String>,
    var_graph: &mut BTreeMap<String, Vec<String>>,
    errors: &mut Errors,
) {
    let path = format!("phases.{}", phase.key);
    if !is_key(&phase.key) {
        errors.add(format!("{path}.key"), "invalid_key", format!("phase key {:?} must be lower-case letters, digits and _", phase.key));
    }
    if !keys.insert(phase.key.clone()) {
        errors.add(format!("{path}.key"), "duplicate_key", format!("phase key {:?} is used twice", phase.key));
    }
    if phase.name.trim().is_empty() {
        errors.add(format!("{path}.name"), "invalid", "a phase needs a name");
    }
    check_len(&phase.name, MAX_NAME_LEN, &format!("{path}.name"), errors);
    check_description(&phase.description, &format!("{path}.description"), errors);
    if let Some(owner) = &phase.owner {
        if let Err(m) = check_principal(owner) {
            errors.add(format!("{path}.owner"), "invalid", m);
        }
    }
    for dep in &phase.depends_on {
        if dep == &phase.key {
            errors.add(format!("{path}.depends_on"), "cycle", format!("phase dependencies form a cycle: {dep} → {dep}"));
        } else if def.phase(dep).is_none() {
            errors.add(
                format!("{path}.depends_on"),
                "unknown_dependency",
                format!("phase {:?} depends on {dep:?}, which does not exist", phase.key),
            );
        }
    }
    if let Some(nb) = &phase.not_before {
        if let Err(m) = parse_point(nb) {
            errors.add(format!("{path}.not_before"), "invalid_offset", m);
        }
    }
    if phase.activities.is_empty() {
        errors.add(format!("{path}.activities"), "invalid", "a phase needs at least one activity");
    }
    let phase_scope = format!("phase.{}.", phase.key);
    let visible = Visible { scopes: vec![(phase_scope.as_str(), phase.variables.as_slice()), ("global.", def.variables.as_slice())] };
    check_vars(
        &phase.variables,
        &phase_scope,
        &format!("{path}.variables"),
        &RefContext { def, visible, fan_out: false },
        var_graph,
        errors,
    );

    let mut activity_keys = HashSet::new();
    for activity in &phase.activities {
        check_activity(def, phase, activity, &mut activity_keys, var_graph, errors);
    }
    let graph: Vec<(String, Vec<String>)> = phase.activities.iter().map(|a| (a.key.clone(), a.depends_on.clone())).collect();
    if let Some(cycle) = find_cycle(&graph) {
        errors.add(
            format!("{path}.activities.{}.depends_on", cycle.0[0]),
            "cycle",
            format!("activity dependencies in phase {:?} form a cycle: {cycle}", phase.key),
        );
    }
}

fn check_activity(
    def: &Definition,
    phase: &PhaseDef,
    a: &ActivityDef,
    keys: &mut HashSet<String>,
    var_graph: &mut BTreeMap<String, Vec<String>>,
    errors: &mut Errors,
) {
    let path = format!("phases.{}.activities.{}", phase.key, a.key);
    if !is_key(&a.key) {
        errors.add(format!("{path}.key"), "invalid_key", format!("activity key {:?} must be lower-case letters, digits and _", a.key));
    }
    if !keys.insert(a.key.clone()) {
        errors.add(format!("{path}.key"), "duplicate_key", format!("activity key {:?} is used twice in phase {:?}", a.key, phase.key));
    }
    if a.name.trim().is_empty() {
        errors.add(format!("{path}.name"), "invalid", "an activity needs a name");
    }
    check_len(&a.name, MAX_NAME_LEN, &format!("{path}.name"), errors);
    check_description(&a.description, &format!("{path}.description"), errors);
    if let Some(owner) = &a.owner {
        if let Err(m) = check_principal(owner) {
            errors.add(format!("{path}.owner"), "invalid", m);
        }
    }
    for dep in &a.depends_on {
        if dep == &a.key {
            errors.add(
                format!("{path}.depends_on"),
                "cycle",
                format!("activity dependencies in phase {:?} form a cycle: {dep} → {dep}", phase.key),
            );
        } else if !phase.activities.iter().any(|x| &x.key == dep) {
            errors.add(
                format!("{path}.depends_on"),
                "unknown_dependency",
                format!("activity {:?} depends on {dep:?}, which is not an activity of phase {:?}", a.key, phase.key),
            );
        }
    }
    if let Some(retry) = &a.retry {
        if retry.max_attempts == 0 || retry.max_attempts > 100 {
            errors.add(format!("{path}.retry.max_attempts"), "invalid", "must be between 1 and 100");
        }
        check_duration(&Some(retry.backoff.clone()), format!("{path}.retry.backoff"), errors);
    }
    check_duration(&a.timeout, format!("{path}.timeout"), errors);
    check_duration(&a.escalate_after, format!("{path}.escalate_after"), errors);
    for r in &a.records {
        if !is_ident(r) {
            errors.add(format!("{path}.records"), "invalid", format!("{r:?} is not an output name"));
        }
    }

    let phase_scope = format!("phase.{}.", phase.key);
    let activity_scope = format!("activity.{}.{}.", phase.key, a.key);
    let visible = Visible {
        scopes: vec![
            (activity_scope.as_str(), a.variables.as_slice()),
            (phase_scope.as_str(), phase.variables.as_slice()),
            ("global.", def.variables.as_slice()),
        ],
    };
    let outer = RefContext { def, visible, fan_out: false };
    if let Some(for_each) = &a.for_each {
        outer.check(&Value::String(for_each.clone()), &format!("{path}.for_each"), errors);
    }
    match a.max_parallel {
        Some(_) if a.for_each.is_none() => {
            errors.add(format!("{path}.max_parallel"), "invalid", "`max_parallel` is only for an activity with `for_each`")
        }
        Some(n) if n == 0 || n as usize > MAX_FAN_OUT => {
            errors.add(format!("{path}.max_parallel"), "invalid", format!("must be between 1 and {MAX_FAN_OUT}"))
        }
        _ => {}
    }
    let ctx = RefContext { fan_out: a.for_each.is_some(), ..outer };
    check_vars(&a.variables, &activity_scope, &format!("{path}.variables"), &ctx, var_graph, errors);
    if let Some(deploys) = &a.deploys {
        for (field, v) in [("service", &deploys.service), ("version", &deploys.version), ("environment", &deploys.environment)] {
            if let Some(v) = v {
                let field_path = format!("{path}.deploys.{field}");
                ctx.check(&Value::String(v.clone()), &field_path, errors);
                // The phase takes its deploy locks before its first deploy starts, so what it
                // deploys cannot wait for what it produces.
                // Only what names a lock counts: the version is read when the deploy is recorded.
                let own_outputs = field != "version"
                    && template::references_in(&Value::String(v.clone()))
                        .unwrap_or_default()
                        .into_iter()
                        .any(|r| matches!(&r, Reference::Output { phase: p, .. } if p == &phase.key));
                if own_outputs {
                    errors.add(
                        &field_path,
                        "deploys_own_outputs",
                        format!(
                            "`deploys` may not use outputs of its own phase {:?} (its deploy locks are taken before it starts)",
                            phase.key
                        ),
                    );
                }
            }
        }
    }

    let kind = a.kind;
    let only = |present: bool, key: &str, for_kind: ActivityKind, errors: &mut Errors| {
        if present && kind != for_kind {
            errors.add(format!("{path}.{key}"), "invalid", format!("`{key}` is only for {} activities", for_kind.as_str()));
        }
    };
    only(a.config.is_some(), "config", ActivityKind::Webhook, errors);
    only(!a.approvers.is_empty(), "approvers", ActivityKind::Approval, errors);
    only(a.threshold.is_some(), "threshold", ActivityKind::Approval, errors);
    only(a.required_approvals.is_some(), "required_approvals", ActivityKind::Approval, errors);
    only(a.separation_of_duties.is_some(), "separation_of_duties", ActivityKind::Approval, errors);
    only(a.process.is_some(), "process", ActivityKind::Subprocess, errors);
    only(!a.inputs.is_empty(), "inputs", ActivityKind::Subprocess, errors);
    only(a.wait_for.is_some(), "for", ActivityKind::Wait, errors);
    only(a.until.is_some(), "until", ActivityKind::Wait, errors);

    match kind {
        ActivityKind::Webhook => match &a.config {
            None => errors.add(format!("{path}.config"), "invalid", "a webhook needs `config` with at least a `url`"),
            Some(c) => {
                let url_path = format!("{path}.config.url");
                ctx.check(&Value::String(c.url.clone()), &url_path, errors);
                let literal_start = c.url.split("${").next().unwrap_or("");
                if !(c.url.starts_with("${") || literal_start.starts_with("https://") || literal_start.starts_with("http://")) {
                    errors.add(&url_path, "invalid", format!("{:?} is not an http(s) URL", c.url));
                }
                if let Some(m) = &c.method {
                    if !["GET", "POST", "PUT", "PATCH", "DELETE"].contains(&m.to_uppercase().as_str()) {
                        errors.add(format!("{path}.config.method"), "invalid", format!("{m:?} is not GET, POST, PUT, PATCH or DELETE"));
                    }
                }
                for (name, value) in &c.headers {
                    if RESERVED_HEADERS.iter().any(|r| r.eq_ignore_ascii_case(name.trim())) {
                        errors.add(
                            format!("{path}.config.headers.{name}"),
                            "reserved_header",
                            format!("{name:?} is set by Railyard itself on every request; remove it"),
                        );
                    }
                    ctx.check(&Value::String(value.clone()), &format!("{path}.config.headers.{name}"), errors);
                }
                if let Some(body) = &c.body {
                    ctx.check(body, &format!("{path}.config.body"), errors);
                }
                check_duration(&c.timeout, format!("{path}.config.timeout"), errors);
            }
        },
        ActivityKind::Approval => {
            if a.approvers.is_empty() {
                errors.add(format!("{path}.approvers"), "invalid", "an approval needs `approvers` (user:<email> or group:<name>)");
            }
            for approver in &a.approvers {
                if let Err(m) = check_principal(approver) {
                    errors.add(format!("{path}.approvers"), "invalid", m);
                }
            }
            if a.threshold.is_some() && a.required_approvals.is_some() {
                errors.add(format!("{path}.threshold"), "threshold_conflict", "give either `threshold` or `required_approvals`, not both");
            }
            if a.required_approvals == Some(0) {
                errors.add(format!("{path}.required_approvals"), "invalid", "must be at least 1");
            }
            if a.on_failure == Some(OnFailure::Ignore) || a.critical == Some(false) {
                errors.add(format!("{path}.on_failure"), "invalid", "approvals cannot be ignored: they are always critical");
            }
        }
        ActivityKind::Subprocess => {
            if a.process.as_deref().is_none_or(|p| p.trim().is_empty()) {
                errors.add(format!("{path}.process"), "invalid", "a subprocess needs `process` (the name of the process to run)");
            }
            for (name, value) in &a.inputs {
                ctx.check(value, &format!("{path}.inputs.{name}"), errors);
            }
        }
        ActivityKind::Wait => match (&a.wait_for, &a.until) {
            (Some(_), Some(_)) | (None, None) => {
                errors.add(format!("{path}.for"), "invalid", "a wait needs exactly one of `for` or `until`")
            }
            (Some(d), None) => check_duration(&Some(d.clone()), format!("{path}.for"), errors),
            (None, Some(u)) => {
                if u.contains("${") {
                    ctx.check(&Value::String(u.clone()), &format!("{path}.until"), errors);
                } else if let Err(m) = parse_point(u) {
                    errors.add(format!("{path}.until"), "invalid_offset", m);
                }
            }
        },
        ActivityKind::Manual => {}
    }
}

/// References to groups, users and environments (literal ones), for warnings at save.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Mentions {
    pub groups: Vec<String>,
    pub users: Vec<String>,
    pub environments: Vec<String>,
}

pub fn mentions(def: &Definition) -> Mentions {
    let mut m = Mentions::default();
    let mut principal = |p: &str| match p.split_once(':') {
        Some(("group", g)) if !m.groups.contains(&g.to_string()) => m.groups.push(g.to_string()),
        Some(("user", u)) if !m.users.contains(&u.to_ascii_lowercase()) => m.users.push(u.to_ascii_lowercase()),
        _ => {}
    };
    for phase in &def.phases {
        if let Some(o) = &phase.owner {
            principal(o);
        }
        for a in &phase.activities {
            if let Some(o) = &a.owner {
                principal(o);
            }
            for ap in &a.approvers {
                principal(ap);
            }
        }
    }
    let mut env = |e: &str| {
        if !e.contains("${") && !m.environments.contains(&e.to_string()) {
            m.environments.push(e.to_string());
        }
    };
    for input in &def.inputs {
        if input.kind == InputType::Environment {
            if let Some(Value::String(d)) = &input.default {
                env(d);
            }
        }
    }
    for phase in &def.phases {
        for a in &phase.activities {
            if let Some(e) = a.deploys.as_ref().and_then(|d| d.environment.as_deref()) {
                env(e);
            }
        }
    }
    m
}

#[cfg(test)]
mod tests {
    use super::super::definition::parse_yaml;
    use super::*;

    fn errors_of(yaml: &str) -> Vec<DefinitionError> {
        validate(&parse_yaml(yaml).expect("parses"))
    }

    fn one(yaml: &str) -> DefinitionError {
        let errors = errors_of(yaml);
        assert_eq!(errors.len(), 1, "{errors:#?}");
        errors.into_iter().next().unwrap()
    }

    #[test]
    fn fixtures_are_valid() {
        for yaml in [
            include_str!("../../../tests/fixtures/weekly-production-release.yaml"),
            include_str!("../../../tests/fixtures/system-release-train.yaml"),
            include_str!("../../../tests/fixtures/hotfix.yaml"),
        ] {
            assert_eq!(errors_of(yaml), vec![]);
        }
    }

    #[test]
    fn a_tenant_header_may_not_pose_as_the_engine_s_own() {
        for name in ["Idempotency-Key", "idempotency-key", "RAILYARD-CALLBACK-URL"] {
            let e = one(&format!(
                "name: x\nphases: [{{key: p, name: P, activities: [{{key: h, name: H, kind: webhook, config: {{url: 'https://ci.example.com', headers: {{{name}: x}}}}}}]}}]\n"
            ));
            assert_eq!((e.code, e.path.as_str()), ("reserved_header", format!("phases.p.activities.h.config.headers.{name}").as_str()));
        }
    }

    #[test]
    fn texts_longer_than_the_limits_are_refused_by_field() {
        let long_name = "n".repeat(201);
        let e = one(&format!("name: x\nphases: [{{key: p, name: {long_name}, activities: [{{key: a, name: A, kind: manual}}]}}]\n"));
        assert_eq!((e.code, e.path.as_str()), ("too_long", "phases.p.name"));
        let e = one(&format!("name: x\nphases: [{{key: p, name: P, activities: [{{key: a, name: {long_name}, kind: manual}}]}}]\n"));
        assert_eq!(e.path, "phases.p.activities.a.name");
        let long_text = "d".repeat(20_001);
        let e = one(&format!(
            "name: x\nphases: [{{key: p, name: P, activities: [{{key: a, name: A, kind: manual, description: {long_text}}}]}}]\n"
        ));
        assert_eq!(e.path, "phases.p.activities.a.description");
        let e = one(&format!(
            "name: x\ndescription: {long_text}\nphases: [{{key: p, name: P, activities: [{{key: a, name: A, kind: manual}}]}}]\n"
        ));
        assert_eq!(e.path, "description");
    }

    #[test]
    fn phase_and_activity_cycles_are_named() {
        let e = one("name: x\nphases:\n- {key: build, name: B, depends_on: [test], activities: [{key: a, name: A, kind: manual}]}\n- {key: test, name: T, depends_on: [build], activities: [{key: a, name: A, kind: manual}]}\n");
        assert_eq!((e.code, e.message.as_str()), ("cycle", "phase dependencies form a cycle: build → test → build"));
        let e = one("name: x\nphases:\n- {key: p, name: P, activities: [{key: a, name: A, kind: manual, depends_on: b}, {key: b, name: B, kind: manual, depends_on: a}]}\n");
        assert_eq!(e.code, "cycle");
        assert!(e.message.contains("a → b → a"), "{}", e.message);
    }

    #[test]
    fn each_rule_names_its_item() {
        let base = |phases: &str| {
            format!("name: x\ninputs: [{{name: version, type: string}}]\nvariables: [{{name: v, value: \"${{inputs.version}}\"}}]\nphases:\n{phases}")
        };
        let e = one(&base("- {key: p, name: P, depends_on: [ghost], activities: [{key: a, name: A, kind: manual}]}\n"));
        assert_eq!((e.code, e.path.as_str()), ("unknown_dependency", "phases.p.depends_on"));
        assert!(e.message.contains("ghost"));
        let e = one(&base("- {key: p, name: P, activities: [{key: a, name: A, kind: manual}]}\n- {key: p, name: Q, activities: [{key: a, name: A, kind: manual}]}\n"));
        assert_eq!(e.code, "duplicate_key");
        let e = one(&base("- {key: p, name: P, activities: [{key: a, name: A, kind: manual, deploys: {version: \"${vars.nope}\"}}]}\n"));
        assert_eq!((e.code, e.path.as_str()), ("unknown_reference", "phases.p.activities.a.deploys.version"));
        assert!(e.message.contains("vars.nope"));
        let e = one(&base("- {key: p, name: P, not_before: \"+4x\", activities: [{key: a, name: A, kind: manual}]}\n"));
        assert_eq!((e.code, e.path.as_str()), ("invalid_offset", "phases.p.not_before"));
        let e = one(&base("- {key: p, name: P, activities: [{key: a, name: A, kind: approval, approvers: group:qa, threshold: all, required_approvals: 2}]}\n"));
        assert_eq!((e.code, e.path.as_str()), ("threshold_conflict", "phases.p.activities.a.threshold"));
        let e = one("name: x\ninputs: [{name: token, type: string, secret: true, default: abc}]\nphases: [{key: p, name: P, activities: [{key: a, name: A, kind: manual}]}]\n");
        assert_eq!((e.code, e.path.as_str()), ("secret_default", "inputs.token"));
    }

    #[test]
    fn variable_cycles_and_scopes() {
        let e = one("name: x\nvariables: [{name: a, value: \"${vars.b}\"}, {name: b, value: \"x${vars.a}\"}]\nphases: [{key: p, name: P, activities: [{key: a, name: A, kind: manual}]}]\n");
        assert_eq!(e.code, "variable_cycle");
        assert!(e.message.contains("a → b → a"), "{}", e.message);
        // Phase variables are visible to its activities, not to other phases.
        let ok = "name: x\nphases:\n- {key: p, name: P, variables: [{name: env, value: QA}], activities: [{key: a, name: A, kind: manual, deploys: {environment: \"${vars.env}\"}}]}\n";
        assert_eq!(errors_of(ok), vec![]);
        let bad = "name: x\nphases:\n- {key: p, name: P, variables: [{name: env, value: QA}], activities: [{key: a, name: A, kind: manual}]}\n- {key: q, name: Q, activities: [{key: a, name: A, kind: manual, deploys: {environment: \"${vars.env}\"}}]}\n";
        assert_eq!(one(bad).code, "unknown_reference");
    }

    #[test]
    fn kind_specific_keys() {
        let e = one("name: x\nphases: [{key: p, name: P, activities: [{key: a, name: A, kind: manual, approvers: group:qa}]}]\n");
        assert!(e.message.contains("only for approval"));
        let e = one("name: x\nphases: [{key: p, name: P, activities: [{key: a, name: A, kind: wait}]}]\n");
        assert!(e.message.contains("exactly one of"));
        let e = one("name: x\nphases: [{key: p, name: P, activities: [{key: a, name: A, kind: webhook}]}]\n");
        assert!(e.message.contains("needs `config`"));
        let e = one("name: x\nphases: [{key: p, name: P, activities: [{key: a, name: A, kind: approval, approvers: group:qa, on_failure: ignore}]}]\n");
        assert!(e.message.contains("cannot be ignored"));
        let m = mentions(&parse_yaml(include_str!("../../../tests/fixtures/system-release-train.yaml")).unwrap());
        assert!(m.groups.contains(&"release-stakeholders".to_string()));
        assert!(m.environments.contains(&"PROD3".to_string()));
    }
}
