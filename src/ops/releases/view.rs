//! A release with everything its pages and API answers show.

use std::sync::Arc;

use diesel::prelude::*;
use diesel_async::AsyncPgConnection;

use crate::db::models::accounts::Organization;
use crate::db::models::processes::Process;
use crate::db::models::releases::{self as rows, Release, ReleaseActivity, ReleasePhase};
use crate::db::models::users::User;
use crate::domain::policy::{self, Action, Binding};
use crate::domain::process::Definition;
use crate::ops::activities::Person;
use crate::ops::processes::{self as processes_ops};
use crate::ops::read_cache::{ReadCache, Reading};
use crate::ops::{outbox, Actor, OpError};

pub(super) async fn owner_email(conn: &mut AsyncPgConnection, account_id: i64, owner_id: Option<i64>) -> QueryResult<Option<String>> {
    match owner_id {
        Some(id) => Ok(Some(User::find(conn, account_id, id).await?.email)),
        None => Ok(None),
    }
}

/// A release with everything its pages and API answers show.
#[derive(Debug)]
pub struct ReleaseView {
    pub release: Release,
    pub org_slug: Option<String>,
    pub owner_email: Option<String>,
    pub process_name: String,
    pub definition: Definition,
    pub links: Vec<rows::ReleaseLink>,
    pub linked_by: Vec<(i64, String, String)>,
    pub phases: Vec<ReleasePhase>,
    pub activities: Vec<ReleaseActivity>,
}

pub async fn view(conn: &mut AsyncPgConnection, release: Release) -> Result<ReleaseView, OpError> {
    let org_slug = match release.org_id {
        Some(id) => Some(Organization::find(conn, release.account_id, id).await?.slug),
        None => None,
    };
    let owner_email = owner_email(conn, release.account_id, release.owner_id).await?;
    let process = Process::find(conn, release.account_id, release.process_id).await?;
    let definition = processes_ops::load(conn, &process, Some(release.process_version)).await?.1;
    let links = rows::links_from(conn, release.id).await?;
    let linked_by = rows::links_to(conn, release.id).await?;
    let (phases, activities) = rows::tree(conn, release.id).await?;
    Ok(ReleaseView { org_slug, owner_email, process_name: process.name, definition, links, linked_by, phases, activities, release })
}

/// Whether the user is named on the release: an owner, an approver, a stakeholder or its manager.
pub async fn is_named(conn: &mut AsyncPgConnection, release: &Release, user_id: i64, email: &str) -> QueryResult<bool> {
    if release.owner_id == Some(user_id) {
        return Ok(true);
    }
    let (phases, activities) = rows::tree(conn, release.id).await?;
    let mut principals: Vec<String> = release.stakeholders.clone();
    principals.extend(phases.iter().map(|p| p.owner.clone()));
    principals.extend(activities.iter().map(|a| a.owner.clone()));
    if activities.iter().any(|a| a.eligible.contains(&user_id)) {
        return Ok(true);
    }
    let named = outbox::recipients(conn, release.account_id, &principals).await?;
    Ok(named.iter().any(|(id, e)| *id == user_id || e.eq_ignore_ascii_case(email)))
}

/// Everything the release page shows to one person: what it reads (shared, `DetailRead`) and
/// who reads it.
pub struct ReleaseDetail<'a> {
    pub read: Arc<DetailRead>,
    pub person: Person<'a>,
}

/// What the release page reads of the database for readers with the same roles: the release,
/// the newest process version (for "rebase"), one page of its trail and what is in it.
pub struct DetailRead {
    pub view: ReleaseView,
    pub latest_version: i32,
    /// One page of its own trail, newest first, and the cursor of the next (older) page.
    pub trail: Vec<crate::db::audit::AuditEvent>,
    pub trail_next: Option<i64>,
    /// What is in it: where it deployed, and every approval vote.
    pub deployments: Vec<crate::db::reports::DeploymentRow>,
    pub approvals: Vec<crate::db::reports::ApprovalRow>,
    /// Every activity's comments, oldest first.
    pub comments: Vec<crate::db::release_page::CommentRow>,
    /// Every webhook attempt, oldest first.
    pub attempts: Vec<crate::db::release_page::AttemptRow>,
    /// What changes whenever anything above changes (the live page's ETag).
    pub marker: Marker,
    /// A draft: why activating it now would be refused (the same list activation gives).
    pub not_ready: Vec<String>,
    /// Releases the reader may see whose window conflicts with this one's (id, name).
    pub conflicts: Vec<(i64, String)>,
    /// (release id, org id) of every linked release, to show only those the reader may see.
    pub link_orgs: Vec<(i64, Option<i64>)>,
    /// A release with a manifest: its board.
    pub board: Option<crate::ops::board::Board>,
}

/// What one release page reading depends on besides the data.
#[derive(Debug, PartialEq)]
pub struct DetailKey {
    account_id: i64,
    release_id: i64,
    trail_after: Option<i64>,
    bindings: Vec<Binding>,
}

/// The groups a user belongs to and whom they vote for, by user.
pub type StandingCache = ReadCache<i64, (Vec<String>, Vec<i64>)>;

pub use crate::db::release_page::Marker;

/// The release page's change marker, in one statement (`None`: no such release here). Callers
/// must still decide whether the reader may see the release.
pub async fn change_marker(conn: &mut AsyncPgConnection, account_id: i64, release_id: i64) -> Result<Option<Marker>, OpError> {
    Ok(crate::db::release_page::marker(conn, account_id, release_id).await?)
}

/// Events per page of the release page's trail.
pub const TRAIL_PAGE: i64 = 50;

/// Who may see a release: who may view releases at its level, and everyone named on it.
pub async fn require_visible(
    conn: &mut AsyncPgConnection,
    release: &Release,
    bindings: &[Binding],
    (user_id, email): (i64, &str),
) -> Result<(), OpError> {
    if !policy::allows(bindings, Action::ViewRelease, release.scope()) && !is_named(conn, release, user_id, email).await? {
        policy::require(bindings, Action::ViewRelease, release.scope())?;
    }
    Ok(())
}

/// The release page's data; visible to who may view releases at its level and to everyone
/// named on it. Read once per database snapshot (`ops::read_cache`).
pub async fn detail<'a>(
    conn: &mut AsyncPgConnection,
    (cache, standing, reading): (&ReadCache<DetailKey, DetailRead>, &StandingCache, Reading<'_>),
    actor: Actor,
    (email, bindings): (&'a str, &'a [Binding]),
    (release_id, trail_after): (i64, Option<i64>),
) -> Result<ReleaseDetail<'a>, OpError> {
    let account_id = actor.account_id;
    let key = DetailKey { account_id, release_id, trail_after, bindings: bindings.to_vec() };
    let read = cache.get_or_load(key, reading, || read_detail(conn, account_id, bindings, (release_id, trail_after), reading.now)).await?;
    let user_id = actor.user_id.unwrap_or_default();
    require_visible(conn, &read.view.release, bindings, (user_id, email)).await?;
    let (groups, delegating_for) =
        standing.get_or_load(user_id, reading, || crate::db::models::users::standing(conn, user_id, reading.now)).await?.as_ref().clone();
    let person = Person { actor, user_id, email, bindings, groups, delegating_for };
    Ok(ReleaseDetail { read, person })
}

async fn read_detail(
    conn: &mut AsyncPgConnection,
    account_id: i64,
    bindings: &[Binding],
    (release_id, trail_after): (i64, Option<i64>),
    now: chrono::DateTime<chrono::Utc>,
) -> Result<DetailRead, OpError> {
    let head = crate::db::release_page::head(conn, account_id, release_id).await?;
    let definition = head.definition.ok_or(OpError::NotFound).and_then(crate::ops::processes::stored_definition)?;
    let (phases, activities) = rows::tree(conn, release_id).await?;
    let everything = crate::domain::policy::Visibility { account_level: true, all_orgs: true, orgs: Vec::new() };
    let filter = crate::db::audit_search::AuditFilter { release_id: Some(release_id), before_id: trail_after, ..Default::default() };
    let mut trail = crate::db::audit_search::search(conn, head.release.account_id, &everything, &filter, TRAIL_PAGE + 1).await?;
    let trail_next = if trail.len() as i64 > TRAIL_PAGE {
        trail.truncate(TRAIL_PAGE as usize);
        trail.last().map(|e| e.id)
    } else {
        None
    };
    let related = crate::db::release_page::related(conn, release_id).await?;
    let not_ready = if head.release.state() == crate::domain::release::State::Draft {
        super::activation::activation_problems(conn, &head.release, &definition).await?.0.iter().map(ToString::to_string).collect()
    } else {
        Vec::new()
    };
    let conflicts = crate::ops::calendar::conflicting_with(conn, &head.release, bindings, now).await?;
    let view = ReleaseView {
        release: head.release,
        org_slug: head.org_slug,
        owner_email: head.owner_email,
        process_name: head.process_name,
        definition,
        links: related.links,
        linked_by: related.linked_by,
        phases,
        activities,
    };
    let board = crate::ops::board::board(conn, &view, bindings).await?;
    Ok(DetailRead {
        board,
        view,
        latest_version: head.latest_version,
        trail,
        trail_next,
        deployments: related.deployments,
        approvals: related.approvals,
        comments: related.comments,
        attempts: related.attempts,
        link_orgs: related.link_orgs,
        marker: head.marker,
        not_ready,
        conflicts,
    })
}
