//! People around an activity: its comment thread, and handing a manual task to someone else.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use serde_json::json;

use crate::db::audit::{self, NewEvent};
use crate::db::models::releases::{activity_by_key, Release, ReleaseActivity};
use crate::db::schema::{activity_comments, release_activities};
use crate::domain::engine::Node;
use crate::domain::policy::{self, Action};
use crate::domain::process::definition::ActivityKind;
use crate::domain::validate as fields;
use crate::ops::activities::{ActivityAt, Person};
use crate::ops::outbox::{self, NewNotification};
use crate::ops::OpError;

pub const MAX_COMMENT: usize = fields::MAX_COMMENT_LEN;

/// Adds a comment to an activity's thread: anyone who may see the release may comment.
pub async fn comment(
    conn: &mut AsyncPgConnection,
    person: &Person<'_>,
    at: ActivityAt<'_>,
    text: &str,
    now: DateTime<Utc>,
) -> Result<(), OpError> {
    let text = fields::required_text(text, MAX_COMMENT).map_err(|m| OpError::invalid("text", m))?;
    conn.transaction(async |conn| {
        let r = Release::lock(conn, person.actor.account_id, at.release_id).await?;
        crate::ops::releases::require_visible(conn, &r, person.bindings, (person.user_id, person.email)).await?;
        let a: ReleaseActivity = activity_by_key(r.id, at.phase, at.key).select(ReleaseActivity::as_select()).first(conn).await?;
        diesel::insert_into(activity_comments::table)
            .values((
                activity_comments::account_id.eq(r.account_id),
                activity_comments::release_id.eq(r.id),
                activity_comments::phase_key.eq(&a.phase_key),
                activity_comments::activity_key.eq(&a.key),
                activity_comments::author.eq(person.email),
                activity_comments::body.eq(&text),
                activity_comments::created_at.eq(now),
            ))
            .execute(conn)
            .await?;
        audit::append(
            conn,
            NewEvent::release(&r, person.actor.label.clone(), "activity.comment")
                .with_subject(format!("activity:{}.{}", a.phase_key, a.key))
                .with_details(json!({ "text": text })),
            now,
        )
        .await?;
        Ok(())
    })
    .await
}

/// The threads of these activities (release id, phase, key): (release id, phase, key, author,
/// text, when), oldest first, in one statement.
pub async fn threads(
    conn: &mut AsyncPgConnection,
    account_id: i64,
    release_ids: &[i64],
) -> QueryResult<Vec<(i64, String, String, String, String, DateTime<Utc>)>> {
    if release_ids.is_empty() {
        return Ok(Vec::new());
    }
    activity_comments::table
        .filter(activity_comments::account_id.eq(account_id))
        .filter(activity_comments::release_id.eq_any(release_ids))
        .order((activity_comments::created_at, activity_comments::id))
        .select((
            activity_comments::release_id,
            activity_comments::phase_key,
            activity_comments::activity_key,
            activity_comments::author,
            activity_comments::body,
            activity_comments::created_at,
        ))
        .load(conn)
        .await
}

/// Hands a manual task that is not finished to another person (`user:<email>`) or group
/// (`group:<name>`); only a release manager of the release may. The new assignees are told;
/// the former one can no longer complete it.
pub async fn reassign(
    conn: &mut AsyncPgConnection,
    person: &Person<'_>,
    at: ActivityAt<'_>,
    to: &str,
    now: DateTime<Utc>,
) -> Result<(), OpError> {
    let to = to.trim();
    let to = if to.contains(':') { to.to_string() } else { format!("user:{to}") };
    conn.transaction(async |conn| {
        let r = Release::lock(conn, person.actor.account_id, at.release_id).await?;
        if !policy::allows(person.bindings, Action::DecideFailure, r.scope()) {
            return Err(OpError::Forbidden("Only a release manager of this release may hand its tasks to someone else.".into()));
        }
        let a: ReleaseActivity = activity_by_key(r.id, at.phase, at.key).select(ReleaseActivity::as_select()).first(conn).await?;
        if a.kind != ActivityKind::Manual {
            return Err(OpError::invalid("owner", format!("only manual tasks are reassigned; this one is {}", a.kind)));
        }
        if a.node().is_finished() || a.node() == Node::Skipped {
            return Err(OpError::invalid("owner", format!("the task is {} already", a.status)));
        }
        let assignees = outbox::recipients(conn, r.account_id, std::slice::from_ref(&to)).await?;
        if assignees.is_empty() {
            return Err(OpError::invalid(
                "owner",
                format!("{to:?} names no active user or group with members (use user:<e-mail> or group:<name>)"),
            ));
        }
        diesel::update(activity_by_key(r.id, &a.phase_key, &a.key)).set(release_activities::owner.eq(&to)).execute(conn).await?;
        audit::append(
            conn,
            NewEvent::release(&r, person.actor.label.clone(), "activity.reassign")
                .with_subject(format!("activity:{}.{}", a.phase_key, a.key))
                .with_details(json!({ "from": a.owner, "to": to })),
            now,
        )
        .await?;
        outbox::enqueue(
            conn,
            &NewNotification {
                account_id: r.account_id,
                recipients: &assignees,
                kind: "activity.reassigned",
                subject: &format!("A task was handed to you: \"{}\" in \"{}\"", a.name, r.name),
                body: &format!("{} handed you \"{}\" (it was {}'s).", person.email, a.name, a.owner),
                link: &format!("/releases/{}", r.id),
            },
            now,
        )
        .await?;
        Ok(())
    })
    .await
}
