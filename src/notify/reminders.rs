//! Reminders for waiting approvals every account-set interval, and `escalate_after` escalation:
//! first the phase owner, then the release manager.

use chrono::{DateTime, TimeDelta, Utc};
use diesel_async::AsyncPgConnection;
use std::collections::HashMap;

use crate::db::reminders as rows;
use crate::domain::engine::Node;
use crate::domain::process::definition::ActivityKind;
use crate::domain::process::time::parse_duration;
use crate::domain::process::Definition;
use crate::ops::outbox::NewNotification;
use crate::ops::{outbox, OpError};

pub async fn sweep(conn: &mut AsyncPgConnection, now: DateTime<Utc>) -> Result<usize, OpError> {
    let waiting = rows::waiting_on_people(conn).await?;
    let mut sent = 0;
    let mut definitions: HashMap<i64, Definition> = HashMap::new();
    let mut intervals: HashMap<i64, i64> = HashMap::new();
    for (a, r) in waiting {
        let Some(started) = a.started_at else { continue };
        if a.is_kind(ActivityKind::Approval) && a.node() == Node::Running {
            let minutes = match intervals.get(&r.account_id) {
                Some(m) => *m,
                None => {
                    let m = rows::reminder_interval_minutes(conn, r.account_id).await?;
                    intervals.insert(r.account_id, i64::from(m));
                    i64::from(m)
                }
            };
            let last = a.last_reminded_at.unwrap_or(started);
            // One reminder per interval, however far the clock jumped.
            if now - last >= TimeDelta::minutes(minutes) {
                let to = rows::pending_approvers(conn, &a).await?;
                outbox::enqueue(
                    conn,
                    &NewNotification {
                        account_id: r.account_id,
                        recipients: &to,
                        kind: "approval.reminder",
                        subject: &format!("Reminder: your approval is needed for \"{}\" in \"{}\"", a.name, r.name),
                        body: "",
                        link: &format!("/releases/{}", r.id),
                    },
                    now,
                )
                .await?;
                rows::mark_reminded(conn, &a, now).await?;
                sent += 1;
            }
        }
        if a.escalation_level < 2 {
            if let std::collections::hash_map::Entry::Vacant(slot) = definitions.entry(r.id) {
                slot.insert(crate::ops::releases::pinned_definition(conn, &r).await?);
            }
            let escalate_after = definitions
                .get(&r.id)
                .and_then(|d| d.phase(&a.phase_key))
                .and_then(|p| p.activities.iter().find(|x| x.key == a.key))
                .and_then(|x| x.escalate_after.as_deref())
                .and_then(|e| parse_duration(e).ok());
            if let Some(after) = escalate_after {
                let level = a.escalation_level;
                if now - started >= after * (level + 1) {
                    let target = if level == 0 {
                        rows::phase(conn, r.id, &a.phase_key).await?.owner
                    } else {
                        match r.owner_id {
                            Some(id) => format!("user:{}", crate::db::models::users::User::find(conn, r.account_id, id).await?.email),
                            None => String::new(),
                        }
                    };
                    let to = outbox::recipients(conn, r.account_id, &[target]).await?;
                    let who = if level == 0 { "phase owner" } else { "release manager" };
                    outbox::enqueue(
                        conn,
                        &NewNotification {
                            account_id: r.account_id,
                            recipients: &to,
                            kind: "activity.escalated",
                            subject: &format!("Escalation: \"{}\" in \"{}\" has waited too long", a.name, r.name),
                            body: &format!("Escalated to the {who} after waiting since {}.", started.format("%Y-%m-%d %H:%M UTC")),
                            link: &format!("/releases/{}", r.id),
                        },
                        now,
                    )
                    .await?;
                    rows::mark_escalated(conn, &a, level + 1).await?;
                    sent += 1;
                }
            }
        }
    }
    Ok(sent)
}
