//! An approval: the eligible approvers (separation of duties applied), how many must approve,
//! and a sign-off link of their own for each, for this round. Too few eligible approvers hold it.

use chrono::{DateTime, Utc};
use diesel::QueryResult;
use diesel_async::AsyncPgConnection;

use super::Start;
use crate::db::models::releases::{Release, ReleaseActivity};
use crate::db::models::signoff_tokens::{self, LinkFor};
use crate::domain::process::definition::{ActivityDef, Threshold};
use crate::domain::release::Hold;
use crate::ops::outbox::{self, NewNotification};
use crate::ops::OpError;

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

pub async fn start(
    conn: &mut AsyncPgConnection,
    r: &Release,
    row: &ReleaseActivity,
    def: &ActivityDef,
    now: DateTime<Utc>,
) -> Result<Start, OpError> {
    let approvers = eligible_approvers(conn, r, def).await?;
    let needed_count = needed(def, approvers.len());
    let eligible: Vec<i64> = approvers.iter().map(|(id, _)| *id).collect();
    if approvers.len() < needed_count {
        let separation =
            if def.separation_of_duties == Some(true) { " (separation of duties excludes the creator and release manager)" } else { "" };
        let reason = format!("only {} eligible approver(s) for {} needed approval(s){separation}", approvers.len(), needed_count);
        return Ok(Start { eligible, needed: needed_count, ..Start::held(Hold::Approval, reason) });
    }
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
        let note = NewNotification {
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
        };
        outbox::enqueue(conn, &note, now).await?;
    }
    Ok(Start { eligible, needed: needed_count, ..Start::running() })
}
