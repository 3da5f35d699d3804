//! Starting an activity, by kind: who owns it, who may approve it, when a wait ends.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde_json::json;

use crate::db::audit::{self, NewEvent};
use crate::db::models::releases::activity_by_key;
use crate::db::models::releases::{Release, ReleaseActivity};
use crate::db::models::signoff_tokens::{self, LinkFor};
use crate::db::schema::release_activities;
use crate::domain::engine::Node;
use crate::domain::process::definition::{ActivityDef, ActivityKind, Threshold};
use crate::domain::process::time::parse_duration;
use crate::ops::context::{self, Secrets};
use crate::ops::outbox::NewNotification;
use crate::ops::{outbox, OpError};

pub struct Started {
    pub status: Node,
    pub wake_at: Option<DateTime<Utc>>,
    pub deadline: Option<DateTime<Utc>>,
}

/// Approvals needed from `eligible` approvers (DESIGN §3).
pub fn needed(def: &ActivityDef, eligible: usize) -> usize {
    match (def.required_approvals, def.threshold.unwrap_or(Threshold::Any)) {
        (Some(n), _) => n as usize,
        (None, Threshold::Any) => 1,
        (None, Threshold::All) => eligible.max(1),
        (None, Threshold::Majority) => eligible / 2 + 1,
    }
}

/// The distinct active users named directly or through groups, minus — with separation of
/// duties — the release's creator and release manager.
pub async fn eligible_approvers(conn: &mut AsyncPgConnection, r: &Release, def: &ActivityDef) -> QueryResult<Vec<(i64, String)>> {
    let all = outbox::recipients(conn, r.account_id, &def.approvers).await?;
    let separated = def.separation_of_duties == Some(true);
    Ok(all.into_iter().filter(|(id, _)| !(separated && (Some(*id) == r.created_by || Some(*id) == r.owner_id))).collect())
}

/// Initialises an activity that starts now (a new attempt or approval round).
pub async fn start(
    conn: &mut AsyncPgConnection,
    r: &Release,
    row: &ReleaseActivity,
    def: &ActivityDef,
    now: DateTime<Utc>,
) -> Result<Started, OpError> {
    let mut status = Node::Running;
    let mut wake_at = None;
    let mut reason: Option<String> = None;
    let mut eligible: Vec<i64> = Vec::new();
    let mut needed_count = 0;
    let mut tell: Vec<(i64, String)> = Vec::new();
    // The timeout counts from this start and covers every automatic retry of this run.
    let deadline = def.timeout.as_deref().and_then(|t| parse_duration(t).ok()).map(|t| now + t);
    match def.kind {
        ActivityKind::Manual => {
            tell = outbox::recipients(conn, r.account_id, std::slice::from_ref(&row.owner)).await?;
        }
        ActivityKind::Approval => {
            let approvers = eligible_approvers(conn, r, def).await?;
            needed_count = needed(def, approvers.len());
            eligible = approvers.iter().map(|(id, _)| *id).collect();
            if approvers.len() < needed_count {
                status = Node::OnHold;
                reason = Some(format!(
                    "only {} eligible approver(s) for {} needed approval(s){}",
                    approvers.len(),
                    needed_count,
                    if def.separation_of_duties == Some(true) {
                        " (separation of duties excludes the creator and release manager)"
                    } else {
                        ""
                    }
                ));
            }
            // Each eligible approver gets their own sign-off link for this round.
            if status == Node::Running {
                for (user_id, email) in &approvers {
                    let link = LinkFor {
                        account_id: r.account_id,
                        release_id: r.id,
                        phase: &row.phase_key,
                        activity: &row.key,
                        round: row.attempts + 1,
                        user_id: *user_id,
                    };
                    let token = signoff_tokens::issue(conn, link, now).await?;
                    outbox::enqueue(
                        conn,
                        &NewNotification {
                            account_id: r.account_id,
                            recipients: &[(*user_id, email.clone())],
                            kind: "approval.waiting",
                            subject: &format!("Your approval is needed: \"{}\" in \"{}\"", def.name, r.name),
                            body: &format!(
                                "Release \"{}\" waits for your decision on \"{}\". The link works once and expires in {} days.",
                                r.name,
                                def.name,
                                signoff_tokens::LINK_DAYS
                            ),
                            link: &format!("/signoff/{token}"),
                        },
                        now,
                    )
                    .await?;
                }
            }
        }
        ActivityKind::Wait => {
            status = Node::Waiting;
            wake_at = match (&def.wait_for, &def.until) {
                (Some(d), _) => parse_duration(d).ok().map(|d| now + d),
                (None, Some(u)) => super::resolve_point(u, r),
                _ => None,
            };
            if wake_at.is_none() {
                status = Node::OnHold;
                reason = Some("the wait's time could not be resolved; a release manager decides".into());
            }
        }
        ActivityKind::Webhook => {
            reason = Some(format!("sending attempt {}", row.attempts + 1));
        }
        ActivityKind::Subprocess => {}
    }
    diesel::update(activity_by_key(r.id, &row.phase_key, &row.key))
        .set((
            release_activities::status.eq(status.as_str()),
            release_activities::attempts.eq(release_activities::attempts + 1),
            release_activities::started_at.eq(now),
            release_activities::finished_at.eq(None::<DateTime<Utc>>),
            release_activities::wake_at.eq(wake_at),
            release_activities::status_reason.eq(&reason),
            release_activities::eligible.eq(&eligible),
            release_activities::needed.eq(needed_count as i32),
            release_activities::run_first_attempt.eq(row.attempts + 1),
            release_activities::deadline.eq(deadline),
        ))
        .execute(conn)
        .await?;
    audit::append(
        conn,
        NewEvent {
            reason: reason.clone(),
            ..NewEvent::release(r, "system:engine", "activity.start")
                .with_subject(format!("activity:{}.{}", row.phase_key, row.key))
                .with_details(json!({"attempt": row.attempts + 1, "status": status.as_str(), "eligible": eligible, "needed": needed_count, "wake_at": wake_at, "deadline": deadline}))
        },
        now,
    )
    .await?;
    match def.kind {
        ActivityKind::Webhook => {
            crate::db::models::webhook_attempts::enqueue(conn, r, &row.phase_key, &row.key, row.attempts + 1, now, now).await?
        }
        ActivityKind::Subprocess => {
            let started = ReleaseActivity {
                attempts: row.attempts + 1,
                run_first_attempt: row.attempts + 1,
                status: "Running".into(),
                started_at: Some(now),
                ..row.clone()
            };
            match start_child(conn, r, &started, def, now).await {
                Ok(child) => {
                    diesel::update(activity_by_key(r.id, &row.phase_key, &row.key))
                        .set((
                            release_activities::outputs.eq(json!({"release_id": child})),
                            release_activities::status_reason.eq(format!("runs as release #{child}")),
                        ))
                        .execute(conn)
                        .await?;
                }
                Err(why) => {
                    crate::ops::outcomes::attempt_failed(conn, r, &started, &why.to_string(), true, now).await?;
                    let status: String =
                        activity_by_key(r.id, &row.phase_key, &row.key).select(release_activities::status).first(conn).await?;
                    return Ok(Started { status: Node::parse(&status), wake_at: None, deadline: None });
                }
            }
        }
        _ => {}
    }
    if !tell.is_empty() {
        let (kind, subject) = match def.kind {
            ActivityKind::Approval => ("approval.waiting", format!("Your approval is needed: \"{}\" in \"{}\"", def.name, r.name)),
            _ => ("activity.waiting", format!("Your task is waiting: \"{}\" in \"{}\"", def.name, r.name)),
        };
        outbox::enqueue(
            conn,
            &NewNotification {
                account_id: r.account_id,
                recipients: &tell,
                kind,
                subject: &subject,
                body: reason.as_deref().unwrap_or(""),
                link: &format!("/releases/{}", r.id),
            },
            now,
        )
        .await?;
    }
    Ok(Started { status, wake_at, deadline })
}

/// Creates and activates the child release of a subprocess activity; `Err` says why it could not.
async fn start_child(
    conn: &mut AsyncPgConnection,
    r: &Release,
    row: &ReleaseActivity,
    def: &ActivityDef,
    now: DateTime<Utc>,
) -> Result<i64, ChildNotStarted> {
    use crate::db::models::processes::Process;
    use crate::ops::releases::{self as releases_ops, ReleaseInput};
    let wanted = def.process.clone().unwrap_or_default();
    let processes = Process::list(conn, r.account_id).await?;
    let Some(child_process) = processes.iter().find(|p| p.process.name.eq_ignore_ascii_case(&wanted)) else {
        return Err(ChildNotStarted::NoProcess(wanted));
    };
    let parent_def = crate::ops::releases::pinned_definition(conn, r).await?;
    let at = (row.phase_key.as_str(), row.key.as_str());
    let lookup = context::lookup(conn, r, &parent_def, at, Secrets::Masked, None).await?;
    let mut inputs = serde_json::Map::new();
    for (name, template) in &def.inputs {
        let value = crate::domain::process::template::render(template, &lookup)
            .map_err(|message| ChildNotStarted::Input { name: name.clone(), message })?;
        inputs.insert(name.clone(), value);
    }
    let owner = match r.owner_id {
        Some(id) => Some(format!("user:{}", crate::db::models::users::User::find(conn, r.account_id, id).await?.email)),
        None => None,
    };
    let org = match r.org_id {
        Some(id) => Some(crate::db::models::accounts::Organization::find(conn, r.account_id, id).await?.slug),
        None => None,
    };
    let input = ReleaseInput {
        process_id: Some(child_process.process.id),
        name: Some(format!("{} / {}", r.name, def.name)),
        release_type: Some(r.release_type.clone()),
        org: Some(org),
        inputs: Some(inputs),
        owner,
        ..Default::default()
    };
    let actor = crate::ops::Actor::system(r.account_id, "engine");
    // The engine holds no key here; see the decisions note on subprocess secrets.
    let secrets = crate::security::SecretBox::derive(b"unused");
    let mut prepared =
        releases_ops::prepare(conn, &actor, &r.time_zone, &secrets, &input, None, false).await.map_err(ChildNotStarted::Refused)?;
    prepared.links.push((crate::domain::release::LinkKind::SubprocessOf, r.id));
    let saved = releases_ops::create(conn, &actor, prepared, true, now).await.map_err(ChildNotStarted::Refused)?;
    Ok(saved.release.id)
}

/// Why a subprocess's child release could not start (the activity's reason says it).
#[derive(Debug, thiserror::Error)]
enum ChildNotStarted {
    #[error("there is no process {0:?} to run as a subprocess")]
    NoProcess(String),
    #[error("input {name}: {message}")]
    Input { name: String, message: String },
    #[error("{}", describe(.0))]
    Refused(#[source] OpError),
    #[error(transparent)]
    Op(#[from] OpError),
    #[error(transparent)]
    Db(#[from] diesel::result::Error),
}

fn describe(e: &OpError) -> String {
    match e {
        OpError::Invalid(errors) => errors.0.iter().map(|(f, m)| format!("{f} {m}")).collect::<Vec<_>>().join("; "),
        other => format!("the child release could not start: {other}"),
    }
}
