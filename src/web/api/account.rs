//! `/api/v1/me` and `/api/v1/settings`.

use actix_web::{web, HttpResponse};
use serde::Serialize;

use super::ok;
use crate::db::models::accounts::{Account, AccountSettings};
use crate::domain::policy::{Action, Scope};
use crate::ops::settings::{self as ops, SettingsInput};
use crate::web::error::ApiError;
use crate::web::extractors::{ApiJson, ApiUser};
use crate::web::AppState;

#[derive(Serialize, utoipa::ToSchema)]
pub struct MeJson<'a> {
    pub id: i64,
    pub email: &'a str,
    pub name: &'a str,
    pub account: &'a str,
    pub time_zone: &'a str,
    pub roles: Vec<RoleJson<'a>>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct RoleJson<'a> {
    pub role: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub org: Option<&'a str>,
}

pub async fn me(user: ApiUser) -> Result<HttpResponse, ApiError> {
    let roles = user.roles.iter().map(|r| RoleJson { role: &r.role, org: r.org_slug.as_deref() }).collect();
    Ok(ok(&MeJson {
        id: user.user_id,
        email: &user.email,
        name: &user.name,
        account: &user.account_slug,
        time_zone: &user.time_zone,
        roles,
    }))
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct SettingsJson<'a> {
    pub release_level: &'a str,
    pub webhook_allow_list: &'a [String],
    pub reminder_interval_minutes: i32,
    pub time_zone: &'a str,
    pub chat_webhook_url_set: bool,
    /// The URL is a credential: only who may manage the settings sees it (DESIGN §10).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chat_webhook_url: Option<Option<&'a str>>,
}

fn settings_json<'a>(settings: &'a AccountSettings, account: &'a Account, user: &ApiUser) -> SettingsJson<'a> {
    SettingsJson {
        release_level: &settings.release_level,
        webhook_allow_list: &settings.webhook_allow_list,
        reminder_interval_minutes: settings.reminder_interval_minutes,
        time_zone: &account.time_zone,
        chat_webhook_url_set: settings.chat_webhook_url.is_some(),
        chat_webhook_url: user.may(Action::ManageSettings, Scope::Account).then_some(settings.chat_webhook_url.as_deref()),
    }
}

/// Every user of the account may read the settings; only `manage_settings` may change them.
pub async fn get_settings(state: web::Data<AppState>, user: ApiUser) -> Result<HttpResponse, ApiError> {
    let mut conn = state.db().await?;
    let settings = AccountSettings::get(&mut conn, user.account_id).await?;
    let account = Account::find(&mut conn, user.account_id).await?;
    Ok(ok(&settings_json(&settings, &account, &user)))
}

pub async fn patch_settings(state: web::Data<AppState>, user: ApiUser, body: ApiJson<SettingsInput>) -> Result<HttpResponse, ApiError> {
    user.require(Action::ManageSettings, Scope::Account)?;
    let mut conn = state.db().await?;
    let settings = ops::update_settings(&mut conn, &user.actor(), &body.0, state.now()).await?;
    let account = Account::find(&mut conn, user.account_id).await?;
    Ok(ok(&settings_json(&settings, &account, &user)))
}
