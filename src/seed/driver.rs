//! Plays a release through to its end at simulated times, through the same use cases real use
//! goes through: the engine moves it; the demo CI's answers land where a callback or a webhook
//! response lands (`ops::outcomes`); people approve, complete and roll back through
//! `ops::activities`. So every event is on the audit chains and `audit verify` passes.

use chrono::{DateTime, TimeDelta, Utc};
use diesel_async::AsyncPgConnection;
use serde_json::{json, Value};

use crate::db::models::releases::{self as rows, Release, ReleaseActivity};
use crate::db::models::webhook_attempts;
use crate::demo_ci::{self, Job};
use crate::domain::engine::Node;
use crate::domain::policy::Binding;
use crate::domain::process::definition::ActivityKind;
use crate::ops::activities::{act, roll_back, ActInput, ActivityAt, Person, Verb};
use crate::ops::{outcomes, releases, Actor};

/// Someone of the demo cast, as the use cases need them.
#[derive(Debug, Clone)]
pub struct Member {
    pub actor: Actor,
    pub email: String,
    pub bindings: Vec<Binding>,
}

/// How a release's story goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plan {
    /// Everything passes.
    Clean,
    /// The build fails once and passes on the automatic retry.
    RetryOnce,
    /// The production deploy fails; the release manager rolls back.
    RollBack,
    /// QA rejects it.
    Rejected,
    /// The tests fail; the release manager ignores the failure (partial success).
    Ignore,
    /// The build stays broken; the release manager aborts.
    Abort,
    /// Stop when it waits for people (QA approval): left running for the demo's visitors.
    StopAtApproval,
    /// Stop when it waits for a failure decision.
    StopAtDecision,
    /// Stop when a manual task waits for its owner (production verification).
    StopAtTask,
    /// Everything passes, up to this time: what comes due later is left to the live worker.
    RunUntil(DateTime<Utc>),
}

pub struct Cast {
    pub release_manager: Member,
    pub admin: Member,
    pub approvers: Vec<Member>,
}

fn job_of(phase: &str, key: &str) -> Job {
    match (phase, key) {
        (_, "compile") => Job::Build,
        (_, "tests") => Job::Test,
        (_, "smoke") => Job::Smoke,
        _ => Job::Deploy,
    }
}

/// The request body the demo CI would have received, enough for its verdict.
fn request_of(r: &Release, a: &ReleaseActivity) -> Value {
    let inputs = &r.inputs;
    if let Some(item) = &a.item {
        // A fan-out instance deploys one service of a manifest.
        return json!({"service": item, "version": a.item_value.clone().unwrap_or(Value::Null), "environment": a.phase_key.to_uppercase()});
    }
    json!({
        "version": inputs["version"],
        "services": inputs.get("services").cloned().unwrap_or_else(|| inputs["service"].clone()),
        "environment": if a.phase_key == "qa" { inputs["test_environments"].clone() } else { inputs.get("environment").cloned().unwrap_or(json!("PROD1")) },
    })
}

async fn person<'a>(conn: &mut AsyncPgConnection, m: &'a Member, t: DateTime<Utc>) -> anyhow::Result<Person<'a>> {
    Ok(Person::load(conn, m.actor.clone(), (&m.email, &m.bindings), t).await?)
}

/// Drives the release until it finishes (or stops where the plan says), moving `t` on as
/// the work would take. Returns the release as it ends.
pub async fn drive(
    conn: &mut AsyncPgConnection,
    cast: &Cast,
    release_id: i64,
    plan: Plan,
    t: &mut DateTime<Utc>,
) -> anyhow::Result<Release> {
    let account = cast.release_manager.actor.account_id;
    let mut job_number = release_id as u64 * 10;
    let defs = crate::db::models::processes::DefinitionCache::default();
    for _ in 0..400 {
        crate::engine::step(conn, &defs, || *t).await?;
        let r = Release::find(conn, account, release_id).await?;
        if !crate::domain::release::in_flight(r.state(), r.status()) {
            return Ok(r);
        }
        if let Plan::RunUntil(until) = plan {
            if *t >= until {
                return Ok(r);
            }
        }
        let (_, activities) = rows::tree(conn, release_id).await?;
        let mut acted = false;
        // A fan-out activity runs as its instances: they are what the CI answers.
        let fanned =
            |a: &ReleaseActivity| activities.iter().any(|i| i.phase_key == a.phase_key && i.fan_of.as_deref() == Some(a.key.as_str()));
        for a in activities.iter().filter(|a| a.node() == Node::Running && !fanned(a)) {
            let at = ActivityAt { release_id, phase: &a.phase_key, key: &a.key };
            if a.is_kind(ActivityKind::Webhook) {
                *t += TimeDelta::minutes(4 + (job_number % 7) as i64);
                job_number += 1;
                webhook_attempts::supersede(conn, release_id).await?;
                let forced_failure = match plan {
                    Plan::RetryOnce if a.key == "compile" && a.attempts <= 1 => {
                        Some("build agent lost its connection (exit 137)".to_string())
                    }
                    _ => None,
                };
                let ending = match (forced_failure, demo_ci::outcome(job_of(&a.phase_key, &a.key), &request_of(&r, a), job_number)) {
                    (Some(why), _) | (None, Err(why)) => {
                        outcomes::Ending::Failed { message: format!("the CI reported a failure: {why}"), permanent: false }
                    }
                    (None, Ok(outputs)) => outcomes::Ending::Succeeded { outputs },
                };
                let def = crate::ops::releases::pinned_definition(conn, &r).await?;
                outcomes::end(conn, (&r, &def), a, ending, "system:worker:demo-ci", outcomes::Then::Engine, *t).await?;
                acted = true;
            } else if a.is_kind(ActivityKind::Approval) {
                if plan == Plan::StopAtApproval {
                    return Ok(r);
                }
                *t += TimeDelta::hours(3);
                let voters: Vec<&Member> = cast
                    .approvers
                    .iter()
                    .chain([&cast.admin, &cast.release_manager])
                    .filter(|m| a.eligible.contains(&m.actor.user_id.unwrap_or_default()))
                    .collect();
                for (i, voter) in voters.iter().take(a.needed.max(1) as usize).enumerate() {
                    let reject = plan == Plan::Rejected && i == 0;
                    let input = ActInput {
                        comment: Some(
                            if reject { "Checkout fails in QA with a 500 on the payment step." } else { "Checked in QA." }.into(),
                        ),
                        reason: reject.then(|| "Checkout fails in QA with a 500 on the payment step.".to_string()),
                        outputs: None,
                    };
                    let who = person(conn, voter, *t).await?;
                    act(conn, &who, at, if reject { Verb::Reject } else { Verb::Approve }, &input, *t).await?;
                    *t += TimeDelta::minutes(25);
                    if reject {
                        break;
                    }
                }
                acted = true;
            } else if a.is_kind(ActivityKind::Manual) {
                if plan == Plan::StopAtTask {
                    return Ok(r);
                }
                *t += TimeDelta::minutes(30);
                let who = person(conn, &cast.release_manager, *t).await?;
                let input = ActInput { comment: Some("Done; dashboards are green.".into()), reason: None, outputs: None };
                act(conn, &who, at, Verb::Complete, &input, *t).await?;
                acted = true;
            }
        }
        let held = activities.iter().any(crate::ops::activities::is_decision_hold);
        if held && !acted {
            let rm = &cast.release_manager;
            *t += TimeDelta::minutes(40);
            match plan {
                Plan::StopAtDecision => return Ok(r),
                Plan::Ignore => {
                    let who = person(conn, rm, *t).await?;
                    let held = activities.iter().find(|a| crate::ops::activities::is_decision_hold(a));
                    if let Some(a) = held {
                        let at = ActivityAt { release_id, phase: &a.phase_key, key: &a.key };
                        let input = ActInput {
                            comment: None,
                            reason: Some("Known flaky test (TEST-231); the change is verified by hand.".into()),
                            outputs: None,
                        };
                        act(conn, &who, at, Verb::Ignore, &input, *t).await?;
                    }
                }
                Plan::Abort => {
                    releases::abort(conn, &rm.actor, release_id, "The build stays broken; a fix goes into next week's release.", *t)
                        .await?;
                }
                _ => {
                    roll_back(
                        conn,
                        &rm.actor,
                        &rm.bindings,
                        release_id,
                        "Production deploy failed; rolling back to the previous version.",
                        *t,
                    )
                    .await?;
                }
            }
            acted = true;
        }
        if !acted {
            // Waiting on a backoff or a wake time: on to it (a train waits days for its next phase).
            let soon = *t + TimeDelta::minutes(5);
            *t = match plan {
                Plan::RunUntil(until) => r.next_eval_at.filter(|n| *n > *t).unwrap_or(soon).min(until),
                _ => soon,
            };
        }
    }
    anyhow::bail!("demo release {release_id} did not finish its story")
}
