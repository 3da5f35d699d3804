//! Account settings (manage_settings).

use chrono::{DateTime, Utc};
use diesel_async::{AsyncConnection, AsyncPgConnection};
use serde_json::json;

use super::{Actor, OpError};
use crate::db::audit::{self, NewEvent};
use crate::db::models::accounts::{set_account_time_zone, AccountSettings, SettingsChanges};

use crate::domain::rule::RuleCode;
use crate::domain::validate::{self, FieldErrors};

#[derive(Debug, Clone, Default, serde::Deserialize, utoipa::ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct SettingsInput {
    pub release_level: Option<String>,
    pub webhook_allow_list: Option<Vec<String>>,
    pub reminder_interval_minutes: Option<i64>,
    pub time_zone: Option<String>,
    pub chat_webhook_url: Option<String>,
}

pub async fn update_settings(
    conn: &mut AsyncPgConnection,
    actor: &Actor,
    input: &SettingsInput,
    now: DateTime<Utc>,
) -> Result<AccountSettings, OpError> {
    let mut errors = FieldErrors::new();
    let mut changes = SettingsChanges { updated_at: Some(now), ..Default::default() };
    if let Some(level) = &input.release_level {
        match level.trim() {
            l @ ("account" | "organization") => changes.release_level = Some(l.to_string()),
            other => errors.add("release_level", format!("{other:?} is not a release level; use account or organization")),
        }
    }
    if let Some(hosts) = &input.webhook_allow_list {
        let mut parsed = Vec::new();
        for h in hosts.iter().filter(|h| !h.trim().is_empty()) {
            if let Some(h) = errors.check("webhook_allow_list", validate::allow_list_host(h)) {
                if !parsed.contains(&h) {
                    parsed.push(h);
                }
            }
        }
        changes.webhook_allow_list = Some(parsed);
    }
    if let Some(minutes) = input.reminder_interval_minutes {
        if (5..=10_080).contains(&minutes) {
            changes.reminder_interval_minutes = Some(minutes as i32);
        } else {
            errors.add("reminder_interval_minutes", "must be between 5 and 10080 minutes (one week)");
        }
    }
    let zone = match &input.time_zone {
        Some(z) => errors.check("time_zone", validate::time_zone(z)),
        None => None,
    };
    if let Some(url) = &input.chat_webhook_url {
        let url = url.trim();
        if url.is_empty() {
            changes.chat_webhook_url = Some(None);
        } else if (url.starts_with("https://") || url.starts_with("http://")) && url.len() <= 2000 && !url.chars().any(char::is_whitespace)
        {
            changes.chat_webhook_url = Some(Some(url.to_string()));
        } else {
            errors.add("chat_webhook_url", "must be an http(s) URL");
        }
    }
    errors.into_result()?;
    let account_id = actor.account_id;
    conn.transaction(async |conn| {
        if let Some(level) = &changes.release_level {
            let busy = crate::ops::releases::other_level_busy(conn, account_id, level).await?;
            if busy > 0 {
                return Err(OpError::Rule {
                    code: RuleCode::ReleaseLevel,
                    message: format!(
                        "The release level cannot switch to {level}: {busy} release(s) of the other level are drafts or in flight."
                    ),
                    field: Some("release_level"),
                });
            }
        }
        if let Some(zone) = &zone {
            set_account_time_zone(conn, account_id, zone).await?;
        }
        let after = AccountSettings::update(conn, account_id, &changes).await?;
        audit::append(
            conn,
            NewEvent::account(account_id, &actor.label, "settings.update", "account:settings").with_details(json!({
                "release_level": after.release_level,
                "webhook_allow_list": after.webhook_allow_list,
                "reminder_interval_minutes": after.reminder_interval_minutes,
                "time_zone": zone,
                "chat_webhook_url_set": after.chat_webhook_url.is_some(),
            })),
            now,
        )
        .await?;
        Ok(after)
    })
    .await
}
