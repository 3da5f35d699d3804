//! What changed between two versions: phases and activities added, removed or changed.

use super::definition::Definition;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    Added(String),
    Removed(String),
    Changed(String),
}

impl Change {
    pub fn kind(&self) -> &'static str {
        match self {
            Change::Added(_) => "added",
            Change::Removed(_) => "removed",
            Change::Changed(_) => "changed",
        }
    }

    pub fn subject(&self) -> &str {
        match self {
            Change::Added(s) | Change::Removed(s) | Change::Changed(s) => s,
        }
    }
}

/// Changes from `old` to `new`, in the new definition's order (removed items last).
pub fn diff(old: &Definition, new: &Definition) -> Vec<Change> {
    let mut changes = Vec::new();
    if old.name != new.name || old.description != new.description {
        changes.push(Change::Changed("process name or description".into()));
    }
    if old.inputs != new.inputs {
        changes.push(Change::Changed("inputs".into()));
    }
    if old.variables != new.variables {
        changes.push(Change::Changed("variables".into()));
    }
    for phase in &new.phases {
        let label = format!("phase {}", phase.key);
        match old.phase(&phase.key) {
            None => changes.push(Change::Added(label)),
            Some(before) => {
                let mut own_before = before.clone();
                let mut own_after = phase.clone();
                own_before.activities.clear();
                own_after.activities.clear();
                if own_before != own_after {
                    changes.push(Change::Changed(label));
                }
                for a in &phase.activities {
                    let alabel = format!("activity {}.{}", phase.key, a.key);
                    match before.activities.iter().find(|b| b.key == a.key) {
                        None => changes.push(Change::Added(alabel)),
                        Some(b) if b != a => changes.push(Change::Changed(alabel)),
                        _ => {}
                    }
                }
                for b in &before.activities {
                    if !phase.activities.iter().any(|a| a.key == b.key) {
                        changes.push(Change::Removed(format!("activity {}.{}", phase.key, b.key)));
                    }
                }
            }
        }
    }
    for phase in &old.phases {
        if new.phase(&phase.key).is_none() {
            changes.push(Change::Removed(format!("phase {}", phase.key)));
        }
    }
    changes
}

#[cfg(test)]
mod tests {
    use super::super::definition::{parse_yaml, ActivityDef, ActivityKind};
    use super::*;

    #[test]
    fn finds_added_removed_and_changed() {
        let old = parse_yaml(include_str!("../../../tests/fixtures/weekly-production-release.yaml")).unwrap().normalized();
        let mut new = old.clone();
        new.phases.retain(|p| p.key != "rollback");
        new.phases[0].activities[0].name = "Compile".into();
        new.phases[2].activities.push(ActivityDef::new("verify", "Verify", ActivityKind::Manual));
        assert_eq!(
            diff(&old, &new),
            vec![
                Change::Changed("activity build.compile".into()),
                Change::Added("activity rollout.verify".into()),
                Change::Removed("phase rollback".into()),
            ]
        );
        assert!(diff(&old, &old).is_empty());
    }
}
