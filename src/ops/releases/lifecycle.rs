//! Activation (and the auto-activation sweep), run now, abort, restart.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use serde_json::json;

use super::*;
use crate::db::audit::{self, NewEvent};
use crate::db::models::catalog::{Environment, Group};
use crate::db::models::releases::{self as rows, Outcome, Release};
use crate::db::models::users::User;
use crate::db::schema::releases;
use crate::domain::process::unresolved::unresolved;
use crate::domain::process::validate::mentions;
use crate::domain::process::Definition;
use crate::domain::release::{self as rules, LinkKind, State, Status};
use crate::domain::rule::RuleCode;
use crate::domain::validate::{self as fields};
use crate::ops::outbox::NewNotification;
use crate::ops::{outbox, Actor, OpError};

/// Everything that keeps a draft from starting, in words.
pub async fn activation_problems(
    conn: &mut AsyncPgConnection,
    release: &Release,
    def: &Definition,
) -> Result<(Vec<String>, Vec<String>), OpError> {
    let values = stored_inputs(&release.inputs);
    let mut missing = rules::missing_inputs(def, &values);
    let mut problems: Vec<String> = missing.iter().map(|n| format!("input {n} is required")).collect();
    // Optional inputs left unset that a template needs would fail the activity at run time.
    let overrides = release.variables.as_object().cloned().unwrap_or_default();
    for u in unresolved(def, &rules::with_defaults(def, &values), &overrides) {
        problems.push(u.to_string());
        missing.push(u.reference);
    }
    if release.owner_id.is_none() {
        problems.push("the release has no release manager".into());
    }
    for link in rows::links_from(conn, release.id).await?.iter().filter(|l| l.is(LinkKind::DependsOn)) {
        let target = Release::find(conn, release.account_id, link.target_id).await?;
        if !(target.state() != State::Draft && target.status().is_finished()) {
            problems.push(format!(
                "it depends on release #{} \"{}\", which has not finished ({})",
                target.id,
                target.name,
                target.status()
            ));
        }
    }
    let m = mentions(def);
    let groups = Group::list_with_members(conn, release.account_id).await?;
    for g in m.groups.iter().filter(|g| !groups.iter().any(|x| &x.name == *g)) {
        problems.push(format!("group {g:?} does not exist"));
    }
    let (_, missing_users) = User::ids_by_emails(conn, release.account_id, &m.users).await?;
    for u in missing_users {
        problems.push(format!("user {u} does not exist"));
    }
    let envs = Environment::list(conn, release.account_id).await?;
    for e in m.environments.iter().chain(release.environments.iter()) {
        if !envs.iter().any(|x| &x.name == e) && !problems.iter().any(|p| p.contains(&format!("environment {e:?}"))) {
            problems.push(format!("environment {e:?} does not exist"));
        }
    }
    Ok((problems, missing))
}

/// Activates a draft already locked by the caller's transaction.
pub(super) async fn activate_locked(
    conn: &mut AsyncPgConnection,
    actor: &str,
    release: Release,
    now: DateTime<Utc>,
    run_now: Option<(&str, DateTime<Utc>)>,
) -> Result<Release, OpError> {
    if release.state() != State::Draft {
        return Err(OpError::Rule {
            code: RuleCode::NotDraft,
            message: format!("Only drafts can be activated; this release is {}.", release.state()),
            field: None,
        });
    }
    // A scheduled release starts at its time (the sweep activates it then); by hand only through
    // Run now, which makes now its start so that offsets count from when it really began.
    if let (None, Some(start)) = (run_now, release.schedule_start.filter(|s| *s > now)) {
        let local = start.with_timezone(&release.zone()).format("%Y-%m-%d %H:%M %Z");
        return Err(OpError::Rule {
            code: RuleCode::Scheduled,
            message: format!(
                "This release is scheduled to start at {local} and will start by itself then; use Run now (with a reason) to start it early."
            ),
            field: None,
        });
    }
    let def = pinned_definition(conn, &release).await?;
    let (problems, missing) = activation_problems(conn, &release, &def).await?;
    if !problems.is_empty() {
        let code = if missing.is_empty() { RuleCode::ActivationRefused } else { RuleCode::MissingInputs };
        let field = if missing.is_empty() { None } else { Some("inputs") };
        return Err(OpError::Rule { code, message: format!("The release cannot start: {}.", problems.join("; ")), field });
    }
    let (start, end) = match run_now {
        Some(_) => (Some(now), release.schedule_end.map(|e| now + (e - release.schedule_start.unwrap_or(now)))),
        None => (release.schedule_start, release.schedule_end),
    };
    let activated: Release = diesel::update(releases::table.find(release.id))
        .set((
            releases::state.eq(State::Active.as_str()),
            releases::status.eq(Status::Running.as_str()),
            releases::status_reason.eq(None::<String>),
            releases::activated_at.eq(now),
            releases::started_at.eq(now),
            releases::next_eval_at.eq(now),
            releases::schedule_start.eq(start),
            releases::schedule_end.eq(end),
            releases::lock_version.eq(releases::lock_version + 1),
            releases::updated_at.eq(now),
        ))
        .returning(Release::as_returning())
        .get_result(conn)
        .await?;
    let mut event =
        NewEvent::release(&activated, actor, "release.activate").with_details(json!({"scheduled_start": release.schedule_start}));
    if let Some((reason, original)) = run_now {
        event = NewEvent::release(&activated, actor, "release.run_now")
            .with_reason(reason)
            .with_details(json!({"original_start": original, "new_start": now}));
    }
    audit::append(conn, event, now).await?;
    crate::db::wake::wake(conn).await?;
    // Activation notices: the release manager, stakeholders, and every phase and activity owner.
    let (phases, activities) = rows::tree(conn, activated.id).await?;
    let mut principals: Vec<String> = activated.stakeholders.clone();
    if let Some(email) = owner_email(conn, activated.account_id, activated.owner_id).await? {
        principals.push(format!("user:{email}"));
    }
    principals.extend(phases.iter().map(|p| p.owner.clone()));
    principals.extend(activities.iter().map(|a| a.owner.clone()));
    let to = outbox::recipients(conn, activated.account_id, &principals).await?;
    outbox::enqueue_chat(
        conn,
        activated.account_id,
        "release.activated",
        &format!("Release \"{}\" has started", activated.name),
        &format!("/releases/{}", activated.id),
        now,
    )
    .await?;
    outbox::enqueue(
        conn,
        &NewNotification {
            account_id: activated.account_id,
            recipients: &to,
            kind: "release.activated",
            subject: &format!("Release \"{}\" has started", activated.name),
            body: &format!("Release #{} \"{}\" was activated by {actor}.", activated.id, activated.name),
            link: &format!("/releases/{}", activated.id),
        },
        now,
    )
    .await?;
    Ok(activated)
}

pub async fn activate(conn: &mut AsyncPgConnection, actor: &Actor, release_id: i64, now: DateTime<Utc>) -> Result<Release, OpError> {
    conn.transaction(async |conn| {
        let release = Release::lock(conn, actor.account_id, release_id).await?;
        activate_locked(conn, &actor.label, release, now, None).await
    })
    .await
}

/// "Run now": a scheduled draft starts early; now becomes its start. Reason required.
pub async fn run_now(
    conn: &mut AsyncPgConnection,
    actor: &Actor,
    release_id: i64,
    reason: &str,
    now: DateTime<Utc>,
) -> Result<Release, OpError> {
    let reason = fields::required_text(reason, 2000).map_err(|m| OpError::invalid("reason", m))?;
    conn.transaction(async |conn| {
        let release = Release::lock(conn, actor.account_id, release_id).await?;
        let Some(original) = release.schedule_start else {
            return Err(OpError::Rule {
                code: RuleCode::NotScheduled,
                message: "Run now is for scheduled drafts; activate this one instead.".into(),
                field: None,
            });
        };
        activate_locked(conn, &actor.label, release, now, Some((&reason, original))).await
    })
    .await
}

/// How many due drafts one activation sweep takes (one transaction).
pub const ACTIVATION_BATCH: usize = 100;

/// The auto-activation sweep: claims due scheduled drafts (SKIP LOCKED, so several servers never
/// activate one twice) and activates them; a draft that cannot start stays a draft, and its
/// release manager is told exactly what is missing (once per distinct problem).
pub async fn activation_sweep(conn: &mut AsyncPgConnection, now: DateTime<Utc>) -> Result<usize, OpError> {
    conn.transaction(async |conn| {
        let due: Vec<Release> = releases::table
            .filter(releases::state.eq(State::Draft.as_str()))
            .filter(releases::schedule_start.le(now))
            .order(releases::schedule_start)
            .limit(ACTIVATION_BATCH as i64)
            .for_update()
            .skip_locked()
            .select(Release::as_select())
            .load(conn)
            .await?;
        let mut activated = 0;
        for release in due {
            let id = release.id;
            let previous_reason = release.status_reason.clone();
            let account_id = release.account_id;
            let owner_id = release.owner_id;
            let name = release.name.clone();
            let savepoint = conn.transaction(async |conn| activate_locked(conn, "system:scheduler", release, now, None).await).await;
            match savepoint {
                Ok(_) => activated += 1,
                Err(OpError::Rule { message, .. }) => {
                    if previous_reason.as_deref() != Some(message.as_str()) {
                        diesel::update(releases::table.find(id)).set(releases::status_reason.eq(&message)).execute(conn).await?;
                        let stub = Release::find(conn, account_id, id).await?;
                        audit::append(
                            conn,
                            NewEvent::release(&stub, "system:scheduler", "release.auto_activation_refused").with_reason(message.clone()),
                            now,
                        )
                        .await?;
                        if let Some(email) = owner_email(conn, account_id, owner_id).await? {
                            let to = outbox::recipients(conn, account_id, &[format!("user:{email}")]).await?;
                            outbox::enqueue(
                                conn,
                                &NewNotification {
                                    account_id,
                                    recipients: &to,
                                    kind: "release.activation_refused",
                                    subject: &format!("Release \"{name}\" could not start"),
                                    body: &message,
                                    link: &format!("/releases/{id}"),
                                },
                                now,
                            )
                            .await?;
                        }
                    }
                }
                Err(e) => return Err(e),
            }
        }
        Ok(activated)
    })
    .await
}

/// Abort (reason required): stops the release; what has not finished is Aborted.
pub async fn abort(
    conn: &mut AsyncPgConnection,
    actor: &Actor,
    release_id: i64,
    reason: &str,
    now: DateTime<Utc>,
) -> Result<Release, OpError> {
    let reason = fields::required_text(reason, 2000).map_err(|m| OpError::invalid("reason", m))?;
    conn.transaction(async |conn| {
        let release = Release::lock(conn, actor.account_id, release_id).await?;
        if !rules::in_flight(release.state(), release.status()) {
            return Err(OpError::Rule {
                code: RuleCode::NotInFlight,
                message: format!("Only a running or held release can be aborted; this one is {} ({}).", release.state(), release.status()),
                field: None,
            });
        }
        rows::abort_tree(conn, release.id, now).await?;
        crate::db::models::webhook_attempts::supersede(conn, release.id).await?;
        let aborted: Release = diesel::update(releases::table.find(release.id))
            .set((
                releases::status.eq(Status::Aborted.as_str()),
                releases::status_reason.eq(&reason),
                releases::finished_at.eq(now),
                releases::next_eval_at.eq(None::<DateTime<Utc>>),
                releases::lock_version.eq(releases::lock_version + 1),
                releases::updated_at.eq(now),
            ))
            .returning(Release::as_returning())
            .get_result(conn)
            .await?;
        audit::append(conn, NewEvent::release(&aborted, &actor.label, "release.abort").with_reason(reason.clone()), now).await?;
        let mut principals = aborted.stakeholders.clone();
        if let Some(email) = owner_email(conn, aborted.account_id, aborted.owner_id).await? {
            principals.push(format!("user:{email}"));
        }
        let to = outbox::recipients(conn, aborted.account_id, &principals).await?;
        outbox::enqueue(
            conn,
            &NewNotification {
                account_id: aborted.account_id,
                recipients: &to,
                kind: "release.aborted",
                subject: &format!("Release \"{}\" was aborted", aborted.name),
                body: &reason,
                link: &format!("/releases/{}", aborted.id),
            },
            now,
        )
        .await?;
        Ok(aborted)
    })
    .await
}

/// Restart or reschedule: a new draft linked `restarted_from`; the original never runs again.
pub async fn restart(conn: &mut AsyncPgConnection, actor: &Actor, release_id: i64, now: DateTime<Utc>) -> Result<Release, OpError> {
    conn.transaction(async |conn| {
        let source = Release::lock(conn, actor.account_id, release_id).await?;
        if source.state() == State::Draft || rules::in_flight(source.state(), source.status()) {
            return Err(OpError::Rule {
                code: RuleCode::NotFinished,
                message: "Only a finished or aborted release can be restarted; edit or abort this one instead.".into(),
                field: None,
            });
        }
        let mut fields = source.fields();
        fields.schedule_start = None;
        fields.schedule_end = None;
        let def = pinned_definition(conn, &source).await?;
        let draft = Release::insert(conn, actor.account_id, &fields, actor.user_id, now).await?;
        rows::add_link(conn, actor.account_id, draft.id, LinkKind::RestartedFrom.as_str(), source.id).await?;
        let manager = owner_email(conn, actor.account_id, draft.owner_id).await?;
        let (phases, activities) = build_tree(&draft, &def, manager.as_deref());
        rows::replace_tree(conn, draft.id, &phases, &activities).await?;
        audit::append(
            conn,
            NewEvent::release(&draft, &actor.label, "release.create")
                .with_details(json!({"restarted_from": source.id, "after": audit_view(&fields, &def)})),
            now,
        )
        .await?;
        audit::append(
            conn,
            NewEvent::release(&source, &actor.label, "release.restarted").with_details(json!({"new_release": draft.id})),
            now,
        )
        .await?;
        Ok(draft)
    })
    .await
}

/// Records where a release ended up without running it: history brought in from elsewhere
/// (the demo's past releases, an import) and tests. Audited on the release's trail.
pub async fn record_outcome(
    conn: &mut AsyncPgConnection,
    actor: &Actor,
    release_id: i64,
    outcome: Outcome,
    now: DateTime<Utc>,
) -> Result<Release, OpError> {
    conn.transaction(async |conn| {
        let before = Release::lock(conn, actor.account_id, release_id).await?;
        let after = Release::set_outcome(conn, before.id, outcome, before.activated_at.unwrap_or(now)).await?;
        let event = NewEvent::release(&after, actor.label.clone(), "release.outcome_recorded").with_details(json!({
            "before": {"state": before.state, "status": before.status},
            "after": {"state": after.state, "status": after.status, "finished_at": after.finished_at},
        }));
        audit::append(conn, event, now).await?;
        Ok(after)
    })
    .await
}
