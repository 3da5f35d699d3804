//! `/processes`: the list, and the editor of one process. Edits go to the user's working copy;
//! "Save" makes the next version. Also read-only versions, the diff between two versions, and
//! YAML export/edit.

mod activities;
mod editor;
mod lifecycle;
mod list;
mod phases;
mod versions;
mod yaml;

pub use activities::*;
pub use editor::*;
pub use lifecycle::*;
pub use list::*;
pub use phases::*;
pub use versions::*;
pub use yaml::*;

use crate::db::models::accounts::Organization;
use crate::db::models::processes::{Process, WorkingCopy};
use crate::domain::policy::Action;
use crate::domain::process::definition::parse_value;
use crate::domain::process::edit::RemoveError;
use crate::domain::process::Definition;
use crate::domain::rule::RuleCode;
use crate::ops::processes::{self as ops};
use crate::web::error::AppError;
use crate::web::extractors::CurrentUser;
use crate::web::AppState;

/// What the editor shows: the user's working copy if there is one, else the latest version.
pub struct Editing {
    pub process: Process,
    pub org_label: String,
    pub definition: Definition,
    pub working_copy: bool,
    pub base_version: i32,
}

pub(super) async fn load(state: &AppState, user: &CurrentUser, id: i64, version: Option<i32>) -> Result<Editing, AppError> {
    let mut conn = state.db().await?;
    let process = Process::find(&mut conn, user.account_id, id).await?;
    user.require(Action::ViewProcess, process.scope())?;
    let org_label = match process.org_id {
        Some(org) => format!("organization {}", Organization::find(&mut conn, user.account_id, org).await?.slug),
        None => "account level".into(),
    };
    if version.is_none() && user.may(Action::ManageProcess, process.scope()) {
        if let Some(wc) = WorkingCopy::find(&mut conn, process.id, user.user_id).await? {
            let definition =
                parse_value(wc.definition).map_err(|e| AppError::Unexpected(anyhow::Error::new(e).context("working copy unreadable")))?;
            return Ok(Editing { process, org_label, definition, working_copy: true, base_version: wc.base_version });
        }
    }
    if process.latest_version == 0 {
        let definition = Definition { name: process.name.clone(), description: None, inputs: vec![], variables: vec![], phases: vec![] };
        return Ok(Editing { base_version: 0, process, org_label, definition, working_copy: false });
    }
    let (v, definition) = ops::load(&mut conn, &process, version).await?;
    Ok(Editing { process, org_label, definition, working_copy: false, base_version: v })
}

/// Loads for editing: requires manage_process on the process's scope.
pub(super) async fn load_for_edit(state: &AppState, user: &CurrentUser, id: i64) -> Result<Editing, AppError> {
    let editing = load(state, user, id, None).await?;
    user.require(Action::ManageProcess, editing.process.scope())?;
    Ok(editing)
}

pub(super) async fn store(state: &AppState, user: &CurrentUser, editing: &Editing, def: &Definition) -> Result<(), AppError> {
    let mut conn = state.db().await?;
    WorkingCopy::upsert(&mut conn, &editing.process, user.user_id, editing.base_version, &def.to_json(), state.now()).await?;
    Ok(())
}

pub(super) fn opt(s: &str) -> Option<String> {
    Some(s.trim().to_string()).filter(|s| !s.is_empty())
}

pub(super) fn comma_list(s: &str) -> Vec<String> {
    s.split([',', ' ', '\n']).map(str::trim).filter(|s| !s.is_empty()).map(str::to_string).collect()
}

/// A removal the rules refused: `in_use` with the reason, or not found.
pub(super) fn removal_refused(e: RemoveError) -> AppError {
    match e {
        RemoveError::InUse(message) => AppError::Rule { code: RuleCode::InUse, field: None, message },
        RemoveError::NotFound => AppError::NotFound,
    }
}
