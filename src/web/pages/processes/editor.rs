//! The editor page: phases by depth with their activities, versions, "Save" and "Discard".

use actix_session::Session;
use actix_web::{web, HttpResponse};
use askama::Template;
use chrono::{DateTime, Utc};
use std::collections::BTreeMap;

use super::list::definition_messages;
use crate::db::models::processes::{ProcessVersion, WorkingCopy};
use crate::domain::policy::Action;
use crate::domain::process::definition::{ActivityDef, ActivityKind, Completion};
use crate::domain::process::graph::depths;
use crate::domain::process::Definition;
use crate::ops::processes::{self as ops};
use crate::web::error::AppError;
use crate::web::extractors::{CurrentUser, Htmx};
use crate::web::flash;
use crate::web::pages::{redirect, render, render_form_errors, Chrome};
use crate::web::AppState;

use super::*;

pub struct ActivityView {
    pub key: String,
    pub name: String,
    pub kind: &'static str,
    pub owner: String,
    pub after: String,
    pub summary: String,
}

pub struct PhaseView {
    pub key: String,
    pub name: String,
    pub owner: String,
    pub after: String,
    pub not_before: String,
    pub rollback: bool,
    pub activities: Vec<ActivityView>,
}

pub struct DepthGroup {
    pub depth: usize,
    pub phases: Vec<PhaseView>,
}

pub(super) fn activity_summary(a: &ActivityDef) -> String {
    let mut parts = Vec::new();
    match a.kind {
        ActivityKind::Approval => {
            parts.push(format!("approvers {}", a.approvers.join(", ")));
            match (a.required_approvals, a.threshold) {
                (Some(n), _) => parts.push(format!("{n} approval(s) needed")),
                (None, Some(t)) => parts.push(format!(
                    "threshold {}",
                    serde_json::to_value(t).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default()
                )),
                _ => {}
            }
            if a.separation_of_duties == Some(true) {
                parts.push("separation of duties".into());
            }
        }
        ActivityKind::Webhook => {
            if let Some(c) = &a.config {
                parts.push(format!("{} {}", c.method.as_deref().unwrap_or("POST"), c.url));
                if c.completion == Some(Completion::Callback) {
                    parts.push("waits for a callback".into());
                }
            }
        }
        ActivityKind::Wait => {
            if let Some(f) = &a.wait_for {
                parts.push(format!("waits {f}"));
            }
            if let Some(u) = &a.until {
                parts.push(format!("until {u}"));
            }
        }
        ActivityKind::Subprocess => parts.push(format!("runs process {}", a.process.as_deref().unwrap_or("?"))),
        ActivityKind::Manual => {}
    }
    if let Some(d) = &a.deploys {
        parts.push(format!(
            "deploys {} {} to {}",
            d.service.as_deref().unwrap_or("?"),
            d.version.as_deref().unwrap_or(""),
            d.environment.as_deref().unwrap_or("the release's environments")
        ));
    }
    if !a.is_critical() {
        parts.push("not critical".into());
    }
    parts.join(" · ")
}

/// Phases grouped by dependency depth; each with its activities and "after: X" labels.
pub fn depth_groups(def: &Definition) -> Vec<DepthGroup> {
    let graph: Vec<(String, Vec<String>)> = def.phases.iter().map(|p| (p.key.clone(), p.depends_on.clone())).collect();
    let depth = depths(&graph);
    let mut groups: BTreeMap<usize, Vec<PhaseView>> = BTreeMap::new();
    for p in &def.phases {
        let view = PhaseView {
            key: p.key.clone(),
            name: p.name.clone(),
            owner: p.owner.clone().unwrap_or_default(),
            after: p.depends_on.join(", "),
            not_before: p.not_before.clone().unwrap_or_default(),
            rollback: p.rollback,
            activities: p
                .activities
                .iter()
                .map(|a| ActivityView {
                    key: a.key.clone(),
                    name: a.name.clone(),
                    kind: a.kind.as_str(),
                    owner: a.owner.clone().unwrap_or_default(),
                    after: a.depends_on.join(", "),
                    summary: activity_summary(a),
                })
                .collect(),
        };
        // Rollback phases run only on failure: show them last, apart.
        let d = if p.rollback { usize::MAX } else { depth.get(&p.key).copied().unwrap_or(0) };
        groups.entry(d).or_default().push(view);
    }
    groups.into_iter().map(|(depth, phases)| DepthGroup { depth, phases }).collect()
}

pub struct VersionRow {
    pub version: i32,
    pub at: String,
    pub by: String,
}

#[derive(Template)]
#[template(path = "pages/processes/editor.html")]
pub struct EditorPage {
    pub chrome: Chrome,
    pub id: i64,
    pub name: String,
    pub org_label: String,
    pub latest_version: i32,
    /// What is on screen: "working copy (based on version 3)", "version 2", …
    pub showing: String,
    pub read_only: bool,
    pub can_edit: bool,
    pub working_copy: bool,
    pub groups: Vec<DepthGroup>,
    pub inputs: Vec<(String, String, String)>,
    pub warnings: Vec<String>,
    pub save_errors: Vec<String>,
    pub history: Vec<VersionRow>,
    pub phase_form: PhaseForm,
    pub phase_errors: Vec<String>,
    pub export_version: i32,
    /// May duplicate, archive and delete it.
    pub can_manage: bool,
    pub archived: bool,
}

pub(super) fn fmt_time(t: DateTime<Utc>, zone: &str) -> String {
    let tz: chrono_tz::Tz = zone.parse().unwrap_or(chrono_tz::UTC);
    t.with_timezone(&tz).format("%Y-%m-%d %H:%M %Z").to_string()
}

pub(super) async fn editor_page(
    state: &AppState,
    user: &CurrentUser,
    session: &Session,
    editing: Editing,
    read_only: bool,
) -> Result<EditorPage, AppError> {
    let mut conn = state.db().await?;
    let history = ProcessVersion::history(&mut conn, user.account_id, editing.process.id)
        .await?
        .into_iter()
        .map(|(version, at, by)| VersionRow { version, at: fmt_time(at, &user.time_zone), by })
        .collect();
    let warnings = if read_only { Vec::new() } else { ops::warnings(&mut conn, user.account_id, &editing.definition).await? };
    let can_edit = !read_only && user.may(Action::ManageProcess, editing.process.scope());
    let showing = if editing.working_copy {
        if editing.base_version == 0 {
            "your working copy (not saved yet)".to_string()
        } else {
            format!("your working copy (based on version {})", editing.base_version)
        }
    } else if editing.base_version == 0 {
        "no saved version yet".to_string()
    } else {
        format!("version {}", editing.base_version)
    };
    let inputs = editing
        .definition
        .inputs
        .iter()
        .map(|i| {
            let mut flags = Vec::new();
            if i.required {
                flags.push("required");
            }
            if i.secret {
                flags.push("secret");
            }
            (
                i.name.clone(),
                i.kind.as_str().to_string(),
                format!("{} {}", flags.join(", "), i.description.clone().unwrap_or_default()).trim().to_string(),
            )
        })
        .collect();
    Ok(EditorPage {
        chrome: Chrome::new(user, session, format!("Process {}", editing.definition.name), "/processes"),
        id: editing.process.id,
        name: editing.definition.name.clone(),
        org_label: editing.org_label.clone(),
        latest_version: editing.process.latest_version,
        showing,
        read_only,
        can_edit,
        working_copy: editing.working_copy,
        groups: depth_groups(&editing.definition),
        inputs,
        warnings,
        save_errors: Vec::new(),
        history,
        phase_form: PhaseForm::default(),
        phase_errors: Vec::new(),
        export_version: editing.base_version,
        can_manage: user.may(Action::ManageProcess, editing.process.scope()),
        archived: editing.process.archived_at.is_some(),
    })
}

pub async fn show(state: web::Data<AppState>, user: CurrentUser, session: Session, id: web::Path<i64>) -> Result<HttpResponse, AppError> {
    let editing = load(&state, &user, *id, None).await?;
    render(&editor_page(&state, &user, &session, editing, false).await?)
}

/// "Save": the working copy becomes the next version, if it is valid.
pub async fn save(
    state: web::Data<AppState>,
    user: CurrentUser,
    session: Session,
    htmx: Htmx,
    id: web::Path<i64>,
) -> Result<HttpResponse, AppError> {
    let editing = load_for_edit(&state, &user, *id).await?;
    let mut conn = state.db().await?;
    match ops::save_version(&mut conn, &user.actor(), editing.process.id, editing.definition.clone(), state.now()).await {
        Ok(saved) => {
            flash::success(&session, format!("Saved as version {}.", saved.version));
            for w in &saved.warnings {
                flash::push(&session, "warning", format!("Warning: {w}"));
            }
            Ok(redirect(htmx, &format!("/processes/{}", saved.process.id)))
        }
        Err(e) => {
            let messages = definition_messages(&e).ok_or(e)?;
            let mut page = editor_page(&state, &user, &session, editing, false).await?;
            page.save_errors = messages;
            render_form_errors(&page, htmx)
        }
    }
}

pub async fn discard(
    state: web::Data<AppState>,
    user: CurrentUser,
    session: Session,
    htmx: Htmx,
    id: web::Path<i64>,
) -> Result<HttpResponse, AppError> {
    let editing = load_for_edit(&state, &user, *id).await?;
    let mut conn = state.db().await?;
    WorkingCopy::discard(&mut conn, editing.process.id, user.user_id).await?;
    flash::success(&session, "Working copy discarded.");
    Ok(redirect(htmx, &format!("/processes/{}", editing.process.id)))
}
