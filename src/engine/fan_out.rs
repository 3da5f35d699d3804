//! Starting a fan-out activity (DESIGN §3): `for_each` is resolved once, and each item becomes an
//! instance row `activity[item]` that runs as the activity's kind says, `max_parallel` at a time.

use chrono::{DateTime, Utc};
use diesel_async::AsyncPgConnection;
use serde_json::{json, Value};

use crate::db::audit::{self, NewEvent};
use crate::db::engine as rows;
use crate::db::models::releases::{Release, ReleaseActivity};
use crate::domain::engine::{fan_out_items, instance_key, Node};
use crate::domain::process::definition::ActivityDef;
use crate::domain::process::template::render;
use crate::domain::process::Definition;
use crate::ops::context::{lookup_in, Secrets};
use crate::ops::outcomes::{self, Ending, Then};
use crate::ops::OpError;

/// The activity has started as its instances: they are returned for the engine's tree, and the
/// activity's own status (Running; Skipped when there is nothing to run; failed by its
/// `on_failure` when `for_each` cannot be resolved into items).
pub struct FannedOut {
    pub status: Node,
    pub instances: Vec<ReleaseActivity>,
}

pub async fn start(
    conn: &mut AsyncPgConnection,
    (r, def): (&Release, &Definition),
    activities: &[ReleaseActivity],
    row: &ReleaseActivity,
    adef: &ActivityDef,
    now: DateTime<Utc>,
) -> Result<FannedOut, OpError> {
    let template = adef.for_each.clone().unwrap_or_default();
    let lookup = lookup_in(r, activities, def, (&row.phase_key, &row.key), Secrets::Masked, None);
    let items = render(&Value::String(template.clone()), &lookup).and_then(|v| fan_out_items(&v));
    let subject = format!("activity:{}.{}", row.phase_key, row.key);
    let items = match items {
        Ok(items) => items,
        Err(why) => {
            let message = format!("for_each {template:?}: {why}");
            outcomes::end(conn, (r, def), row, Ending::Failed { message, permanent: true }, "system:engine", Then::Caller, now).await?;
            let status = rows::activity_status(conn, r.id, (&row.phase_key, &row.key)).await?;
            return Ok(FannedOut { status, instances: Vec::new() });
        }
    };
    if items.is_empty() {
        let reason = format!("skipped: for_each {template:?} has no items");
        rows::skip_activity(conn, r.id, (&row.phase_key, &row.key), &reason, now).await?;
        let event = NewEvent::release(r, "system:engine", "activity.skipped").with_subject(subject).with_reason(reason);
        audit::append(conn, event, now).await?;
        return Ok(FannedOut { status: Node::Skipped, instances: Vec::new() });
    }
    let instances: Vec<ReleaseActivity> = items
        .iter()
        .map(|item| ReleaseActivity {
            key: instance_key(&row.key, &item.text),
            name: format!("{} [{}]", row.name, item.text),
            depends_on: Vec::new(),
            status: Node::NotStarted,
            attempts: 0,
            outputs: json!({}),
            started_at: None,
            finished_at: None,
            wake_at: None,
            status_reason: None,
            eligible: Vec::new(),
            needed: 0,
            last_actor: None,
            note: None,
            run_first_attempt: 1,
            last_reminded_at: None,
            escalation_level: 0,
            deadline: None,
            hold: None,
            fan_of: Some(row.key.clone()),
            item: Some(item.text.clone()),
            item_value: item.value.clone(),
            fanned: false,
            waiting_for: None,
            ..row.clone()
        })
        .collect();
    rows::start_fan_out(conn, r.id, (&row.phase_key, &row.key), &instances, now).await?;
    let texts: Vec<&str> = items.iter().map(|i| i.text.as_str()).collect();
    let details = json!({"items": texts, "max_parallel": adef.parallelism()});
    audit::append(conn, NewEvent::release(r, "system:engine", "activity.fan_out").with_subject(subject).with_details(details), now).await?;
    Ok(FannedOut { status: Node::Running, instances })
}
