//! Rules of editing a working copy: what a removal may not break, and which errors an edit
//! introduced.

use super::{validate, Definition};

/// Why a phase or activity could not be removed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RemoveError {
    #[error("{0}")]
    InUse(String),
    #[error("there is no such item")]
    NotFound,
}

/// Removes phase `key` unless another phase depends on it.
pub fn remove_phase(def: &mut Definition, key: &str) -> Result<(), RemoveError> {
    let dependents: Vec<&str> = def.phases.iter().filter(|p| p.depends_on.iter().any(|d| d == key)).map(|p| p.key.as_str()).collect();
    if !dependents.is_empty() {
        return Err(RemoveError::InUse(format!(
            "Phase {key} cannot be removed: {} depend(s) on it. Remove that dependency first.",
            dependents.join(", ")
        )));
    }
    let before = def.phases.len();
    def.phases.retain(|p| p.key != key);
    if def.phases.len() == before {
        return Err(RemoveError::NotFound);
    }
    Ok(())
}

/// Removes activity `key` of phase `phase` unless another activity of the phase depends on it.
pub fn remove_activity(def: &mut Definition, phase: &str, key: &str) -> Result<(), RemoveError> {
    let phase = def.phases.iter_mut().find(|p| p.key == phase).ok_or(RemoveError::NotFound)?;
    let dependents: Vec<&str> = phase.activities.iter().filter(|a| a.depends_on.iter().any(|d| d == key)).map(|a| a.key.as_str()).collect();
    if !dependents.is_empty() {
        return Err(RemoveError::InUse(format!("Activity {key} cannot be removed: {} depend(s) on it.", dependents.join(", "))));
    }
    let before = phase.activities.len();
    phase.activities.retain(|a| a.key != key);
    if phase.activities.len() == before {
        return Err(RemoveError::NotFound);
    }
    Ok(())
}

/// Errors the change introduced (those already there before it are not the form's fault).
/// A phase without activities is fine in a working copy; "Save" insists on them.
pub fn new_errors(before: &Definition, after: &Definition) -> Vec<String> {
    let old = validate(before);
    validate(after)
        .into_iter()
        .filter(|e| !old.contains(e))
        .filter(|e| !(e.code == "invalid" && e.path.ends_with(".activities") && e.message.contains("at least one activity")))
        .filter(|e| !(e.path == "phases" && e.code == "invalid"))
        .map(|e| e.to_string())
        .collect()
}
