//! Which template references of a release would fail at run time for want of a value: an input
//! that is optional, unset and has no default, used by an activity directly or through a
//! variable. Validation already refused unknown inputs and variables when the process was saved;
//! this is what only the release's own values can decide (DESIGN §3, activation).

use serde_json::{Map, Value};
use std::collections::BTreeSet;

use super::definition::{ActivityDef, ActivityKind, Definition, VariableDef};
use super::overrides::ScopeAt;
use super::template::{references_in, Reference};

/// A reference that cannot resolve, and the activities whose templates need it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unresolved {
    /// As written in templates, e.g. `${inputs.ci_token}`.
    pub reference: String,
    /// `phase.activity` keys, in process order.
    pub used_by: Vec<String>,
}

impl std::fmt::Display for Unresolved {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} has no value (used by {})", self.reference, self.used_by.join(", "))
    }
}

/// The templated values an activity renders when it runs.
fn templates_of(a: &ActivityDef) -> Vec<Value> {
    let mut out = Vec::new();
    if let Some(d) = &a.deploys {
        out.extend([&d.service, &d.version, &d.environment].into_iter().flatten().map(|t| Value::String(t.clone())));
    }
    if let (ActivityKind::Webhook, Some(c)) = (a.kind, &a.config) {
        out.push(Value::String(c.url.clone()));
        out.extend(c.headers.values().map(|v| Value::String(v.clone())));
        out.extend(c.body.clone());
    }
    if a.kind == ActivityKind::Subprocess {
        out.extend(a.inputs.values().cloned());
    }
    if let (ActivityKind::Wait, Some(until)) = (a.kind, &a.until) {
        out.push(Value::String(until.clone()));
    }
    out
}

/// Inputs without a value that `value` needs, following variables through their scopes
/// (innermost first; a release's override replaces a variable's value).
fn missing_inputs_of(
    value: &Value,
    scopes: &[(ScopeAt<'_>, &[VariableDef])],
    values: &Map<String, Value>,
    overrides: &Map<String, Value>,
    visiting: &mut BTreeSet<String>,
    out: &mut BTreeSet<String>,
) {
    let Ok(refs) = references_in(value) else { return };
    for r in refs {
        match r {
            Reference::Input(name) if !values.contains_key(&name) => {
                out.insert(name);
            }
            Reference::Var(name) => {
                // The scope a variable is found in is also the scope its own references resolve from.
                let Some(depth) = scopes.iter().position(|(_, vars)| vars.iter().any(|v| v.name == name)) else { continue };
                if !visiting.insert(format!("{depth}.{name}")) {
                    continue;
                }
                let (at, vars) = scopes[depth];
                if let Some(var) = vars.iter().find(|v| v.name == name) {
                    missing_inputs_of(at.value(var, overrides), &scopes[depth..], values, overrides, visiting, out);
                }
            }
            _ => {}
        }
    }
}

/// Every input reference that cannot resolve with these values (defaults included) and
/// variable overrides, ordered by input name.
pub fn unresolved(def: &Definition, values: &Map<String, Value>, overrides: &Map<String, Value>) -> Vec<Unresolved> {
    let mut found: Vec<Unresolved> = Vec::new();
    for phase in &def.phases {
        for a in &phase.activities {
            let scopes: [(ScopeAt<'_>, &[VariableDef]); 3] = [
                (ScopeAt::activity(&phase.key, &a.key), &a.variables),
                (ScopeAt::phase(&phase.key), &phase.variables),
                (ScopeAt::GLOBAL, &def.variables),
            ];
            let mut missing = BTreeSet::new();
            for t in templates_of(a) {
                missing_inputs_of(&t, &scopes, values, overrides, &mut BTreeSet::new(), &mut missing);
            }
            for name in missing {
                let reference = format!("${{inputs.{name}}}");
                let at = format!("{}.{}", phase.key, a.key);
                match found.iter_mut().find(|u| u.reference == reference) {
                    Some(u) => u.used_by.push(at),
                    None => found.push(Unresolved { reference, used_by: vec![at] }),
                }
            }
        }
    }
    found.sort_by(|a, b| a.reference.cmp(&b.reference));
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::process::definition::parse_yaml;
    use serde_json::json;

    fn def() -> Definition {
        parse_yaml(
            "name: P\ninputs: [{name: ci_token, type: string}, {name: region, type: string, default: eu}, {name: note, type: string}]\n\
             variables: [{name: auth, value: 'Bearer ${inputs.ci_token}'}]\n\
             phases:\n- key: build\n  name: Build\n  activities:\n  - {key: compile, name: Compile, kind: webhook, config: {url: 'https://ci.example.com/${inputs.region}', headers: {Authorization: '${vars.auth}'}}}\n  - {key: sign, name: Sign, kind: manual, description: '${inputs.note}'}\n\
             - key: ship\n  name: Ship\n  activities:\n  - {key: push, name: Push, kind: webhook, config: {url: 'https://ci.example.com/push', body: {token: '${inputs.ci_token}'}}}\n",
        )
        .expect("definition")
    }

    fn with_defaults(values: Value) -> Map<String, Value> {
        crate::domain::release::with_defaults(&def(), values.as_object().expect("object"))
    }

    #[test]
    fn an_unset_optional_input_used_through_a_variable_or_directly_is_named_with_its_users() {
        let found = unresolved(&def(), &with_defaults(json!({})), &Map::new());
        assert_eq!(
            found,
            vec![Unresolved { reference: "${inputs.ci_token}".into(), used_by: vec!["build.compile".into(), "ship.push".into()] }]
        );
        assert_eq!(found[0].to_string(), "${inputs.ci_token} has no value (used by build.compile, ship.push)");
    }

    #[test]
    fn set_inputs_defaults_text_that_is_not_rendered_and_overrides_resolve() {
        assert!(unresolved(&def(), &with_defaults(json!({"ci_token": "t"})), &Map::new()).is_empty());
        let overridden = json!({"auth": "none"});
        let found = unresolved(&def(), &with_defaults(json!({})), overridden.as_object().expect("object"));
        assert_eq!(found.iter().map(|u| u.used_by.clone()).collect::<Vec<_>>(), vec![vec!["ship.push".to_string()]]);
    }
}
