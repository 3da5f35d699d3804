//! The buttons of the release page: lifecycle actions, deletion, activity actions, roll back.

use actix_session::Session;
use actix_web::{web, HttpResponse};
use serde::Deserialize;

use crate::db::models::releases::Release;
use crate::domain::policy::Action;
use crate::ops::activities::ActivityAt;
use crate::ops::activities::{Person, Verb};
use crate::ops::releases::{self as ops};
use crate::web::error::AppError;
use crate::web::extractors::{CurrentUser, Htmx};
use crate::web::flash;
use crate::web::pages::redirect;
use crate::web::AppState;

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ReasonForm {
    pub reason: String,
}

/// The release-level buttons, each with the right it needs.
#[derive(Debug, Clone, Copy)]
enum Lifecycle {
    Activate,
    RunNow,
    Abort,
    Restart,
    Rebase,
    OverrideFreeze,
    RetrySetAside,
}

impl Lifecycle {
    fn action(self) -> Action {
        match self {
            Lifecycle::Activate => Action::Activate,
            Lifecycle::RunNow => Action::RunNow,
            Lifecycle::Abort => Action::Abort,
            Lifecycle::Restart => Action::Restart,
            Lifecycle::Rebase => Action::EditDraft,
            Lifecycle::OverrideFreeze => Action::OverrideFreeze,
            Lifecycle::RetrySetAside => Action::DecideFailure,
        }
    }
}

/// Runs a lifecycle action; a refusal comes back as a flash on the release page.
async fn lifecycle(
    (state, user, session, htmx): (&AppState, &CurrentUser, &Session, Htmx),
    id: i64,
    what: Lifecycle,
    reason: &str,
) -> Result<HttpResponse, AppError> {
    let mut conn = state.db().await?;
    let release = Release::find(&mut conn, user.account_id, id).await?;
    user.require(what.action(), release.scope())?;
    let actor = user.actor();
    let now = state.now();
    let result = match what {
        Lifecycle::Activate => ops::activate(&mut conn, &actor, id, now).await.map(|r| (r.id, "Release activated.".to_string())),
        Lifecycle::RunNow => ops::run_now(&mut conn, &actor, id, reason, now).await.map(|r| (r.id, "Release started now.".to_string())),
        Lifecycle::Abort => ops::abort(&mut conn, &actor, id, reason, now).await.map(|r| (r.id, "Release aborted.".to_string())),
        Lifecycle::Restart => {
            ops::restart(&mut conn, &actor, id, now).await.map(|r| (r.id, format!("A new draft #{} was made from release #{id}.", r.id)))
        }
        Lifecycle::Rebase => ops::rebase(&mut conn, &actor, &user.time_zone, &state.secrets, id, now)
            .await
            .map(|s| (s.release.id, format!("The draft now uses process version {}.", s.release.process_version))),
        Lifecycle::OverrideFreeze => crate::ops::freezes::override_for(&mut conn, &actor, id, reason, now)
            .await
            .map(|r| (r.id, "The hotfix passes the freeze from now on; the override is on its audit trail.".to_string())),
        Lifecycle::RetrySetAside => ops::retry_set_aside(&mut conn, &actor, id, reason, now)
            .await
            .map(|r| (r.id, "The release is back in the engine's hands.".to_string())),
    };
    match result {
        Ok((target, message)) => {
            flash::success(session, message);
            Ok(redirect(htmx, &format!("/releases/{target}")))
        }
        Err(e) => {
            flash::push(session, "error", refusal_message(e)?);
            Ok(redirect(htmx, &format!("/releases/{id}")))
        }
    }
}

pub async fn activate(
    state: web::Data<AppState>,
    user: CurrentUser,
    session: Session,
    htmx: Htmx,
    id: web::Path<i64>,
) -> Result<HttpResponse, AppError> {
    lifecycle((&state, &user, &session, htmx), *id, Lifecycle::Activate, "").await
}

pub async fn run_now(
    state: web::Data<AppState>,
    user: CurrentUser,
    session: Session,
    htmx: Htmx,
    id: web::Path<i64>,
    form: web::Form<ReasonForm>,
) -> Result<HttpResponse, AppError> {
    lifecycle((&state, &user, &session, htmx), *id, Lifecycle::RunNow, &form.reason).await
}

pub async fn override_freeze(
    state: web::Data<AppState>,
    user: CurrentUser,
    session: Session,
    htmx: Htmx,
    id: web::Path<i64>,
    form: web::Form<ReasonForm>,
) -> Result<HttpResponse, AppError> {
    lifecycle((&state, &user, &session, htmx), *id, Lifecycle::OverrideFreeze, &form.reason).await
}

pub async fn abort(
    state: web::Data<AppState>,
    user: CurrentUser,
    session: Session,
    htmx: Htmx,
    id: web::Path<i64>,
    form: web::Form<ReasonForm>,
) -> Result<HttpResponse, AppError> {
    lifecycle((&state, &user, &session, htmx), *id, Lifecycle::Abort, &form.reason).await
}

/// A release the engine set aside after repeated errors runs again.
pub async fn retry(
    state: web::Data<AppState>,
    user: CurrentUser,
    session: Session,
    htmx: Htmx,
    id: web::Path<i64>,
    form: web::Form<ReasonForm>,
) -> Result<HttpResponse, AppError> {
    lifecycle((&state, &user, &session, htmx), *id, Lifecycle::RetrySetAside, &form.reason).await
}

pub async fn restart(
    state: web::Data<AppState>,
    user: CurrentUser,
    session: Session,
    htmx: Htmx,
    id: web::Path<i64>,
) -> Result<HttpResponse, AppError> {
    lifecycle((&state, &user, &session, htmx), *id, Lifecycle::Restart, "").await
}

pub async fn rebase(
    state: web::Data<AppState>,
    user: CurrentUser,
    session: Session,
    htmx: Htmx,
    id: web::Path<i64>,
) -> Result<HttpResponse, AppError> {
    lifecycle((&state, &user, &session, htmx), *id, Lifecycle::Rebase, "").await
}

pub async fn delete(
    state: web::Data<AppState>,
    user: CurrentUser,
    session: Session,
    htmx: Htmx,
    id: web::Path<i64>,
) -> Result<HttpResponse, AppError> {
    let mut conn = state.db().await?;
    let release = Release::find(&mut conn, user.account_id, *id).await?;
    user.require(Action::DeleteRelease, release.scope())?;
    match ops::delete(&mut conn, &user.actor(), release.id, state.settings.retention_days, state.now()).await {
        Ok(d) => {
            let links = if d.removed_links.is_empty() {
                String::new()
            } else {
                format!(
                    " Removed links from: {}.",
                    d.removed_links.iter().map(|(id, n, k)| format!("#{id} {n} ({k})")).collect::<Vec<_>>().join(", ")
                )
            };
            flash::success(&session, format!("Release \"{}\" deleted.{links}", d.name));
            Ok(redirect(htmx, "/releases"))
        }
        Err(crate::ops::OpError::Rule { message, .. }) => {
            flash::push(&session, "error", message);
            Ok(redirect(htmx, &format!("/releases/{}", release.id)))
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ActForm {
    pub reason: String,
    pub comment: String,
}

impl ActForm {
    /// The form's fields; `out.<name>` ones are the outputs a manual task records.
    fn from_pairs(pairs: Vec<(String, String)>) -> (ActForm, serde_json::Map<String, serde_json::Value>) {
        let mut form = ActForm::default();
        let mut outputs = serde_json::Map::new();
        for (k, v) in pairs {
            match k.as_str() {
                "reason" => form.reason = v,
                "comment" => form.comment = v,
                _ => {
                    if let Some(name) = k.strip_prefix("out.").filter(|_| !v.trim().is_empty()) {
                        outputs.insert(name.to_string(), serde_json::Value::String(v.trim().to_string()));
                    }
                }
            }
        }
        (form, outputs)
    }
}

/// An action on an activity from the release page; a refusal is shown as a message.
pub async fn act(
    state: web::Data<AppState>,
    user: CurrentUser,
    session: Session,
    htmx: Htmx,
    path: web::Path<(i64, String, String, String)>,
    form: web::Form<Vec<(String, String)>>,
) -> Result<HttpResponse, AppError> {
    let (id, phase, activity, verb) = path.into_inner();
    let (form, outputs) = ActForm::from_pairs(form.into_inner());
    let verb = Verb::parse(&verb).ok_or(AppError::NotFound)?;
    let mut conn = state.db().await?;
    let release = Release::find(&mut conn, user.account_id, id).await?;
    let person = Person::load(&mut conn, user.actor(), (&user.email, &user.bindings), state.now()).await?;
    let input = crate::ops::activities::ActInput {
        reason: Some(form.reason.clone()).filter(|r| !r.trim().is_empty()),
        comment: Some(form.comment.clone()).filter(|c| !c.trim().is_empty()),
        outputs: Some(outputs).filter(|o| !o.is_empty()),
    };
    match crate::ops::activities::act(
        &mut conn,
        &person,
        ActivityAt { release_id: release.id, phase: &phase, key: &activity },
        verb,
        &input,
        state.now(),
    )
    .await
    {
        Ok(_) => flash::success(&session, format!("{} {phase}.{activity}: done.", verb.as_str())),
        Err(crate::ops::OpError::Forbidden(m)) => return Err(AppError::Forbidden(m)),
        Err(e) => flash::push(&session, "error", refusal_message(e)?),
    }
    Ok(redirect(htmx, &format!("/releases/{id}")))
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct CommentForm {
    pub text: String,
}

/// A comment on an activity's thread from the release page.
pub async fn comment(
    state: web::Data<AppState>,
    user: CurrentUser,
    session: Session,
    htmx: Htmx,
    path: web::Path<(i64, String, String)>,
    form: web::Form<CommentForm>,
) -> Result<HttpResponse, AppError> {
    let (id, phase, activity) = path.into_inner();
    let mut conn = state.db().await?;
    let release = Release::find(&mut conn, user.account_id, id).await?;
    ops::require_visible(&mut conn, &release, &user.bindings, (user.user_id, &user.email)).await?;
    let person = Person::load(&mut conn, user.actor(), (&user.email, &user.bindings), state.now()).await?;
    let at = ActivityAt { release_id: release.id, phase: &phase, key: &activity };
    match crate::ops::activity_talk::comment(&mut conn, &person, at, &form.text, state.now()).await {
        Ok(()) => flash::success(&session, "Comment added."),
        Err(e) => flash::push(&session, "error", refusal_message(e)?),
    }
    Ok(redirect(htmx, &format!("/releases/{id}")))
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ReassignForm {
    pub owner: String,
}

/// Hands a manual task to another person or group.
pub async fn reassign(
    state: web::Data<AppState>,
    user: CurrentUser,
    session: Session,
    htmx: Htmx,
    path: web::Path<(i64, String, String)>,
    form: web::Form<ReassignForm>,
) -> Result<HttpResponse, AppError> {
    let (id, phase, activity) = path.into_inner();
    let mut conn = state.db().await?;
    let release = Release::find(&mut conn, user.account_id, id).await?;
    user.require(Action::DecideFailure, release.scope())?;
    let person = Person::load(&mut conn, user.actor(), (&user.email, &user.bindings), state.now()).await?;
    let at = ActivityAt { release_id: release.id, phase: &phase, key: &activity };
    match crate::ops::activity_talk::reassign(&mut conn, &person, at, &form.owner, state.now()).await {
        Ok(()) => flash::success(&session, format!("{phase}.{activity} is now {}'s.", form.owner.trim())),
        Err(crate::ops::OpError::Forbidden(m)) => return Err(AppError::Forbidden(m)),
        Err(e) => flash::push(&session, "error", refusal_message(e)?),
    }
    Ok(redirect(htmx, &format!("/releases/{id}")))
}

pub async fn roll_back(
    state: web::Data<AppState>,
    user: CurrentUser,
    session: Session,
    htmx: Htmx,
    id: web::Path<i64>,
    form: web::Form<ReasonForm>,
) -> Result<HttpResponse, AppError> {
    let mut conn = state.db().await?;
    let release = Release::find(&mut conn, user.account_id, *id).await?;
    user.require(Action::DecideFailure, release.scope())?;
    match crate::ops::activities::roll_back(&mut conn, &user.actor(), &user.bindings, release.id, &form.reason, state.now()).await {
        Ok(_) => flash::success(&session, "Rolling back: the rollback phases run now."),
        Err(crate::ops::OpError::Invalid(errors)) => {
            flash::push(&session, "error", errors.0.iter().map(|(f, m)| format!("{f} {m}")).collect::<Vec<_>>().join("; "))
        }
        Err(crate::ops::OpError::Rule { message, .. }) => flash::push(&session, "error", message),
        Err(e) => return Err(e.into()),
    }
    Ok(redirect(htmx, &format!("/releases/{}", *id)))
}

/// A refusal the release page shows as a message (a broken rule, a conflict, invalid input);
/// any other error is answered as an error page.
pub fn refusal_message(e: crate::ops::OpError) -> Result<String, AppError> {
    match e {
        crate::ops::OpError::Rule { message, .. } | crate::ops::OpError::Conflict { message } => Ok(message),
        crate::ops::OpError::Invalid(errors) => Ok(errors.0.iter().map(|(f, m)| format!("{f} {m}")).collect::<Vec<_>>().join("; ")),
        other => Err(other.into()),
    }
}
