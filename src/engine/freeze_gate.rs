//! An activity about to deploy into an environment that a freeze covers now is held at that
//! activity, with the reason, until the window ends (DESIGN §2): this catches environments
//! resolved only at run time, which the release-level check cannot know.

use chrono::{DateTime, Utc};
use diesel_async::AsyncPgConnection;
use serde_json::{json, Value};

use crate::db::audit::{self, NewEvent};
use crate::db::models::releases::{Release, ReleaseActivity};
use crate::domain::process::definition::ActivityDef;
use crate::domain::process::template::{render, to_text};
use crate::domain::process::Definition;
use crate::domain::release::{Hold, ReleaseType};
use crate::ops::context::{self, Secrets};
use crate::ops::freezes::{active_on, has_override};
use crate::ops::OpError;

/// The environments an activity deploys to: its own `deploys.environment`, resolved now.
fn environments_of(
    r: &Release,
    activities: &[ReleaseActivity],
    def: &Definition,
    row: &ReleaseActivity,
    adef: &ActivityDef,
) -> Vec<String> {
    let Some(template) = adef.deploys.as_ref().and_then(|d| d.environment.clone()) else { return Vec::new() };
    let lookup = context::lookup_in(r, activities, def, (&row.phase_key, &row.key), Secrets::Masked, None);
    match render(&Value::String(template), &lookup) {
        Ok(Value::Array(items)) => items.iter().map(to_text).filter(|e| !e.is_empty()).collect(),
        Ok(v) => Some(to_text(&v)).filter(|e| !e.is_empty()).into_iter().collect(),
        Err(_) => Vec::new(),
    }
}

/// Holds the activity if it would deploy into a frozen environment now; returns when it is
/// looked at again (the end of the window).
pub async fn hold_if_frozen(
    conn: &mut AsyncPgConnection,
    r: &Release,
    (def, activities): (&Definition, &[ReleaseActivity]),
    row: &ReleaseActivity,
    adef: &ActivityDef,
    now: DateTime<Utc>,
) -> Result<Option<DateTime<Utc>>, OpError> {
    let envs = environments_of(r, activities, def, row, adef);
    if envs.is_empty() {
        return Ok(None);
    }
    let Some((reason, until)) = active_on(conn, r.account_id, r.org_id, &envs, now).await? else { return Ok(None) };
    if r.release_type == ReleaseType::Hotfix && has_override(conn, r.id).await? {
        return Ok(None);
    }
    let message = format!(
        "held by a freeze ({reason}) until {}: it deploys to {}",
        until.with_timezone(&r.zone()).format("%Y-%m-%d %H:%M %Z"),
        envs.join(", ")
    );
    crate::db::engine::hold_activity(conn, r.id, (&row.phase_key, &row.key), Hold::Freeze, &message, Some(until)).await?;
    audit::append(
        conn,
        NewEvent::release(r, "system:engine", "activity.frozen")
            .with_subject(format!("activity:{}.{}", row.phase_key, row.key))
            .with_details(json!({"reason": reason, "until": until, "environments": envs})),
        now,
    )
    .await?;
    Ok(Some(until))
}
