//! What people do to activities: complete or fail a task, approve or reject, and the release
//! manager's failure decisions (retry, ignore, fix-and-continue, roll back).

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::{Actor, OpError};
use crate::db::audit::{self, NewEvent};
use crate::db::models::releases::activity_by_key;
use crate::db::models::releases::{Release, ReleaseActivity};
use crate::db::models::signoff_tokens::{self, SignoffToken};
use crate::db::schema::{approval_votes, release_activities, releases};
use crate::domain::engine::Node;
use crate::domain::policy::{self, Action, Binding};
use crate::domain::process::definition::{ActivityKind, OnFailure};
use crate::domain::release::{in_flight, Hold};
use crate::domain::rule::RuleCode;
use crate::domain::validate as fields;

/// Marks a hold that waits for a release manager's failure decision.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    Complete,
    Fail,
    Approve,
    Reject,
    Retry,
    Ignore,
    Fix,
}

impl Verb {
    pub fn parse(s: &str) -> Option<Verb> {
        Some(match s {
            "complete" => Verb::Complete,
            "fail" => Verb::Fail,
            "approve" => Verb::Approve,
            "reject" => Verb::Reject,
            "retry" => Verb::Retry,
            "ignore" => Verb::Ignore,
            "fix" => Verb::Fix,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Verb::Complete => "complete",
            Verb::Fail => "fail",
            Verb::Approve => "approve",
            Verb::Reject => "reject",
            Verb::Retry => "retry",
            Verb::Ignore => "ignore",
            Verb::Fix => "fix",
        }
    }

    pub const ALL: [Verb; 7] = [Verb::Complete, Verb::Fail, Verb::Approve, Verb::Reject, Verb::Retry, Verb::Ignore, Verb::Fix];
}

#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ActInput {
    #[serde(default)]
    pub comment: Option<String>,
    #[serde(default)]
    pub reason: Option<String>,
    #[serde(default)]
    pub outputs: Option<Map<String, Value>>,
}

/// The person acting, with what the policy needs to know about them.
pub struct Person<'a> {
    pub actor: Actor,
    pub user_id: i64,
    pub email: &'a str,
    pub bindings: &'a [Binding],
    pub groups: Vec<String>,
    /// Approvers whose delegate this person is right now.
    pub delegating_for: Vec<i64>,
}

impl<'a> Person<'a> {
    /// The person with the groups they belong to and whom they vote for today.
    pub async fn load(
        conn: &mut AsyncPgConnection,
        actor: Actor,
        (email, bindings): (&'a str, &'a [Binding]),
        now: DateTime<Utc>,
    ) -> QueryResult<Person<'a>> {
        let user_id = actor.user_id.unwrap_or_default();
        let (groups, delegating_for) = crate::db::models::users::standing(conn, user_id, now).await?;
        Ok(Person { actor, user_id, email, bindings, groups, delegating_for })
    }
}

impl Person<'_> {
    fn owns(&self, owner: &str) -> bool {
        match owner.split_once(':') {
            Some(("user", e)) => e.eq_ignore_ascii_case(self.email),
            Some(("group", g)) => self.groups.iter().any(|x| x == g),
            _ => false,
        }
    }
}

fn state_conflict(code: RuleCode, message: String) -> OpError {
    OpError::Rule { code, message, field: None }
}

fn refused(message: impl Into<String>) -> OpError {
    OpError::Forbidden(message.into())
}

pub fn is_decision_hold(a: &ReleaseActivity) -> bool {
    a.node() == Node::OnHold && a.hold == Some(Hold::Decision)
}

/// Whether this person may do this now. Who may never do it (wrong kind of activity, no
/// standing on it) is refused first, 403; for who could, "not in this state" (the release is
/// not in flight, the activity is not waiting for this) is a 409 rule (DESIGN §10).
pub fn may_act(person: &Person<'_>, r: &Release, a: &ReleaseActivity, verb: Verb) -> Result<(), OpError> {
    let kind = a.kind;
    let scope = r.scope();
    let manages = |action| policy::allows(person.bindings, action, scope);
    // The release's creator and manager never vote for someone else: a delegation must not
    // undo separation of duties.
    let separated = Some(person.user_id) == r.owner_id || Some(person.user_id) == r.created_by;
    let eligible = a.eligible.contains(&person.user_id) || (!separated && person.delegating_for.iter().any(|u| a.eligible.contains(u)));
    // A fan-out activity moves through its instances (a failure decision on it is taken to
    // each instance that waits for one, in `decide`).
    if a.fanned {
        return Err(state_conflict(RuleCode::NotWaiting, format!("\"{}\" runs as its instances: act on one of them.", a.name)));
    }
    // Standing: who could ever do this to this activity.
    match verb {
        Verb::Complete | Verb::Fail => {
            if kind != ActivityKind::Manual {
                return Err(refused(format!("Only manual activities are completed or failed by hand; this one is {}.", kind.as_str())));
            }
            if !(person.owns(&a.owner) || manages(Action::ActOnActivity)) {
                return Err(refused(format!("Only its owner ({}) or a release manager of this release may do that.", a.owner)));
            }
        }
        Verb::Approve | Verb::Reject => {
            if kind != ActivityKind::Approval {
                return Err(refused("Only approval activities take votes."));
            }
            // Approvers are fixed when the approval opens; before that, only its owners and the
            // release's managers are told "not yet" rather than "never".
            let may_become = a.eligible.is_empty() && (person.owns(&a.owner) || manages(Action::ActOnActivity));
            if !eligible && !may_become {
                return Err(refused(if separated {
                    "You are not an eligible approver: separation of duties excludes the release's creator and release manager."
                } else {
                    "You are not an eligible approver of this activity."
                }));
            }
        }
        Verb::Retry | Verb::Ignore | Verb::Fix => {
            if !manages(Action::DecideFailure) {
                return Err(refused("Only a release manager of this release decides on failures."));
            }
            if kind == ActivityKind::Approval && verb != Verb::Retry {
                return Err(refused("Approvals cannot be ignored or marked fixed: retry (a new round), roll back or abort."));
            }
        }
    }
    // State: not now.
    if !in_flight(r.state(), r.status()) {
        return Err(state_conflict(RuleCode::NotInFlight, format!("The release is not in flight ({}, {}).", r.state(), r.status())));
    }
    match verb {
        Verb::Complete | Verb::Fail if a.node() != Node::Running => {
            Err(state_conflict(RuleCode::NotWaiting, format!("The activity is {}, not waiting for its owner.", a.status)))
        }
        Verb::Approve | Verb::Reject if !(a.node() == Node::Running || (a.node() == Node::OnHold && !is_decision_hold(a))) => {
            Err(state_conflict(RuleCode::NotWaiting, format!("The approval is {}, not open for votes.", a.status)))
        }
        Verb::Approve | Verb::Reject if !eligible => Err(refused("You are not an eligible approver of this activity.")),
        Verb::Retry | Verb::Ignore | Verb::Fix if !is_decision_hold(a) => {
            Err(state_conflict(RuleCode::NotWaiting, format!("The activity is {}, not waiting for a failure decision.", a.status)))
        }
        _ => Ok(()),
    }
}

fn required_reason(input: &ActInput, field: &str) -> Result<String, OpError> {
    let text = input.reason.as_deref().or(input.comment.as_deref()).unwrap_or("");
    fields::required_text(text, fields::MAX_COMMENT_LEN).map_err(|m| OpError::invalid(field, m))
}

/// What a person's action does to an activity.
struct ActivityChange<'a> {
    status: Node,
    hold: Option<Hold>,
    reason: Option<&'a str>,
    actor: &'a str,
    note: Option<&'a str>,
}

async fn update_activity(
    conn: &mut AsyncPgConnection,
    r: &Release,
    a: &ReleaseActivity,
    change: ActivityChange<'_>,
    now: DateTime<Utc>,
) -> QueryResult<usize> {
    let ActivityChange { status, hold, reason, actor, note } = change;
    let finished = status.is_finished().then_some(now);
    diesel::update(activity_by_key(r.id, &a.phase_key, &a.key))
        .set((
            release_activities::status.eq(status),
            release_activities::hold.eq(hold),
            release_activities::status_reason.eq(reason),
            release_activities::finished_at.eq(finished),
            release_activities::last_actor.eq(actor),
            release_activities::note.eq(note),
            // A person decided: the run this timeout measured is over.
            release_activities::deadline.eq(None::<DateTime<Utc>>),
        ))
        .execute(conn)
        .await
}

/// A failure by its `on_failure`: ignore → Failed (counts as done), fail → Failed (the release
/// fails), manual → OnHold for a release manager's decision.
pub fn failed_status(a: &ReleaseActivity, why: &str) -> (Node, Option<Hold>, Option<String>) {
    match a.on_failure {
        OnFailure::Manual => (
            Node::OnHold,
            Some(Hold::Decision),
            Some(format!("failed: {why}; a release manager decides: retry, ignore, fix-and-continue, roll back or abort")),
        ),
        OnFailure::Fail | OnFailure::Ignore => (Node::Failed, None, Some(why.to_string())),
    }
}

/// A vote cast through a sign-off link: the vote and the link's use are one transaction, so a
/// link is never left usable after its vote, nor used without one.
pub async fn vote_by_link(
    conn: &mut AsyncPgConnection,
    person: &Person<'_>,
    link: &SignoffToken,
    (verb, input): (Verb, &ActInput),
    now: DateTime<Utc>,
) -> Result<Release, OpError> {
    conn.transaction(async |conn| {
        let at = ActivityAt { release_id: link.release_id, phase: &link.phase_key, key: &link.activity_key };
        let release = act(conn, person, at, verb, input, now).await?;
        signoff_tokens::mark_used(conn, &link.token_hash, now).await?;
        Ok(release)
    })
    .await
}

/// One activity of one release.
#[derive(Debug, Clone, Copy)]
pub struct ActivityAt<'a> {
    pub release_id: i64,
    pub phase: &'a str,
    pub key: &'a str,
}

/// Performs one action on an activity, in one transaction with its audit event; the worker
/// is woken to move the release on.
pub async fn act(
    conn: &mut AsyncPgConnection,
    person: &Person<'_>,
    at: ActivityAt<'_>,
    verb: Verb,
    input: &ActInput,
    now: DateTime<Utc>,
) -> Result<Release, OpError> {
    let ActivityAt { release_id, phase, key } = at;
    if let Some(comment) = &input.comment {
        fields::optional_text(comment, fields::MAX_COMMENT_LEN).map_err(|m| OpError::invalid("comment", m))?;
    }
    conn.transaction(async |conn| {
        let r = Release::lock(conn, person.actor.account_id, release_id).await?;
        let a: ReleaseActivity = activity_by_key(r.id, phase, key).select(ReleaseActivity::as_select()).first(conn).await?;
        if matches!(verb, Verb::Retry | Verb::Ignore | Verb::Fix) {
            return decide(conn, person, &r, &a, verb, input, now).await;
        }
        may_act(person, &r, &a, verb)?;
        let label = person.actor.label.clone();
        let mut event_reason: Option<String> = None;
        let mut details = json!({"attempt": a.attempts});
        match verb {
            Verb::Complete => {
                let outputs = input.outputs.clone().unwrap_or_default();
                let mut merged = a.outputs.as_object().cloned().unwrap_or_default();
                merged.extend(outputs);
                diesel::update(activity_by_key(r.id, phase, key))
                    .set(release_activities::outputs.eq(Value::Object(merged)))
                    .execute(conn)
                    .await?;
                update_activity(
                    conn,
                    &r,
                    &a,
                    ActivityChange { status: Node::Success, hold: None, reason: None, actor: &label, note: input.comment.as_deref() },
                    now,
                )
                .await?;
                crate::ops::results::record_results(conn, &r, phase, key, now).await?;
                details["comment"] = json!(input.comment);
            }
            Verb::Fail => {
                let why = required_reason(input, "reason")?;
                let (status, hold, reason) = failed_status(&a, &format!("failed by {label}: {why}"));
                update_activity(
                    conn,
                    &r,
                    &a,
                    ActivityChange { status, hold, reason: reason.as_deref(), actor: &label, note: Some(&why) },
                    now,
                )
                .await?;
                event_reason = Some(why);
            }
            Verb::Approve | Verb::Reject => {
                if verb == Verb::Reject {
                    event_reason = Some(required_reason(input, "reason")?);
                }
                // One vote per approver: a delegate votes in the name of an approver who has not.
                let voted: Vec<i64> = approval_votes::table
                    .filter(approval_votes::release_id.eq(r.id))
                    .filter(approval_votes::phase_key.eq(phase))
                    .filter(approval_votes::activity_key.eq(key))
                    .filter(approval_votes::round.eq(a.attempts))
                    .select(approval_votes::user_id)
                    .load(conn)
                    .await?;
                let voter = if a.eligible.contains(&person.user_id) {
                    person.user_id
                } else {
                    match person.delegating_for.iter().copied().find(|u| a.eligible.contains(u) && !voted.contains(u)) {
                        Some(approver) => approver,
                        None => {
                            return Err(OpError::Conflict {
                                message: "The approvers you stand in for have already voted in this round.".into(),
                            })
                        }
                    }
                };
                if voter != person.user_id {
                    let email: String =
                        crate::db::schema::users::table.find(voter).select(crate::db::schema::users::email).first(conn).await?;
                    details["on_behalf_of"] = json!(format!("user:{email}"));
                }
                let inserted = diesel::insert_into(approval_votes::table)
                    .values((
                        approval_votes::account_id.eq(r.account_id),
                        approval_votes::release_id.eq(r.id),
                        approval_votes::phase_key.eq(phase),
                        approval_votes::activity_key.eq(key),
                        approval_votes::round.eq(a.attempts),
                        approval_votes::user_id.eq(voter),
                        approval_votes::cast_by.eq(person.user_id),
                        approval_votes::decision.eq(verb.as_str()),
                        approval_votes::comment.eq(event_reason.clone().or(input.comment.clone())),
                        approval_votes::at.eq(now),
                    ))
                    .on_conflict_do_nothing()
                    .execute(conn)
                    .await?;
                if inserted == 0 {
                    return Err(OpError::Conflict {
                        message: "You have already voted in this approval round: each approver has one vote.".into(),
                    });
                }
                if verb == Verb::Reject {
                    let why = format!("rejected by {label}: {}", event_reason.clone().unwrap_or_default());
                    let (status, hold, reason) = failed_status(&a, &why);
                    update_activity(
                        conn,
                        &r,
                        &a,
                        ActivityChange { status, hold, reason: reason.as_deref(), actor: &label, note: None },
                        now,
                    )
                    .await?;
                } else {
                    let approvals: i64 = approval_votes::table
                        .filter(approval_votes::release_id.eq(r.id))
                        .filter(approval_votes::phase_key.eq(phase))
                        .filter(approval_votes::activity_key.eq(key))
                        .filter(approval_votes::round.eq(a.attempts))
                        .filter(approval_votes::decision.eq(Verb::Approve.as_str()))
                        .count()
                        .get_result(conn)
                        .await?;
                    details["approvals"] = json!(approvals);
                    details["needed"] = json!(a.needed);
                    if approvals >= i64::from(a.needed) {
                        update_activity(
                            conn,
                            &r,
                            &a,
                            ActivityChange { status: Node::Success, hold: None, reason: None, actor: &label, note: None },
                            now,
                        )
                        .await?;
                    }
                }
                details["round"] = json!(a.attempts);
            }
            // Decided above, instance by instance.
            Verb::Retry | Verb::Ignore | Verb::Fix => {}
        }
        let event = NewEvent {
            reason: event_reason,
            ..NewEvent::release(&r, label, format!("activity.{}", verb.as_str()))
                .with_subject(format!("activity:{phase}.{key}"))
                .with_details(details)
        };
        audit::append(conn, event, now).await?;
        crate::db::wake::schedule_now(conn, r.id, now).await?;
        Ok(Release::find(conn, r.account_id, r.id).await?)
    })
    .await
}

/// A release manager's failure decision on a held activity — or, on a fan-out activity, on every
/// instance that awaits one (DESIGN §3) — each with its audit event.
async fn decide(
    conn: &mut AsyncPgConnection,
    person: &Person<'_>,
    r: &Release,
    a: &ReleaseActivity,
    verb: Verb,
    input: &ActInput,
    now: DateTime<Utc>,
) -> Result<Release, OpError> {
    let awaiting: Vec<ReleaseActivity> = if a.is_instance() {
        Vec::new()
    } else {
        release_activities::table
            .filter(release_activities::release_id.eq(r.id))
            .filter(release_activities::phase_key.eq(&a.phase_key))
            .filter(release_activities::fan_of.eq(&a.key))
            .filter(release_activities::status.eq(Node::OnHold))
            .filter(release_activities::hold.eq(Hold::Decision))
            .order(release_activities::key)
            .select(ReleaseActivity::as_select())
            .load(conn)
            .await?
    };
    let targets = if awaiting.is_empty() { std::slice::from_ref(a) } else { awaiting.as_slice() };
    for t in targets {
        may_act(person, r, t, verb)?;
    }
    let reason = required_reason(input, "reason")?;
    let label = person.actor.label.clone();
    for t in targets {
        let (phase, key) = (t.phase_key.as_str(), t.key.as_str());
        let change = |status, note| ActivityChange { status, hold: None, reason: None, actor: &label, note };
        match verb {
            Verb::Retry => {
                // Back to NotStarted: the worker starts it again as a new attempt (a new round
                // for approvals: earlier votes and sign-off links no longer count).
                update_activity(conn, r, t, change(Node::NotStarted, None), now).await?;
                crate::db::models::signoff_tokens::void_activity(conn, r.id, phase, key, now).await?;
            }
            Verb::Ignore => {
                update_activity(conn, r, t, change(Node::Ignored, Some(&reason)), now).await?;
            }
            _ => {
                update_activity(conn, r, t, change(Node::Success, Some(&format!("fixed: {reason}"))), now).await?;
                crate::ops::results::record_results(conn, r, phase, key, now).await?;
            }
        }
        let event = NewEvent::release(r, label.clone(), format!("activity.{}", verb.as_str()))
            .with_subject(format!("activity:{phase}.{key}"))
            .with_details(json!({"attempt": t.attempts}))
            .with_reason(reason.clone());
        audit::append(conn, event, now).await?;
    }
    crate::db::wake::schedule_now(conn, r.id, now).await?;
    Ok(Release::find(conn, r.account_id, r.id).await?)
}

/// Roll back (reason required): the held failure fails the release; its rollback phases run.
pub async fn roll_back(
    conn: &mut AsyncPgConnection,
    actor: &Actor,
    bindings: &[Binding],
    release_id: i64,
    reason: &str,
    now: DateTime<Utc>,
) -> Result<Release, OpError> {
    let reason = crate::ops::required_reason(reason)?;
    conn.transaction(async |conn| {
        let r = Release::lock(conn, actor.account_id, release_id).await?;
        if !policy::allows(bindings, Action::DecideFailure, r.scope()) {
            return Err(OpError::Forbidden("Only a release manager of this release decides on failures.".into()));
        }
        if !in_flight(r.state(), r.status()) {
            return Err(OpError::Rule {
                code: RuleCode::NotInFlight,
                message: format!("The release is not in flight ({}).", r.status()),
                field: None,
            });
        }
        let held: Vec<ReleaseActivity> = release_activities::table
            .filter(release_activities::release_id.eq(r.id))
            .filter(release_activities::status.eq(Node::OnHold))
            .select(ReleaseActivity::as_select())
            .load(conn)
            .await?;
        for a in held.iter().filter(|a| is_decision_hold(a)) {
            diesel::update(activity_by_key(r.id, &a.phase_key, &a.key))
                .set((
                    release_activities::status.eq(Node::Failed),
                    release_activities::on_failure.eq(OnFailure::Fail),
                    release_activities::finished_at.eq(now),
                ))
                .execute(conn)
                .await?;
        }
        diesel::update(releases::table.find(r.id)).set(releases::failing.eq(true)).execute(conn).await?;
        audit::append(conn, NewEvent::release(&r, actor.label.clone(), "release.rollback").with_reason(reason.clone()), now).await?;
        crate::db::wake::schedule_now(conn, r.id, now).await?;
        Ok(Release::find(conn, r.account_id, r.id).await?)
    })
    .await
}

/// The names of the groups a user belongs to (for `group:<name>` owners).
pub async fn groups_of(conn: &mut AsyncPgConnection, user_id: i64) -> QueryResult<Vec<String>> {
    use crate::db::schema::{group_members, groups};
    group_members::table.inner_join(groups::table).filter(group_members::user_id.eq(user_id)).select(groups::name).load(conn).await
}
