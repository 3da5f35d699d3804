//! The release page: status tree, actions allowed to the viewer, links, conflicts, audit trail.

use actix_session::Session;
use actix_web::{web, HttpResponse};
use askama::Template;
use serde_json::Value;

use crate::db::models::releases::Release;
use crate::domain::policy::Action;
use crate::domain::process::definition::ActivityKind;
use crate::domain::process::template::to_text;
use crate::domain::release::{ReleaseType, State};
use crate::ops::activities::{may_act, Verb};
use crate::ops::processes::{self as processes_ops};
use crate::ops::releases::{self as ops};
use crate::web::error::AppError;
use crate::web::extractors::CurrentUser;
use crate::web::pages::{render, Chrome};
use crate::web::AppState;

use super::local;

pub struct ActivityRow {
    pub key: String,
    /// The key as one URL path segment (an instance key `deploy[payment-service]` is encoded).
    pub path_key: String,
    /// A fan-out instance's item.
    pub item: String,
    pub name: String,
    pub kind: String,
    pub status: String,
    pub owner: String,
    pub attempts: i32,
    pub reason: String,
    pub acted: String,
    pub timing: String,
    pub outputs: String,
    /// The actions this viewer may take now (complete, fail, approve, reject, retry, ignore, fix).
    pub allowed: Vec<&'static str>,
    pub needs_reason: Vec<&'static str>,
    /// A manual task's outputs the process declares (`records`), asked for on completion.
    pub declared_outputs: Vec<String>,
    /// Its thread: (author, when, text), oldest first.
    pub comments: Vec<(String, String, String)>,
    pub can_reassign: bool,
    /// A fan-out activity: its instances, and how many are in each status.
    pub instances: Vec<ActivityRow>,
    pub instance_counts: Vec<(&'static str, usize)>,
    /// Every instance has finished: the list is loaded when the summary is opened.
    pub instances_deferred: bool,
}

pub struct PhaseRow {
    pub key: String,
    pub name: String,
    pub status: String,
    pub owner: String,
    pub after: String,
    pub activities: Vec<ActivityRow>,
}

/// How many deployments and webhook attempts the page lists, newest last.
const SHOWN_ROWS: usize = 40;

/// The `?trail_after=` cursor of the release page's trail.
#[derive(Debug, serde::Deserialize, Default)]
pub struct DetailQuery {
    pub trail_after: Option<i64>,
}

pub struct DeployedRow {
    pub service: String,
    pub environment: String,
    pub version: String,
    pub when: String,
}

pub struct ApprovalView {
    pub activity: String,
    pub decision: String,
    pub approver: String,
    pub on_behalf_of: String,
    pub comment: String,
    pub when: String,
}

#[derive(Template)]
#[template(path = "pages/releases/detail.html")]
pub struct DetailPage {
    pub chrome: Chrome,
    pub r: Release,
    pub process_name: String,
    pub level: String,
    pub owner: String,
    pub window: String,
    pub inputs: Vec<(String, String)>,
    pub variables: Vec<(String, String)>,
    pub phases: Vec<PhaseRow>,
    pub links: Vec<(String, i64)>,
    pub linked_by: Vec<(i64, String, String)>,
    /// Linked releases the reader may not see: only their number is shown.
    pub hidden_links: usize,
    pub audit: Vec<crate::web::pages::audit::EventView>,
    pub trail_next: Option<i64>,
    pub trail_paged: bool,
    pub artifacts: Vec<(String, String)>,
    pub deployed: Vec<DeployedRow>,
    /// Earlier deployments and webhook attempts left off the page (the board and the
    /// instances summarize them).
    pub deployed_hidden: usize,
    pub attempts_hidden: usize,
    pub approvals: Vec<ApprovalView>,
    pub can_edit: bool,
    pub can_activate: bool,
    pub can_abort: bool,
    /// Set aside by the engine after repeated errors, and the reader may retry it.
    pub can_retry_set_aside: bool,
    pub can_override_freeze: bool,
    pub can_restart: bool,
    pub can_delete: bool,
    pub is_draft: bool,
    pub scheduled: bool,
    /// Its start is still ahead: it starts by itself then, or early through Run now.
    pub starts_later: bool,
    pub in_flight: bool,
    pub finished: bool,
    pub newer_version: Option<i32>,
    pub can_roll_back: bool,
    pub conflicts: Vec<(i64, String)>,
    /// A draft: what stops it from starting now.
    pub not_ready: Vec<String>,
    pub graph: crate::domain::pipeline::PhaseGraph,
    pub timeline: Option<super::pipeline::Timeline>,
    pub attempts: Vec<super::pipeline::AttemptView>,
    /// Webhook activities whose failure waits for this viewer's decision: (phase, key).
    pub retry_here: Vec<(String, String)>,
    pub board: Option<crate::ops::board::Board>,
}

/// The page's validator: the release's change marker, and what differs from one reader (or one
/// server process, whose templates may differ) to another.
fn etag(marker: &ops::Marker, user: &CurrentUser, query: &str) -> String {
    static PROCESS: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let process = PROCESS.get_or_init(|| crate::security::random_token(16));
    let key = format!(
        "{marker:?}|{}|{}|{}|{}|{query}|{process}",
        user.session_token.as_deref().unwrap_or_default(),
        user.user_id,
        user.time_zone,
        user.unread
    );
    format!("W/\"{}\"", &crate::security::sha256_hex(&key)[..32])
}

/// The live page polls every 2 s: an unchanged release answers 304 after one statement, with no
/// rendering (DESIGN §11). Whoever sees it through a role at its level may be answered so; people
/// who see it because they are named on it get the full path, which checks that.
pub async fn show(
    state: web::Data<AppState>,
    user: CurrentUser,
    session: Session,
    req: actix_web::HttpRequest,
    id: web::Path<i64>,
    query: web::Query<DetailQuery>,
) -> Result<HttpResponse, AppError> {
    let mut conn = state.db().await?;
    let asked = req.headers().get(actix_web::http::header::IF_NONE_MATCH).and_then(|v| v.to_str().ok()).map(str::to_string);
    if let Some(asked) = asked.filter(|_| !crate::web::flash::pending(&session)) {
        if let Some(marker) = ops::change_marker(&mut conn, user.account_id, *id).await? {
            let tag = etag(&marker, &user, req.query_string());
            let scope = marker.org_id.map_or(crate::domain::policy::Scope::Account, crate::domain::policy::Scope::Org);
            if user.may(Action::ViewRelease, scope) && asked.split(',').any(|t| t.trim() == tag) {
                return Ok(HttpResponse::NotModified()
                    .insert_header((actix_web::http::header::ETAG, tag))
                    .insert_header((actix_web::http::header::CACHE_CONTROL, "private, no-cache"))
                    .finish());
            }
        }
    }
    let now = state.now();
    let ops::ReleaseDetail { read, person } = ops::detail(
        &mut conn,
        (&state.pages.release, &state.pages.standing, user.reading(now)),
        user.actor(),
        (&user.email, &user.bindings),
        (*id, query.trail_after),
    )
    .await?;
    let ops::DetailRead {
        view,
        latest_version: latest,
        trail: events,
        trail_next,
        deployments,
        approvals,
        comments,
        attempts,
        marker,
        not_ready,
        conflicts,
        link_orgs,
        board,
    } = &*read;
    // A linked release the reader may not see (an org's hotfix on an account release) is
    // counted, never named.
    let visible = |id: i64| {
        link_orgs
            .iter()
            .find(|(r, _)| *r == id)
            .is_some_and(|(_, org)| user.may(Action::ViewRelease, crate::db::models::releases::scope_of(*org)))
    };
    let links: Vec<(String, i64)> =
        view.links.iter().filter(|l| visible(l.target_id)).map(|l| (l.kind.as_str().to_owned(), l.target_id)).collect();
    let linked_by: Vec<(i64, String, String)> = view.linked_by.iter().filter(|(id, _, _)| visible(*id)).cloned().collect();
    let hidden_links = view.links.len() + view.linked_by.len() - links.len() - linked_by.len();
    let latest = *latest;
    let tag = etag(marker, &user, req.query_string());
    let tz = user.time_zone.clone();
    let masked = processes_ops::masked(&view.definition, &view.release.inputs);
    let lookup: std::collections::BTreeMap<String, Value> =
        crate::domain::release::with_defaults(&view.definition, &processes_ops::revealed(&state.secrets, &view.release.inputs))
            .into_iter()
            .filter(|(k, _)| !view.definition.inputs.iter().any(|i| &i.name == k && i.secret))
            .map(|(k, v)| (format!("inputs.{k}"), v))
            .collect();
    // Every variable by its override key (`name`, `phase.name`, `phase.activity.name`).
    let variables = crate::domain::process::overrides::overridable(&view.definition)
        .into_iter()
        .map(|(key, v)| {
            let value = view.release.variables.get(&key).cloned().unwrap_or(v.value.clone());
            let shown = crate::domain::process::template::render(&value, &lookup).map(|x| to_text(&x)).unwrap_or_else(|_| to_text(&value));
            (key, shown)
        })
        .collect();
    let shapes = super::pipeline::shapes(&view.phases);
    let graph = super::pipeline::graph(&shapes);
    let timeline = super::pipeline::timeline((view.release.schedule_start, view.release.schedule_end), &shapes, now, &tz);
    let retry_here = super::pipeline::retryable(&view.activities, |a| may_act(&person, &view.release, a, Verb::Retry).is_ok());
    // A system release sends hundreds of requests: the newest are shown, each instance keeps
    // its own count of attempts.
    let attempts_hidden = attempts.len().saturating_sub(SHOWN_ROWS);
    let attempts = super::pipeline::attempts(&attempts[attempts_hidden..], &tz);
    let deployed_hidden = deployments.len().saturating_sub(SHOWN_ROWS);
    let row_of = |a: &crate::db::models::releases::ReleaseActivity| -> ActivityRow {
        // Only an activity in progress can be acted on (a finished or unstarted one is refused
        // by its state): a 300-instance release asks 300 times less.
        let allowed: Vec<&'static str> = if a.node().in_progress() {
            Verb::ALL.iter().filter(|v| may_act(&person, &view.release, a, **v).is_ok()).map(|v| v.as_str()).collect()
        } else {
            Vec::new()
        };
        // An instance shows its item, status, attempts, reason and actions only.
        let light = a.is_instance();
        ActivityRow {
            path_key: crate::web::error::percent_encode(&a.key),
            item: a.item.clone().unwrap_or_default(),
            key: a.key.clone(),
            name: a.name.clone(),
            kind: a.kind.as_str().to_owned(),
            status: a.status.as_str().to_owned(),
            owner: a.owner.clone(),
            attempts: a.attempts,
            reason: a.status_reason.clone().unwrap_or_default(),
            acted: [a.last_actor.clone(), a.note.clone()].into_iter().flatten().collect::<Vec<_>>().join(": "),
            timing: match if light { (None, None) } else { (a.started_at, a.finished_at) } {
                (Some(s), Some(f)) => {
                    format!("{} → {} ({} min)", local(Some(s), &tz), local(Some(f), &tz), (f - s).num_minutes())
                }
                (Some(s), None) => format!("since {}", local(Some(s), &tz)),
                _ => String::new(),
            },
            outputs: a
                .outputs
                .as_object()
                .filter(|o| !o.is_empty() && !light)
                .map(|o| o.iter().map(|(k, v)| format!("{k}={}", to_text(v))).collect::<Vec<_>>().join(", "))
                .unwrap_or_default(),
            needs_reason: allowed
                .iter()
                .copied()
                // A manual task's fail is on its own form, with the outputs and comment.
                .filter(|v| matches!(*v, "reject" | "retry" | "ignore" | "fix"))
                .collect(),
            declared_outputs: if a.kind == ActivityKind::Manual && allowed.contains(&"complete") {
                view.definition.activity(&a.phase_key, &a.key).map(|d| d.records.clone()).unwrap_or_default()
            } else {
                Vec::new()
            },
            comments: comments
                .iter()
                .filter(|c| c.phase == a.phase_key && c.activity == a.key)
                .map(|c| (c.author.clone(), local(Some(c.at), &tz), c.text.clone()))
                .collect(),
            can_reassign: a.kind == ActivityKind::Manual
                && !a.node().is_finished()
                && crate::domain::release::in_flight(view.release.state(), view.release.status())
                && user.may(Action::DecideFailure, view.release.scope()),
            allowed,
            instances: Vec::new(),
            instance_counts: Vec::new(),
            instances_deferred: false,
        }
    };
    let r = &view.release;
    let scope = r.scope();
    let state_ = r.state();
    let status = r.status();
    let page = DetailPage {
        chrome: Chrome::new(&user, &session, r.name.clone(), "/releases"),
        process_name: format!("{} (version {})", view.process_name, r.process_version),
        level: view.org_slug.clone().map(|o| format!("organization {o}")).unwrap_or_else(|| "account level".into()),
        owner: view.owner_email.clone().map(|e| format!("user:{e}")).unwrap_or_else(|| "— none —".into()),
        window: match r.schedule_start {
            Some(_) => format!("{} → {} (release time zone {})", local(r.schedule_start, &tz), local(r.schedule_end, &tz), r.time_zone),
            None => "unscheduled".into(),
        },
        inputs: view
            .definition
            .inputs
            .iter()
            .map(|i| {
                (
                    i.name.clone(),
                    masked
                        .get(&i.name)
                        .map(to_text)
                        .unwrap_or_else(|| i.default.as_ref().map(|d| format!("{} (default)", to_text(d))).unwrap_or_default()),
                )
            })
            .collect(),
        variables,
        phases: view
            .phases
            .iter()
            .map(|p| PhaseRow {
                key: p.key.clone(),
                name: p.name.clone(),
                status: p.status.as_str().to_owned(),
                owner: p.owner.clone(),
                after: p.depends_on.join(", "),
                activities: view
                    .activities
                    .iter()
                    .filter(|a| a.phase_key == p.key)
                    .filter(|a| !a.is_instance())
                    .map(|a| {
                        let instances: Vec<&crate::db::models::releases::ReleaseActivity> = view
                            .activities
                            .iter()
                            .filter(|i| i.phase_key == a.phase_key && i.fan_of.as_deref() == Some(a.key.as_str()))
                            .collect();
                        // A finished fan-out lists its instances when its summary is opened.
                        let deferred = !instances.is_empty() && instances.iter().all(|i| i.node().is_finished());
                        ActivityRow {
                            instance_counts: crate::ops::board::instance_counts(&instances)
                                .into_iter()
                                .map(|(s, n)| (s.as_str(), n))
                                .collect(),
                            instances_deferred: deferred,
                            instances: if deferred { Vec::new() } else { instances.into_iter().map(row_of).collect() },
                            ..row_of(a)
                        }
                    })
                    .collect(),
            })
            .collect(),
        links,
        linked_by,
        hidden_links,
        audit: crate::web::pages::audit::event_views(events, &tz),
        trail_next: *trail_next,
        trail_paged: query.trail_after.is_some(),
        artifacts: view.release.artifacts.as_object().map(|m| m.iter().map(|(k, v)| (k.clone(), to_text(v))).collect()).unwrap_or_default(),
        deployed_hidden,
        attempts_hidden,
        deployed: deployments
            .iter()
            .skip(deployed_hidden)
            .map(|d| DeployedRow {
                when: local(Some(d.deployed_at), &tz),
                service: d.service.clone(),
                environment: d.environment.clone(),
                version: d.version.clone(),
            })
            .collect(),
        approvals: approvals
            .iter()
            .map(|a| ApprovalView {
                activity: format!("{}.{}", a.phase, a.activity),
                decision: a.decision.clone(),
                approver: a.approver.clone(),
                on_behalf_of: a.on_behalf_of.clone().unwrap_or_default(),
                comment: a.comment.clone().unwrap_or_default(),
                when: local(Some(a.at), &tz),
            })
            .collect(),
        can_edit: state_ == State::Draft && user.may(Action::EditDraft, scope),
        can_activate: state_ == State::Draft && user.may(Action::Activate, scope),
        can_abort: crate::domain::release::in_flight(state_, status) && user.may(Action::Abort, scope),
        can_retry_set_aside: r.hold == Some(crate::domain::release::Hold::EngineError)
            && status == crate::domain::release::Status::OnHold
            && user.may(Action::DecideFailure, scope),
        can_override_freeze: r.release_type == ReleaseType::Hotfix
            && status == crate::domain::release::Status::OnHold
            && r.hold == Some(crate::domain::release::Hold::Freeze)
            && user.may(Action::OverrideFreeze, scope),
        can_restart: state_ != State::Draft && !crate::domain::release::in_flight(state_, status) && user.may(Action::Restart, scope),
        can_delete: user.may(Action::DeleteRelease, scope),
        is_draft: state_ == State::Draft,
        scheduled: r.schedule_start.is_some(),
        starts_later: r.schedule_start.is_some_and(|s| s > now),
        in_flight: crate::domain::release::in_flight(state_, status),
        finished: status.is_finished(),
        newer_version: (state_ == State::Draft && latest > r.process_version).then_some(latest),
        conflicts: conflicts.clone(),
        not_ready: not_ready.clone(),
        graph,
        timeline,
        attempts,
        retry_here,
        board: board.clone(),
        can_roll_back: crate::domain::release::in_flight(state_, status)
            && user.may(Action::DecideFailure, scope)
            && view.activities.iter().any(crate::ops::activities::is_decision_hold),
        r: view.release.clone(),
    };
    let mut res = render(&page)?;
    let headers = res.headers_mut();
    headers.insert(
        actix_web::http::header::ETAG,
        actix_web::http::header::HeaderValue::from_str(&tag).map_err(|e| AppError::Unexpected(e.into()))?,
    );
    headers.insert(actix_web::http::header::CACHE_CONTROL, actix_web::http::header::HeaderValue::from_static("private, no-cache"));
    Ok(res)
}
