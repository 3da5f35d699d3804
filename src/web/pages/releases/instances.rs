//! The instance list of a finished fan-out activity, loaded when its summary is opened (a
//! 60-service release would otherwise send hundreds of rows with every refresh of its page).

use actix_session::Session;
use actix_web::{web, HttpResponse};
use askama::Template;

use crate::ops::releases::{self as ops};
use crate::web::error::AppError;
use crate::web::extractors::CurrentUser;
use crate::web::pages::render;
use crate::web::AppState;

/// One finished instance: nothing can be done to it any more, so it is shown, not acted on.
pub struct InstanceLine {
    pub item: String,
    pub status: &'static str,
    pub attempts: i32,
    pub reason: String,
}

#[derive(Template)]
#[template(path = "partials/instances.html")]
pub struct InstanceList {
    pub instances: Vec<InstanceLine>,
}

pub async fn list(
    state: web::Data<AppState>,
    user: CurrentUser,
    _session: Session,
    path: web::Path<(i64, String, String)>,
) -> Result<HttpResponse, AppError> {
    let (id, phase, activity) = path.into_inner();
    let mut conn = state.db().await?;
    let now = state.now();
    let ops::ReleaseDetail { read, .. } = ops::detail(
        &mut conn,
        (&state.pages.release, &state.pages.standing, user.reading(now)),
        user.actor(),
        (&user.email, &user.bindings),
        (id, None),
    )
    .await?;
    let instances = read
        .view
        .activities
        .iter()
        .filter(|a| a.phase_key == phase && a.fan_of.as_deref() == Some(activity.as_str()))
        .map(|a| InstanceLine {
            item: a.item.clone().unwrap_or_default(),
            status: a.status.as_str(),
            attempts: a.attempts,
            reason: a.status_reason.clone().unwrap_or_default(),
        })
        .collect();
    render(&InstanceList { instances })
}
