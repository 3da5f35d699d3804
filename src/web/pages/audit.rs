//! `/audit`: the account's trail as the viewer may see it, filtered, in keyset pages, with the
//! last verification of the hash chains (DESIGN §8); `format=csv` streams the whole selection.

use actix_session::Session;
use actix_web::{web, HttpResponse};
use askama::Template;
use serde_json::Value;

use super::{local, query_string, redirect, render, Chrome};
use crate::db::audit::AuditEvent;
use crate::domain::policy::{Action, Scope};
use crate::ops::audit_trail::{self, AuditQuery, Trail};
use crate::web::error::AppError;
use crate::web::exports::{audit_csv, wants_csv};
use crate::web::extractors::{CurrentUser, Htmx};
use crate::web::{flash, AppState};

pub struct EventView {
    pub id: i64,
    pub when: String,
    pub actor: String,
    pub action: String,
    pub subject: String,
    pub release_id: Option<i64>,
    pub reason: String,
    pub changes: Vec<String>,
}

fn compact(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "none".into(),
        other => other.to_string(),
    }
}

/// What an event's details say, one line each; changes read "field: before → after".
pub fn describe(details: &Value) -> Vec<String> {
    let Some(map) = details.as_object() else { return Vec::new() };
    if let Some(changes) = map.get("changes").and_then(Value::as_object) {
        return changes.iter().map(|(k, c)| format!("{k}: {} → {}", compact(&c["before"]), compact(&c["after"]))).collect();
    }
    if let (Some(before), Some(after)) = (map.get("before").and_then(Value::as_object), map.get("after").and_then(Value::as_object)) {
        return before.iter().map(|(k, b)| format!("{k}: {} → {}", compact(b), compact(after.get(k).unwrap_or(&Value::Null)))).collect();
    }
    if let (Some(from), Some(to)) = (map.get("from"), map.get("to")) {
        let mut lines = vec![format!("{} → {}", compact(from), compact(to))];
        lines.extend(map.iter().filter(|(k, _)| !matches!(k.as_str(), "from" | "to")).map(|(k, v)| format!("{k}: {}", compact(v))));
        return lines;
    }
    map.iter().map(|(k, v)| format!("{k}: {}", compact(v))).collect()
}

pub fn event_views(events: &[AuditEvent], zone: &str) -> Vec<EventView> {
    events
        .iter()
        .map(|e| EventView {
            id: e.id,
            when: local(Some(e.at), zone),
            actor: e.actor.clone(),
            action: e.action.clone(),
            subject: e.subject.clone(),
            release_id: e.release_id,
            reason: e.reason.clone().unwrap_or_default(),
            changes: describe(&e.details),
        })
        .collect()
}

#[derive(Template)]
#[template(path = "pages/audit.html")]
pub struct AuditPage {
    pub chrome: Chrome,
    pub query: AuditQuery,
    pub events: Vec<EventView>,
    pub next: Option<String>,
    pub first: String,
    pub csv: Option<String>,
    pub verification: Option<String>,
    pub verification_ok: bool,
    pub can_verify: bool,
}

fn filters(q: &AuditQuery) -> String {
    query_string(&[
        ("release", &q.release),
        ("actor", &q.actor),
        ("action", &q.action),
        ("subject", &q.subject),
        ("from", &q.from),
        ("to", &q.to),
    ])
}

pub async fn list(
    state: web::Data<AppState>,
    user: CurrentUser,
    session: Session,
    query: web::Query<AuditQuery>,
) -> Result<HttpResponse, AppError> {
    let actor = user.actor();
    if wants_csv(&query.format)? {
        let batches = audit_trail::export(state.pool.clone(), user.requester(&actor), &query, Trail::Account)?;
        return Ok(audit_csv("audit", batches));
    }
    let mut conn = state.db().await?;
    let page = audit_trail::page(&mut conn, user.requester(&actor), &query, Trail::Account).await?;
    let can_verify = user.may(Action::ViewAudit, Scope::Account);
    let last = if can_verify { audit_trail::last_verification(&mut conn, user.account_id).await? } else { None };
    let base = filters(&query);
    let page = AuditPage {
        chrome: Chrome::new(&user, &session, "Audit trail", "/audit"),
        events: event_views(&page.events, &user.time_zone),
        next: page.next.map(|n| format!("/audit?{base}&after={n}")),
        first: format!("/audit?{base}"),
        csv: user.may(Action::ExportAudit, Scope::Account).then(|| format!("/audit?{base}&format=csv")),
        verification_ok: last.as_ref().is_some_and(|v| v.broken.is_none()),
        verification: last.map(|v| match v.broken {
            None => format!(
                "Intact: {} chains, {} events verified at {} by {}.",
                v.chains,
                v.events,
                local(Some(v.verified_at), &user.time_zone),
                v.verified_by
            ),
            Some(b) => format!("BROKEN at {b} (verified at {} by {}).", local(Some(v.verified_at), &user.time_zone), v.verified_by),
        }),
        can_verify,
        query: query.into_inner(),
    };
    render(&page)
}

pub async fn verify(state: web::Data<AppState>, user: CurrentUser, session: Session, htmx: Htmx) -> Result<HttpResponse, AppError> {
    let actor = user.actor();
    let mut conn = state.db().await?;
    let v = audit_trail::verify(&mut conn, user.requester(&actor), state.now()).await?;
    match v.broken {
        None => flash::success(&session, format!("The audit trail is intact: {} chains, {} events.", v.chains, v.events)),
        Some(b) => flash::push(&session, "error", format!("The audit trail is BROKEN at {b}.")),
    }
    Ok(redirect(htmx, "/audit"))
}
