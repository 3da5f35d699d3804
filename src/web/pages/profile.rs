//! `/profile`: name, time zone, password.

use actix_session::Session;
use actix_web::{web, HttpResponse};
use askama::Template;

use super::{redirect, render, render_form_errors, Chrome};
use crate::db::models::users::{self as rows, User};
use crate::domain::validate::FieldErrors;
use crate::ops::users::{self, PasswordChangeInput, ProfileInput};
use crate::web::error::AppError;
use crate::web::extractors::{CurrentUser, Htmx};
use crate::web::flash;
use crate::web::middleware::SESSION_KEY;
use crate::web::AppState;

#[derive(Template)]
#[template(path = "pages/profile.html")]
pub struct ProfilePage {
    pub chrome: Chrome,
    pub email: String,
    pub profile: ProfileInput,
    pub profile_errors: FieldErrors,
    pub password_errors: FieldErrors,
    pub zones: Vec<&'static str>,
    pub delegations: Vec<(i64, String, String, String)>,
    pub delegation_error: Option<String>,
    pub mutes: Vec<(&'static str, bool)>,
}

/// The notification kinds a user may mute (e-mail only; the in-app list keeps everything).
pub const MUTABLE_KINDS: &[&str] = &[
    "release.activated",
    "phase.started",
    "activity.waiting",
    "approval.reminder",
    "activity.escalated",
    "release.onhold",
    "release.success",
    "release.partialsuccess",
    "release.failed",
    "release.rolledback",
    "release.aborted",
    "release.activation_refused",
];

pub fn zone_names() -> Vec<&'static str> {
    chrono_tz::TZ_VARIANTS.iter().map(|z| z.name()).collect()
}

async fn page(state: &AppState, user: &CurrentUser, session: &Session) -> Result<ProfilePage, AppError> {
    let mut conn = state.db().await?;
    let me = User::find(&mut conn, user.account_id, user.user_id).await?;
    use diesel::prelude::*;
    use diesel_async::RunQueryDsl;
    let tz: chrono_tz::Tz = user.time_zone.parse().unwrap_or(chrono_tz::UTC);
    let fmt = |t: chrono::DateTime<chrono::Utc>| t.with_timezone(&tz).format("%Y-%m-%d %H:%M %Z").to_string();
    let delegations: Vec<(i64, String, chrono::DateTime<chrono::Utc>, chrono::DateTime<chrono::Utc>)> =
        crate::db::schema::delegations::table
            .inner_join(crate::db::schema::users::table.on(crate::db::schema::users::id.eq(crate::db::schema::delegations::delegate_id)))
            .filter(crate::db::schema::delegations::user_id.eq(user.user_id))
            .order(crate::db::schema::delegations::starts_at)
            .select((
                crate::db::schema::delegations::id,
                crate::db::schema::users::email,
                crate::db::schema::delegations::starts_at,
                crate::db::schema::delegations::ends_at,
            ))
            .load(&mut conn)
            .await?;
    let muted: Vec<String> = crate::db::schema::user_mutes::table
        .filter(crate::db::schema::user_mutes::user_id.eq(user.user_id))
        .select(crate::db::schema::user_mutes::kind)
        .load(&mut conn)
        .await?;
    Ok(ProfilePage {
        delegations: delegations.into_iter().map(|(id, email, s, e)| (id, email, fmt(s), fmt(e))).collect(),
        delegation_error: None,
        mutes: MUTABLE_KINDS.iter().map(|k| (*k, muted.iter().any(|m| m == k))).collect(),
        chrome: Chrome::new(user, session, "Profile", "/profile"),
        email: me.email,
        profile: ProfileInput { name: me.name, time_zone: me.time_zone.unwrap_or_default() },
        profile_errors: FieldErrors::new(),
        password_errors: FieldErrors::new(),
        zones: zone_names(),
    })
}

pub async fn show(state: web::Data<AppState>, user: CurrentUser, session: Session) -> Result<HttpResponse, AppError> {
    render(&page(&state, &user, &session).await?)
}

pub async fn update(
    state: web::Data<AppState>,
    user: CurrentUser,
    session: Session,
    htmx: Htmx,
    form: web::Form<ProfileInput>,
) -> Result<HttpResponse, AppError> {
    let mut conn = state.db().await?;
    match users::update_profile(&mut conn, &user.actor(), &form, state.now()).await {
        Ok(()) => {
            flash::success(&session, "Profile saved.");
            Ok(redirect(htmx, "/profile"))
        }
        Err(e) => {
            let Some(errors) = e.field_errors() else { return Err(e.into()) };
            let mut p = page(&state, &user, &session).await?;
            p.profile = form.into_inner();
            p.profile_errors = errors;
            render_form_errors(&p, htmx)
        }
    }
}

pub async fn change_password(
    state: web::Data<AppState>,
    user: CurrentUser,
    session: Session,
    htmx: Htmx,
    form: web::Form<PasswordChangeInput>,
) -> Result<HttpResponse, AppError> {
    let mut conn = state.db().await?;
    let now = state.now();
    match users::change_password(&mut conn, &user.actor(), &form, now).await {
        Ok(me) => {
            // Every session ended with the change; this browser continues in a fresh one.
            let (token, _) = rows::create_session(&mut conn, &me, now).await?;
            session.renew();
            session.insert(SESSION_KEY, token).map_err(|e| AppError::Unexpected(anyhow::anyhow!("session: {e}")))?;
            flash::success(&session, "Password changed. Your other sessions have been logged out.");
            Ok(redirect(htmx, "/profile"))
        }
        Err(e) => {
            let Some(errors) = e.field_errors() else { return Err(e.into()) };
            let mut p = page(&state, &user, &session).await?;
            p.password_errors = errors;
            render_form_errors(&p, htmx)
        }
    }
}

#[derive(Debug, Default, serde::Deserialize)]
#[serde(default)]
pub struct DelegationForm {
    pub delegate: String,
    pub starts_at: String,
    pub ends_at: String,
}

/// Names a delegate for a period; their vote counts as this user's one vote.
pub async fn add_delegation(
    state: web::Data<AppState>,
    user: CurrentUser,
    session: Session,
    htmx: Htmx,
    form: web::Form<DelegationForm>,
) -> Result<HttpResponse, AppError> {
    use diesel::prelude::*;
    use diesel_async::RunQueryDsl;
    let tz: chrono_tz::Tz = user.time_zone.parse().unwrap_or(chrono_tz::UTC);
    let mut conn = state.db().await?;
    let mut problem = None;
    let delegate =
        User::by_email(&mut conn, form.delegate.trim()).await?.filter(|u| u.account_id == user.account_id && u.disabled_at.is_none());
    let starts = crate::ops::releases::parse_time(&form.starts_at, tz);
    let ends = crate::ops::releases::parse_time(&form.ends_at, tz);
    match (&delegate, &starts, &ends) {
        (None, _, _) => problem = Some(format!("there is no active user {:?} in your account", form.delegate.trim())),
        (Some(d), _, _) if d.id == user.user_id => problem = Some("you cannot delegate to yourself".to_string()),
        (_, Err(m), _) | (_, _, Err(m)) => problem = Some(m.clone()),
        (_, Ok(s), Ok(e)) if e <= s => problem = Some("the end must be after the start".to_string()),
        _ => {}
    }
    if let Some(message) = problem {
        let mut p = page(&state, &user, &session).await?;
        p.delegation_error = Some(message);
        return render_form_errors(&p, htmx);
    }
    let (Some(delegate), Ok(starts), Ok(ends)) = (delegate, starts, ends) else { return Err(AppError::NotFound) };
    let now = state.now();
    diesel::insert_into(crate::db::schema::delegations::table)
        .values((
            crate::db::schema::delegations::account_id.eq(user.account_id),
            crate::db::schema::delegations::user_id.eq(user.user_id),
            crate::db::schema::delegations::delegate_id.eq(delegate.id),
            crate::db::schema::delegations::starts_at.eq(starts),
            crate::db::schema::delegations::ends_at.eq(ends),
            crate::db::schema::delegations::created_at.eq(now),
        ))
        .execute(&mut conn)
        .await?;
    crate::db::audit::append(
        &mut conn,
        crate::db::audit::NewEvent::account(
            user.account_id,
            format!("user:{}", user.email),
            "delegation.create",
            format!("user:{}", delegate.email),
        )
        .with_details(serde_json::json!({"starts_at": starts, "ends_at": ends})),
        now,
    )
    .await?;
    flash::success(&session, format!("{} votes for you from {} to {}.", delegate.email, form.starts_at, form.ends_at));
    Ok(redirect(htmx, "/profile"))
}

pub async fn remove_delegation(
    state: web::Data<AppState>,
    user: CurrentUser,
    session: Session,
    htmx: Htmx,
    id: web::Path<i64>,
) -> Result<HttpResponse, AppError> {
    use diesel::prelude::*;
    use diesel_async::RunQueryDsl;
    let mut conn = state.db().await?;
    let n = diesel::delete(
        crate::db::schema::delegations::table
            .filter(crate::db::schema::delegations::id.eq(*id))
            .filter(crate::db::schema::delegations::user_id.eq(user.user_id)),
    )
    .execute(&mut conn)
    .await?;
    if n == 0 {
        return Err(AppError::NotFound);
    }
    flash::success(&session, "Delegation removed.");
    Ok(redirect(htmx, "/profile"))
}

pub async fn set_mutes(
    state: web::Data<AppState>,
    user: CurrentUser,
    session: Session,
    htmx: Htmx,
    form: web::Form<Vec<(String, String)>>,
) -> Result<HttpResponse, AppError> {
    use diesel::prelude::*;
    use diesel_async::RunQueryDsl;
    let chosen: Vec<String> =
        form.iter().filter(|(k, _)| k == "mute").map(|(_, v)| v.clone()).filter(|v| MUTABLE_KINDS.contains(&v.as_str())).collect();
    let mut conn = state.db().await?;
    diesel::delete(crate::db::schema::user_mutes::table.filter(crate::db::schema::user_mutes::user_id.eq(user.user_id)))
        .execute(&mut conn)
        .await?;
    let rows: Vec<_> = chosen
        .iter()
        .map(|k| (crate::db::schema::user_mutes::user_id.eq(user.user_id), crate::db::schema::user_mutes::kind.eq(k)))
        .collect();
    if !rows.is_empty() {
        diesel::insert_into(crate::db::schema::user_mutes::table).values(rows).execute(&mut conn).await?;
    }
    flash::success(&session, "E-mail preferences saved.");
    Ok(redirect(htmx, "/profile"))
}
