//! A manual task: its owner is told it waits for them; a person completes or fails it.

use chrono::{DateTime, Utc};
use diesel_async::AsyncPgConnection;

use super::Start;
use crate::db::models::releases::{Release, ReleaseActivity};
use crate::domain::process::definition::ActivityDef;
use crate::ops::outbox::{self, NewNotification};
use crate::ops::OpError;

pub async fn start(
    conn: &mut AsyncPgConnection,
    r: &Release,
    row: &ReleaseActivity,
    def: &ActivityDef,
    now: DateTime<Utc>,
) -> Result<Start, OpError> {
    let owners = outbox::recipients(conn, r.account_id, std::slice::from_ref(&row.owner)).await?;
    if !owners.is_empty() {
        let note = NewNotification {
            account_id: r.account_id,
            recipients: &owners,
            kind: "activity.waiting",
            subject: &format!("Your task is waiting: \"{}\" in \"{}\"", def.name, r.name),
            body: "",
            link: &format!("/releases/{}", r.id),
        };
        outbox::enqueue(conn, &note, now).await?;
    }
    Ok(Start::running())
}
