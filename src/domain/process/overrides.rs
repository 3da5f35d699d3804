//! A release's variable overrides (DESIGN §10): `name` overrides a global variable,
//! `phase.name` a phase's, `phase.activity.name` an activity's.

use serde_json::{Map, Value};

use super::definition::{Definition, VariableDef};

/// Where a scope's variables are defined: nowhere (global), a phase, or an activity of one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScopeAt<'a> {
    pub phase: Option<&'a str>,
    pub activity: Option<&'a str>,
}

impl<'a> ScopeAt<'a> {
    pub const GLOBAL: ScopeAt<'static> = ScopeAt { phase: None, activity: None };

    pub fn phase(phase: &'a str) -> Self {
        ScopeAt { phase: Some(phase), activity: None }
    }

    pub fn activity(phase: &'a str, activity: &'a str) -> Self {
        ScopeAt { phase: Some(phase), activity: Some(activity) }
    }

    /// The override key of a variable defined here.
    pub fn key(&self, name: &str) -> String {
        match (self.phase, self.activity) {
            (Some(p), Some(a)) => format!("{p}.{a}.{name}"),
            (Some(p), None) => format!("{p}.{name}"),
            _ => name.to_string(),
        }
    }

    /// The value a variable defined here takes: the release's override, else its own.
    pub fn value<'v>(&self, var: &'v VariableDef, overrides: &'v Map<String, Value>) -> &'v Value {
        overrides.get(&self.key(&var.name)).unwrap_or(&var.value)
    }
}

/// Every variable a release may override, with its key: global ones first, then each phase's,
/// each followed by its activities'.
pub fn overridable(def: &Definition) -> Vec<(String, &VariableDef)> {
    let mut out: Vec<(String, &VariableDef)> = def.variables.iter().map(|v| (ScopeAt::GLOBAL.key(&v.name), v)).collect();
    for p in &def.phases {
        out.extend(p.variables.iter().map(|v| (ScopeAt::phase(&p.key).key(&v.name), v)));
        for a in &p.activities {
            out.extend(a.variables.iter().map(|v| (ScopeAt::activity(&p.key, &a.key).key(&v.name), v)));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::process::definition::parse_yaml;

    #[test]
    fn keys_name_the_scope_a_variable_is_defined_in() {
        let def = parse_yaml(
            "name: P\nvariables: [{name: region, value: eu}]\nphases: [{key: deploy, name: Deploy, variables: [{name: region, value: us}], \
             activities: [{key: push, name: Push, kind: manual, variables: [{name: batch, value: '5'}]}]}]\n",
        )
        .unwrap();
        let keys: Vec<String> = overridable(&def).into_iter().map(|(k, _)| k).collect();
        assert_eq!(keys, ["region", "deploy.region", "deploy.push.batch"]);
        let overrides = Map::from_iter([("deploy.region".to_string(), Value::from("ap"))]);
        let phase_var = &def.phases[0].variables[0];
        assert_eq!(ScopeAt::phase("deploy").value(phase_var, &overrides), &Value::from("ap"));
        assert_eq!(ScopeAt::GLOBAL.value(&def.variables[0], &overrides), &Value::from("eu"), "the global one keeps its value");
    }
}
