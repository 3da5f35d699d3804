//! `/signoff/{token}`: the page an approver reaches from the e-mail. A GET never decides; a
//! decision is posted, confirmed, then recorded. Used, expired, voided, foreign or decided
//! links get a plain page saying so.

use actix_session::Session;
use actix_web::{web, HttpResponse};
use askama::Template;
use serde::Deserialize;

use super::{render, Chrome};
use crate::db::models::releases::Release;
use crate::db::models::signoff_tokens::{self as signoff, LinkState};
use crate::domain::process::template::to_text;
use crate::ops::activities::{self as acts, ActInput, Person, Verb};
use crate::web::error::AppError;
use crate::web::extractors::CurrentUser;
use crate::web::AppState;

#[derive(Template)]
#[template(path = "pages/signoff.html")]
pub struct SignoffPage {
    pub chrome: Chrome,
    /// "state" (a plain message), "decide", "confirm" or "done".
    pub mode: &'static str,
    pub message: String,
    pub token: String,
    pub release_id: i64,
    pub release_name: String,
    pub phase_name: String,
    pub activity_name: String,
    pub inputs: Vec<(String, String)>,
    pub progress: Vec<(String, String)>,
    pub decision: String,
    pub comment: String,
    pub error: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct DecisionForm {
    pub decision: String,
    pub comment: String,
    pub confirm: String,
}

async fn page(
    state: &AppState,
    user: &CurrentUser,
    session: &Session,
    token: &str,
    mode: &'static str,
    form: &DecisionForm,
) -> Result<SignoffPage, AppError> {
    let mut conn = state.db().await?;
    let (link, found) = signoff::check(&mut conn, token, user.user_id, state.now()).await?;
    let mut p = SignoffPage {
        chrome: Chrome::new(user, session, "Sign-off", "/work"),
        mode,
        message: String::new(),
        token: token.to_string(),
        release_id: 0,
        release_name: String::new(),
        phase_name: String::new(),
        activity_name: String::new(),
        inputs: vec![],
        progress: vec![],
        decision: form.decision.clone(),
        comment: form.comment.clone(),
        error: None,
    };
    if let Some(t) = &found {
        if t.account_id == user.account_id {
            if let Ok(r) = Release::find(&mut conn, user.account_id, t.release_id).await {
                p.release_id = r.id;
                p.release_name = r.name.clone();
            }
        }
    }
    if link != LinkState::Valid {
        p.mode = "state";
        p.message = link.message().to_string();
        return Ok(p);
    }
    let Some(t) = found else { return Ok(p) };
    let r = Release::find(&mut conn, user.account_id, t.release_id).await?;
    let view = crate::ops::releases::view(&mut conn, r).await?;
    let masked = crate::ops::processes::masked(&view.definition, &view.release.inputs);
    p.inputs = masked.iter().map(|(k, v)| (k.clone(), to_text(v))).collect();
    p.phase_name = view.phases.iter().find(|x| x.key == t.phase_key).map(|x| x.name.clone()).unwrap_or_default();
    p.activity_name =
        view.activities.iter().find(|a| a.phase_key == t.phase_key && a.key == t.activity_key).map(|a| a.name.clone()).unwrap_or_default();
    p.progress = view.activities.iter().map(|a| (format!("{} / {}", a.phase_key, a.name), a.status.as_str().to_owned())).collect();
    Ok(p)
}

pub async fn show(
    state: web::Data<AppState>,
    user: CurrentUser,
    session: Session,
    token: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    render(&page(&state, &user, &session, &token, "decide", &DecisionForm::default()).await?)
}

pub async fn decide(
    state: web::Data<AppState>,
    user: CurrentUser,
    session: Session,
    token: web::Path<String>,
    form: web::Form<DecisionForm>,
) -> Result<HttpResponse, AppError> {
    let form = form.into_inner();
    let verb = match form.decision.as_str() {
        "approve" => Verb::Approve,
        "reject" => Verb::Reject,
        other => return Err(AppError::bad_request("decision", format!("{other:?} is not approve or reject"))),
    };
    let mut p = page(&state, &user, &session, &token, "confirm", &form).await?;
    if p.mode == "state" {
        return render(&p);
    }
    if verb == Verb::Reject && form.comment.trim().is_empty() {
        p.error = Some("A rejection needs a reason in the comment.".into());
        p.mode = if form.confirm == "yes" { "confirm" } else { "decide" };
        return render(&p);
    }
    if form.confirm != "yes" {
        // One click never decides: show what will happen and ask again.
        return render(&p);
    }
    let mut conn = state.db().await?;
    let (link, found) = signoff::check(&mut conn, &token, user.user_id, state.now()).await?;
    let (LinkState::Valid, Some(t)) = (link, found) else {
        p.mode = "state";
        return render(&p);
    };
    let person = Person {
        actor: user.actor(),
        user_id: user.user_id,
        email: &user.email,
        bindings: &user.bindings,
        groups: acts::groups_of(&mut conn, user.user_id).await?,
        delegating_for: Vec::new(),
    };
    let comment = Some(form.comment.trim().to_string()).filter(|c| !c.is_empty());
    let input = ActInput { reason: comment.clone().filter(|_| verb == Verb::Reject), comment, outputs: None };
    acts::vote_by_link(&mut conn, &person, &t, (verb, &input), state.now()).await?;
    p.mode = "done";
    p.message = if verb == Verb::Approve { "Your approval is recorded.".into() } else { "Your rejection is recorded.".into() };
    render(&p)
}
