//! `/admin/settings`: release level, webhook allow-list, reminders, time zone, chat webhook.

use actix_session::Session;
use actix_web::{web, HttpResponse};
use askama::Template;
use serde::Deserialize;

use super::profile::zone_names;
use super::{redirect, render, render_form_errors, Chrome};
use crate::db::models::accounts::{Account, AccountSettings};
use crate::domain::policy::{Action, Scope};
use crate::domain::validate::FieldErrors;
use crate::ops::settings::{self as ops, SettingsInput};
use crate::web::error::AppError;
use crate::web::extractors::{CurrentUser, Htmx};
use crate::web::flash;
use crate::web::AppState;

/// The settings form as typed: every field a string, so nothing typed is lost on an error.
#[derive(Debug, Default, Deserialize, Clone)]
#[serde(default)]
pub struct SettingsForm {
    pub release_level: String,
    pub webhook_allow_list: String,
    pub reminder_interval_minutes: String,
    pub time_zone: String,
    pub chat_webhook_url: String,
}

#[derive(Template)]
#[template(path = "pages/admin/settings.html")]
pub struct SettingsPage {
    pub chrome: Chrome,
    pub form: SettingsForm,
    pub errors: FieldErrors,
    pub zones: Vec<&'static str>,
}

pub async fn show(state: web::Data<AppState>, user: CurrentUser, session: Session) -> Result<HttpResponse, AppError> {
    user.require(Action::ManageSettings, Scope::Account)?;
    let mut conn = state.db().await?;
    let settings = AccountSettings::get(&mut conn, user.account_id).await?;
    let account = Account::find(&mut conn, user.account_id).await?;
    let form = SettingsForm {
        release_level: settings.release_level,
        webhook_allow_list: settings.webhook_allow_list.join("\n"),
        reminder_interval_minutes: settings.reminder_interval_minutes.to_string(),
        time_zone: account.time_zone,
        chat_webhook_url: settings.chat_webhook_url.unwrap_or_default(),
    };
    render(&SettingsPage {
        chrome: Chrome::new(&user, &session, "Settings", "/admin/settings"),
        form,
        errors: FieldErrors::new(),
        zones: zone_names(),
    })
}

pub async fn update(
    state: web::Data<AppState>,
    user: CurrentUser,
    session: Session,
    htmx: Htmx,
    form: web::Form<SettingsForm>,
) -> Result<HttpResponse, AppError> {
    user.require(Action::ManageSettings, Scope::Account)?;
    let form = form.into_inner();
    let mut errors = FieldErrors::new();
    let minutes = match form.reminder_interval_minutes.trim().parse::<i64>() {
        Ok(m) => Some(m),
        Err(_) => {
            errors.add("reminder_interval_minutes", "must be a whole number of minutes");
            None
        }
    };
    let input = SettingsInput {
        release_level: Some(form.release_level.clone()),
        webhook_allow_list: Some(form.webhook_allow_list.lines().map(str::to_string).collect()),
        reminder_interval_minutes: minutes,
        time_zone: Some(form.time_zone.clone()),
        chat_webhook_url: Some(form.chat_webhook_url.clone()),
    };
    let result = if errors.is_empty() {
        let mut conn = state.db().await?;
        ops::update_settings(&mut conn, &user.actor(), &input, state.now()).await.map(|_| ())
    } else {
        Err(crate::ops::OpError::Invalid(errors))
    };
    match result {
        Ok(()) => {
            flash::success(&session, "Settings saved.");
            Ok(redirect(htmx, "/admin/settings"))
        }
        Err(e) => {
            let Some(errors) = e.field_errors() else { return Err(e.into()) };
            let page =
                SettingsPage { chrome: Chrome::new(&user, &session, "Settings", "/admin/settings"), form, errors, zones: zone_names() };
            render_form_errors(&page, htmx)
        }
    }
}
