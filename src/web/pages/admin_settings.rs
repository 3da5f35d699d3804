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

/// The single sign-on section as typed.
#[derive(Debug, Default, Deserialize, Clone)]
#[serde(default)]
pub struct SsoForm {
    pub sso_create_users: Option<String>,
    pub sso_roles_only_from_provider: Option<String>,
    pub sso_required: Option<String>,
    pub sso_break_glass: String,
}

#[derive(Debug, Default, Deserialize, Clone)]
#[serde(default)]
pub struct MappingForm {
    pub provider_group: String,
    pub role: String,
    pub org: String,
}

#[derive(Template)]
#[template(path = "pages/admin/settings.html")]
pub struct SettingsPage {
    pub chrome: Chrome,
    pub form: SettingsForm,
    pub errors: FieldErrors,
    pub zones: Vec<&'static str>,
    /// Whether the operator configured a provider (`RAILYARD_OIDC_*`).
    pub sso_configured: bool,
    pub sso: SsoForm,
    pub sso_errors: FieldErrors,
    pub mapping: Vec<crate::db::models::sso::MappingRow>,
    pub mapping_form: MappingForm,
    pub roles: Vec<&'static str>,
}

/// The page with both forms, as stored unless `form`/`sso` say otherwise.
async fn settings_page(
    state: &AppState,
    user: &CurrentUser,
    session: &Session,
    (form, errors): (Option<SettingsForm>, FieldErrors),
    (sso, sso_errors): (Option<SsoForm>, FieldErrors),
    mapping_form: MappingForm,
) -> Result<SettingsPage, AppError> {
    let mut conn = state.db().await?;
    let settings = AccountSettings::get(&mut conn, user.account_id).await?;
    let account = Account::find(&mut conn, user.account_id).await?;
    let on = |b: bool| b.then(|| "on".to_string());
    Ok(SettingsPage {
        chrome: Chrome::new(user, session, "Settings", "/admin/settings"),
        form: form.unwrap_or_else(|| SettingsForm {
            release_level: settings.release_level.clone(),
            webhook_allow_list: settings.webhook_allow_list.join("\n"),
            reminder_interval_minutes: settings.reminder_interval_minutes.to_string(),
            time_zone: account.time_zone.clone(),
            chat_webhook_url: settings.chat_webhook_url.clone().unwrap_or_default(),
        }),
        errors,
        zones: zone_names(),
        sso_configured: state.sso_serves(&user.account_slug),
        sso: sso.unwrap_or_else(|| SsoForm {
            sso_create_users: on(settings.sso_create_users),
            sso_roles_only_from_provider: on(settings.sso_roles_only_from_provider),
            sso_required: on(settings.sso_required),
            sso_break_glass: settings.sso_break_glass.join("\n"),
        }),
        sso_errors,
        mapping: crate::db::models::sso::mapping(&mut conn, user.account_id).await?,
        mapping_form,
        roles: crate::domain::policy::Role::ALL.iter().map(|r| r.as_str()).collect(),
    })
}

pub async fn update_sso(
    state: web::Data<AppState>,
    user: CurrentUser,
    session: Session,
    htmx: Htmx,
    form: web::Form<SsoForm>,
) -> Result<HttpResponse, AppError> {
    user.require(Action::ManageSettings, Scope::Account)?;
    let form = form.into_inner();
    let input = crate::ops::sso::SsoSettingsInput {
        create_users: form.sso_create_users.is_some(),
        roles_only_from_provider: form.sso_roles_only_from_provider.is_some(),
        required: form.sso_required.is_some(),
        break_glass: form.sso_break_glass.split([',', '\n', ' ']).map(str::to_string).collect(),
        served_here: state.sso_serves(&user.account_slug),
    };
    let mut conn = state.db().await?;
    match crate::ops::sso::update_settings(&mut conn, &user.actor(), &input, state.now()).await {
        Ok(_) => {
            flash::success(&session, "Single sign-on settings saved.");
            Ok(redirect(htmx, "/admin/settings"))
        }
        Err(e) => {
            let Some(errors) = e.field_errors() else { return Err(e.into()) };
            let page =
                settings_page(&state, &user, &session, (None, FieldErrors::new()), (Some(form), errors), MappingForm::default()).await?;
            render_form_errors(&page, Htmx(false))
        }
    }
}

pub async fn add_mapping(
    state: web::Data<AppState>,
    user: CurrentUser,
    session: Session,
    htmx: Htmx,
    form: web::Form<MappingForm>,
) -> Result<HttpResponse, AppError> {
    user.require(Action::ManageSettings, Scope::Account)?;
    let form = form.into_inner();
    let mut conn = state.db().await?;
    match crate::ops::sso::add_mapping(&mut conn, &user.actor(), (&form.provider_group, &form.role, &form.org), state.now()).await {
        Ok(()) => {
            flash::success(&session, format!("Group {:?} now gives {}.", form.provider_group.trim(), form.role));
            Ok(redirect(htmx, "/admin/settings"))
        }
        Err(e) => {
            let Some(errors) = e.field_errors() else { return Err(e.into()) };
            let page = settings_page(&state, &user, &session, (None, FieldErrors::new()), (None, errors), form).await?;
            render_form_errors(&page, Htmx(false))
        }
    }
}

pub async fn remove_mapping(
    state: web::Data<AppState>,
    user: CurrentUser,
    session: Session,
    htmx: Htmx,
    id: web::Path<i64>,
) -> Result<HttpResponse, AppError> {
    user.require(Action::ManageSettings, Scope::Account)?;
    let mut conn = state.db().await?;
    crate::ops::sso::remove_mapping(&mut conn, &user.actor(), *id, state.now()).await?;
    flash::success(&session, "Mapping removed; it changes roles at each person's next log-in.");
    Ok(redirect(htmx, "/admin/settings"))
}

pub async fn show(state: web::Data<AppState>, user: CurrentUser, session: Session) -> Result<HttpResponse, AppError> {
    user.require(Action::ManageSettings, Scope::Account)?;
    render(&settings_page(&state, &user, &session, (None, FieldErrors::new()), (None, FieldErrors::new()), MappingForm::default()).await?)
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
                settings_page(&state, &user, &session, (Some(form), errors), (None, FieldErrors::new()), MappingForm::default()).await?;
            render_form_errors(&page, htmx)
        }
    }
}
