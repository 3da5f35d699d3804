//! `/api/v1/me` and `/api/v1/settings`.

use actix_web::{web, HttpResponse};
use serde_json::json;

use super::ok;
use crate::db::models::accounts::{Account, AccountSettings};
use crate::domain::policy::{Action, Scope};
use crate::ops::settings::{self as ops, SettingsInput};
use crate::web::error::ApiError;
use crate::web::extractors::{ApiJson, ApiUser};
use crate::web::AppState;

pub async fn me(user: ApiUser) -> Result<HttpResponse, ApiError> {
    let roles: Vec<_> = user
        .roles
        .iter()
        .map(|r| match &r.org_slug {
            Some(org) => json!({"role": r.role, "org": org}),
            None => json!({"role": r.role}),
        })
        .collect();
    Ok(ok(&json!({
        "id": user.user_id,
        "email": user.email,
        "name": user.name,
        "account": user.account_slug,
        "time_zone": user.time_zone,
        "roles": roles,
    })))
}

fn settings_json(settings: &AccountSettings, account: &Account) -> serde_json::Value {
    json!({
        "release_level": settings.release_level,
        "webhook_allow_list": settings.webhook_allow_list,
        "reminder_interval_minutes": settings.reminder_interval_minutes,
        "time_zone": account.time_zone,
        "chat_webhook_url": settings.chat_webhook_url,
    })
}

/// Every user of the account may read the settings; only `manage_settings` may change them.
pub async fn get_settings(state: web::Data<AppState>, user: ApiUser) -> Result<HttpResponse, ApiError> {
    let mut conn = state.db().await?;
    let settings = AccountSettings::get(&mut conn, user.account_id).await?;
    let account = Account::find(&mut conn, user.account_id).await?;
    Ok(ok(&settings_json(&settings, &account)))
}

pub async fn patch_settings(state: web::Data<AppState>, user: ApiUser, body: ApiJson<SettingsInput>) -> Result<HttpResponse, ApiError> {
    user.require(Action::ManageSettings, Scope::Account)?;
    let mut conn = state.db().await?;
    let settings = ops::update_settings(&mut conn, &user.actor(), &body.0, state.now()).await?;
    let account = Account::find(&mut conn, user.account_id).await?;
    Ok(ok(&settings_json(&settings, &account)))
}
