//! A process's life beside its versions: duplicate it, archive it (hidden from new releases),
//! delete it once nothing uses it.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use serde_json::json;

use crate::db::audit::{self, NewEvent};
use crate::db::models::processes::Process;
use crate::db::schema::{processes, release_groups, releases};
use crate::domain::rule::RuleCode;
use crate::ops::processes::{create, load, Saved, Source};
use crate::ops::{Actor, OpError};

/// A new process with the newest version's definition under another name (same level).
pub async fn duplicate(conn: &mut AsyncPgConnection, actor: &Actor, id: i64, name: &str, now: DateTime<Utc>) -> Result<Saved, OpError> {
    let process = Process::find(conn, actor.account_id, id).await?;
    let (_, mut def) = load(conn, &process, None).await?;
    let name = name.trim();
    def.name = if name.is_empty() { format!("{} (copy)", process.name) } else { name.to_string() };
    let saved = create(conn, actor, process.org_id, Source::Json(def.to_json()), now).await?;
    audit::append(
        conn,
        NewEvent::account(actor.account_id, &actor.label, "process.duplicate", format!("process:{}", saved.process.id))
            .with_details(json!({"from": process.id, "from_name": process.name, "name": saved.process.name})),
        now,
    )
    .await?;
    Ok(saved)
}

/// Archives (hides from new releases) or restores a process; its releases are not touched.
pub async fn set_archived(
    conn: &mut AsyncPgConnection,
    actor: &Actor,
    id: i64,
    archived: bool,
    now: DateTime<Utc>,
) -> Result<Process, OpError> {
    conn.transaction(async |conn| {
        let process = Process::find(conn, actor.account_id, id).await?;
        let updated: Process = diesel::update(processes::table.find(process.id))
            .set(processes::archived_at.eq(archived.then_some(now)))
            .returning(Process::as_returning())
            .get_result(conn)
            .await?;
        audit::append(
            conn,
            NewEvent::account(
                actor.account_id,
                &actor.label,
                if archived { "process.archive" } else { "process.unarchive" },
                format!("process:{}", process.id),
            )
            .with_details(json!({"name": process.name})),
            now,
        )
        .await?;
        Ok(updated)
    })
    .await
}

/// Deletes a process nothing uses: refused, naming them, while releases or release groups do.
pub async fn delete(conn: &mut AsyncPgConnection, actor: &Actor, id: i64, now: DateTime<Utc>) -> Result<(), OpError> {
    conn.transaction(async |conn| {
        let process = Process::find(conn, actor.account_id, id).await?;
        let users: Vec<(i64, String)> = releases::table
            .filter(releases::account_id.eq(actor.account_id))
            .filter(releases::process_id.eq(process.id))
            .order(releases::id)
            .select((releases::id, releases::name))
            .limit(11)
            .load(conn)
            .await?;
        let groups: Vec<String> =
            release_groups::table.filter(release_groups::process_id.eq(process.id)).select(release_groups::name).load(conn).await?;
        if !users.is_empty() || !groups.is_empty() {
            let mut named: Vec<String> = users.iter().take(10).map(|(rid, name)| format!("#{rid} {name}")).collect();
            if users.len() > 10 {
                named.push("and more".into());
            }
            named.extend(groups.iter().map(|g| format!("release group {g:?}")));
            return Err(OpError::Rule {
                code: RuleCode::InUse,
                message: format!(
                    "Process {:?} is still used by {}; archive it instead to hide it from new releases.",
                    process.name,
                    named.join(", ")
                ),
                field: None,
            });
        }
        diesel::delete(processes::table.find(process.id)).execute(conn).await?;
        audit::append(
            conn,
            NewEvent::account(actor.account_id, &actor.label, "process.delete", format!("process:{}", process.id))
                .with_details(json!({"name": process.name, "latest_version": process.latest_version})),
            now,
        )
        .await?;
        Ok(())
    })
    .await
}
