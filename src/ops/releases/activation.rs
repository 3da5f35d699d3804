//! Activation: by hand, by Run now, and the auto-activation sweep, which starts a batch of due
//! drafts with the account's facts read once and one statement for the whole batch's update.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use serde_json::json;

use super::*;
use crate::db::audit::{self, NewEvent};
use crate::db::models::catalog::{Environment, Group, GroupWithMembers};
use crate::db::models::releases::{self as rows, Release, ReleaseLink};
use crate::db::models::users::User;
use crate::db::schema::releases;
use crate::domain::process::unresolved::unresolved;
use crate::domain::process::validate::mentions;
use crate::domain::process::Definition;
use crate::domain::release::{self as rules, ActivationProblem, LinkKind, State};
use crate::domain::rule::RuleCode;
use crate::ops::outbox::NewNotification;
use crate::ops::{outbox, Actor, OpError};

/// What the activation checks read from an account: its groups and environments.
struct AccountFacts {
    groups: Vec<GroupWithMembers>,
    environments: Vec<Environment>,
}

impl AccountFacts {
    async fn load(conn: &mut AsyncPgConnection, account_id: i64) -> QueryResult<Self> {
        Ok(AccountFacts {
            groups: Group::list_with_members(conn, account_id).await?,
            environments: Environment::list(conn, account_id).await?,
        })
    }
}

/// Everything that keeps a draft from starting; and the inputs that are missing.
pub async fn activation_problems(
    conn: &mut AsyncPgConnection,
    release: &Release,
    def: &Definition,
) -> Result<(Vec<ActivationProblem>, Vec<String>), OpError> {
    let links = rows::links_from(conn, release.id).await?;
    let facts = AccountFacts::load(conn, release.account_id).await?;
    let (_, missing_users) = User::ids_by_emails(conn, release.account_id, &mentions(def).users).await?;
    problems_with(conn, release, def, &links, &facts, &missing_users).await
}

/// The checks of [`activation_problems`] on facts already read.
async fn problems_with(
    conn: &mut AsyncPgConnection,
    release: &Release,
    def: &Definition,
    links: &[ReleaseLink],
    facts: &AccountFacts,
    missing_users: &[String],
) -> Result<(Vec<ActivationProblem>, Vec<String>), OpError> {
    let values = stored_inputs(&release.inputs);
    let mut missing = rules::missing_inputs(def, &values);
    let mut problems: Vec<ActivationProblem> = missing.iter().cloned().map(ActivationProblem::MissingInput).collect();
    // Optional inputs left unset that a template needs would fail the activity at run time.
    let overrides = release.variables.as_object().cloned().unwrap_or_default();
    for u in unresolved(def, &rules::with_defaults(def, &values), &overrides) {
        problems.push(ActivationProblem::Unresolved(u.to_string()));
        missing.push(u.reference);
    }
    if release.owner_id.is_none() {
        problems.push(ActivationProblem::NoReleaseManager);
    }
    for link in links.iter().filter(|l| l.release_id == release.id && l.is(LinkKind::DependsOn)) {
        let target = Release::find(conn, release.account_id, link.target_id).await?;
        if !(target.state() != State::Draft && target.status().is_finished()) {
            problems.push(ActivationProblem::DependsOnUnfinished { id: target.id, status: target.status(), name: target.name });
        }
    }
    let m = mentions(def);
    for g in m.groups.iter().filter(|g| !facts.groups.iter().any(|x| &x.name == *g)) {
        problems.push(ActivationProblem::UnknownGroup(g.to_string()));
    }
    for u in missing_users {
        problems.push(ActivationProblem::UnknownUser(u.clone()));
    }
    for e in m.environments.iter().chain(release.environments.iter()) {
        let problem = ActivationProblem::UnknownEnvironment(e.clone());
        if !facts.environments.iter().any(|x| &x.name == e) && !problems.contains(&problem) {
            problems.push(problem);
        }
    }
    Ok((problems, missing))
}

/// Why a draft with problems cannot start, in one sentence.
fn refusal_message(problems: &[ActivationProblem]) -> String {
    let parts: Vec<String> = problems.iter().map(ToString::to_string).collect();
    format!("The release cannot start: {}.", parts.join("; "))
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
        return Err(OpError::Rule { code, message: refusal_message(&problems), field });
    }
    let mut activated = Release::mark_active(conn, &[release.id], now).await?.pop().ok_or(OpError::NotFound)?;
    if run_now.is_some() {
        let end = release.schedule_end.map(|e| now + (e - release.schedule_start.unwrap_or(now)));
        activated = Release::set_schedule(conn, release.id, Some(now), end).await?;
    }
    let mut event =
        NewEvent::release(&activated, actor, "release.activate").with_details(json!({"scheduled_start": release.schedule_start}));
    if let Some((reason, original)) = run_now {
        event = NewEvent::release(&activated, actor, "release.run_now")
            .with_reason(reason)
            .with_details(json!({"original_start": original, "new_start": now}));
    }
    audit::append(conn, event, now).await?;
    crate::db::wake::wake(conn).await?;
    announce_activated(conn, actor, std::slice::from_ref(&activated), now).await?;
    Ok(activated)
}

/// Activation notices: the release manager, stakeholders, and every phase and activity owner of
/// each release; and a chat message each. A few statements for any number of releases.
async fn announce_activated(conn: &mut AsyncPgConnection, actor: &str, activated: &[Release], now: DateTime<Utc>) -> QueryResult<()> {
    let ids: Vec<i64> = activated.iter().map(|r| r.id).collect();
    let owners = rows::owners_of(conn, &ids).await?;
    let mut accounts: Vec<i64> = activated.iter().map(|r| r.account_id).collect();
    accounts.sort_unstable();
    accounts.dedup();
    for account_id in accounts {
        let batch: Vec<&Release> = activated.iter().filter(|r| r.account_id == account_id).collect();
        let manager_ids: Vec<i64> = batch.iter().filter_map(|r| r.owner_id).collect();
        let managers = User::emails_by_ids(conn, account_id, &manager_ids).await?;
        let principals: Vec<Vec<String>> = batch
            .iter()
            .map(|r| {
                let mut principals = r.stakeholders.clone();
                principals.extend(managers.iter().filter(|(id, _)| Some(*id) == r.owner_id).map(|(_, email)| format!("user:{email}")));
                principals.extend(owners.iter().filter(|(id, _)| *id == r.id).map(|(_, owner)| owner.clone()));
                principals
            })
            .collect();
        let to = outbox::recipients_each(conn, account_id, &principals).await?;
        let texts: Vec<(String, String, String)> = batch
            .iter()
            .map(|r| {
                (
                    format!("Release \"{}\" has started", r.name),
                    format!("Release #{} \"{}\" was activated by {actor}.", r.id, r.name),
                    format!("/releases/{}", r.id),
                )
            })
            .collect();
        let chat: Vec<outbox::ChatMessage> =
            texts.iter().map(|(subject, _, link)| outbox::ChatMessage { kind: "release.activated", subject, link }).collect();
        outbox::enqueue_chat_many(conn, account_id, &chat, now).await?;
        let notes: Vec<NewNotification> = texts
            .iter()
            .zip(&to)
            .map(|((subject, body, link), recipients)| NewNotification {
                account_id,
                recipients,
                kind: "release.activated",
                subject,
                body,
                link,
            })
            .collect();
        outbox::enqueue_many(conn, &notes, now).await?;
    }
    Ok(())
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
    let reason = crate::ops::required_reason(reason)?;
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

/// How many due drafts one activation sweep takes (one transaction). Small enough that a burst
/// is shared among the workers and their lanes, and that the first ones start soon.
pub const ACTIVATION_BATCH: usize = 25;

const SCHEDULER: &str = "system:scheduler";

/// What a sweep has read so far: each account's facts, each pinned definition and the users it
/// names that do not exist.
#[derive(Default)]
struct SweepFacts {
    accounts: HashMap<i64, AccountFacts>,
    definitions: HashMap<(i64, i64, i32), (Definition, Vec<String>)>,
}

impl SweepFacts {
    /// Reads what the checks of `r` need, unless an earlier draft of the batch needed it too.
    async fn read_for(&mut self, conn: &mut AsyncPgConnection, r: &Release) -> Result<(), OpError> {
        if let std::collections::hash_map::Entry::Vacant(slot) = self.accounts.entry(r.account_id) {
            slot.insert(AccountFacts::load(conn, r.account_id).await?);
        }
        if let std::collections::hash_map::Entry::Vacant(slot) = self.definitions.entry((r.account_id, r.process_id, r.process_version)) {
            let def = pinned_definition(conn, r).await?;
            let (_, missing_users) = User::ids_by_emails(conn, r.account_id, &mentions(&def).users).await?;
            slot.insert((def, missing_users));
        }
        Ok(())
    }

    fn of(&self, r: &Release) -> Option<(&AccountFacts, &Definition, &[String])> {
        let (def, missing_users) = self.definitions.get(&(r.account_id, r.process_id, r.process_version))?;
        Some((self.accounts.get(&r.account_id)?, def, missing_users))
    }
}

/// The auto-activation sweep: claims due scheduled drafts (SKIP LOCKED, so several servers never
/// activate one twice) and activates them; a draft that cannot start stays a draft, and its
/// release manager is told exactly what is missing (once per distinct problem).
pub async fn activation_sweep(conn: &mut AsyncPgConnection, now: DateTime<Utc>) -> Result<usize, OpError> {
    Ok(sweep_due(conn, now).await?.activated)
}

/// What one activation sweep did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Swept {
    /// Due drafts it claimed (at most [`ACTIVATION_BATCH`]).
    pub claimed: usize,
    /// Of those, how many it activated.
    pub activated: usize,
}

/// [`activation_sweep`], saying also how many drafts it claimed, so a caller can tell a full
/// batch (more may be due) from the last one. Drafts not yet refused come first, so drafts that
/// cannot start never keep newly due ones waiting behind them.
pub async fn sweep_due(conn: &mut AsyncPgConnection, now: DateTime<Utc>) -> Result<Swept, OpError> {
    conn.transaction(async |conn| {
        let due: Vec<Release> = releases::table
            .filter(releases::state.eq(State::Draft.as_str()))
            .filter(releases::schedule_start.le(now))
            .order((releases::refused_at.is_not_null(), releases::schedule_start))
            .limit(ACTIVATION_BATCH as i64)
            .for_update()
            .skip_locked()
            .select(Release::as_select())
            .load(conn)
            .await?;
        if due.is_empty() {
            return Ok(Swept { claimed: 0, activated: 0 });
        }
        let claimed = due.len();
        let ids: Vec<i64> = due.iter().map(|r| r.id).collect();
        let links = rows::links_from_each(conn, &ids).await?;
        let mut facts = SweepFacts::default();
        for release in &due {
            facts.read_for(conn, release).await?;
        }
        let (mut ready, mut refused) = (Vec::new(), Vec::new());
        for release in due {
            let (account, def, missing_users) = facts.of(&release).ok_or(OpError::NotFound)?;
            let (problems, _) = problems_with(conn, &release, def, &links, account, missing_users).await?;
            if problems.is_empty() {
                ready.push(release.id);
            } else {
                refused.push((release, refusal_message(&problems)));
            }
        }
        let activated = Release::mark_active(conn, &ready, now).await?;
        for r in &activated {
            let event = NewEvent::release(r, SCHEDULER, "release.activate").with_details(json!({"scheduled_start": r.schedule_start}));
            audit::append(conn, event, now).await?;
        }
        if !activated.is_empty() {
            crate::db::wake::wake(conn).await?;
            announce_activated(conn, SCHEDULER, &activated, now).await?;
        }
        for (release, message) in refused {
            refuse(conn, release, message, now).await?;
        }
        Ok(Swept { claimed, activated: activated.len() })
    })
    .await
}

/// A due draft that cannot start: its reason says why, and its release manager is told (once
/// per distinct problem).
async fn refuse(conn: &mut AsyncPgConnection, release: Release, message: String, now: DateTime<Utc>) -> Result<(), OpError> {
    if release.status_reason.as_deref() == Some(message.as_str()) {
        return Ok(());
    }
    let (id, account_id) = (release.id, release.account_id);
    diesel::update(releases::table.find(id))
        .set((releases::status_reason.eq(&message), releases::refused_at.eq(now)))
        .execute(conn)
        .await?;
    let stub = Release::find(conn, account_id, id).await?;
    audit::append(conn, NewEvent::release(&stub, SCHEDULER, "release.auto_activation_refused").with_reason(message.clone()), now).await?;
    if let Some(email) = owner_email(conn, account_id, release.owner_id).await? {
        let to = outbox::recipients(conn, account_id, &[format!("user:{email}")]).await?;
        outbox::enqueue(
            conn,
            &NewNotification {
                account_id,
                recipients: &to,
                kind: "release.activation_refused",
                subject: &format!("Release \"{}\" could not start", release.name),
                body: &message,
                link: &format!("/releases/{id}"),
            },
            now,
        )
        .await?;
    }
    Ok(())
}
