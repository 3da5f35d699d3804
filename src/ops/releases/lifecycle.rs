//! Abort, restart, and recording where a release ended up.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use serde_json::json;

use super::*;
use crate::db::audit::{self, NewEvent};
use crate::db::models::releases::{self as rows, Outcome, Release};
use crate::db::schema::releases;
use crate::domain::release::{self as rules, LinkKind, State, Status};
use crate::domain::rule::RuleCode;
use crate::ops::outbox::NewNotification;
use crate::ops::{outbox, Actor, OpError};

/// Abort (reason required): stops the release; what has not finished is Aborted.
pub async fn abort(
    conn: &mut AsyncPgConnection,
    actor: &Actor,
    release_id: i64,
    reason: &str,
    now: DateTime<Utc>,
) -> Result<Release, OpError> {
    let reason = crate::ops::required_reason(reason)?;
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
        let freed = crate::db::locks::release(conn, release.id, None).await?;
        crate::db::locks::wake_waiters(conn, &freed, now).await?;
        let aborted: Release = diesel::update(releases::table.find(release.id))
            .set((
                releases::status.eq(Status::Aborted),
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
        rows::add_link(conn, actor.account_id, draft.id, LinkKind::RestartedFrom, source.id).await?;
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

/// Retries a release the engine set aside after repeated errors (hold `engine_error`): back to
/// Running and due now, with the reason on its trail. Anything else is not waiting for this.
pub async fn retry_set_aside(
    conn: &mut AsyncPgConnection,
    actor: &Actor,
    release_id: i64,
    reason: &str,
    now: DateTime<Utc>,
) -> Result<Release, OpError> {
    let reason = crate::ops::required_reason(reason)?;
    conn.transaction(async |conn| {
        let release = Release::lock(conn, actor.account_id, release_id).await?;
        let held = release.status() == Status::OnHold && release.hold == Some(crate::domain::release::Hold::EngineError);
        if !held || !crate::db::engine_holds::resume(conn, release.id, now).await? {
            return Err(OpError::Rule {
                code: RuleCode::NotWaiting,
                message: "Only a release the engine set aside after repeated errors is retried this way.".into(),
                field: None,
            });
        }
        let resumed: Release = releases::table.find(release.id).select(Release::as_select()).first(conn).await?;
        audit::append(conn, NewEvent::release(&resumed, &actor.label, "release.retry").with_reason(reason.clone()), now).await?;
        crate::db::wake::schedule_now(conn, resumed.id, now).await?;
        Ok(resumed)
    })
    .await
}
