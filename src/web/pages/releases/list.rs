//! `/releases`: the list and archive, filtered and paged.

use actix_session::Session;
use actix_web::{web, HttpResponse};
use askama::Template;

use crate::db::models::accounts::Organization;
use crate::db::models::releases::{self as rows};
use crate::domain::policy::{Action, Scope};
use crate::domain::release::ReleaseType;
use crate::ops::releases::{self as ops, ListQuery};
use crate::web::error::AppError;
use crate::web::extractors::CurrentUser;
use crate::web::pages::{render, Chrome};
use crate::web::AppState;

use super::local;

pub struct ListRow {
    pub id: i64,
    pub name: String,
    pub release_type: String,
    pub state: String,
    pub status: String,
    pub window: String,
    pub environments: String,
}

#[derive(Template)]
#[template(path = "pages/releases/list.html")]
pub struct ListPage {
    pub chrome: Chrome,
    pub rows: Vec<ListRow>,
    pub query: ListQuery,
    pub archive: bool,
    pub total: i64,
    pub page: i64,
    pub pages: i64,
    pub can_create: bool,
    pub statuses: Vec<&'static str>,
    pub types: Vec<&'static str>,
    pub orgs: Vec<Organization>,
    pub query_string: String,
}

pub async fn list(
    state: web::Data<AppState>,
    user: CurrentUser,
    session: Session,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, AppError> {
    user.require(Action::ViewRelease, Scope::Account)?;
    let query = query.into_inner();
    let mut conn = state.db().await?;
    let read = ops::list_page(
        &mut conn,
        (&state.pages.releases, user.reading(state.now())),
        user.account_id,
        &user.bindings,
        (&query, user.zone()),
    )
    .await?;
    let page = query.page.unwrap_or(0).max(0);
    let rows = read
        .releases
        .iter()
        .map(|r| ListRow {
            window: match r.schedule_start {
                Some(_) => format!("{} → {}", local(r.schedule_start, &user.time_zone), local(r.schedule_end, &user.time_zone)),
                None => "unscheduled".into(),
            },
            environments: r.environments.join(", "),
            id: r.id,
            name: r.name.clone(),
            release_type: r.release_type.as_str().to_owned(),
            state: r.state.as_str().to_owned(),
            status: r.status.as_str().to_owned(),
        })
        .collect();
    let (total, orgs) = (read.total, read.orgs.clone());
    let archive = query.state.as_deref() == Some("archived");
    let query_string = serde_urlencoded::to_string([
        ("status", query.status.clone().unwrap_or_default()),
        ("state", query.state.clone().unwrap_or_default()),
        ("type", query.release_type.clone().unwrap_or_default()),
        ("org", query.org.clone().unwrap_or_default()),
        ("q", query.q.clone().unwrap_or_default()),
        ("owner", query.owner.clone().unwrap_or_default()),
        ("process_id", query.process_id.map(|p| p.to_string()).unwrap_or_default()),
    ])
    .unwrap_or_default();
    let page = ListPage {
        chrome: Chrome::new(&user, &session, if archive { "Release archive" } else { "Releases" }, "/releases"),
        rows,
        archive,
        total,
        page,
        pages: (total + rows::PAGE_SIZE - 1) / rows::PAGE_SIZE,
        can_create: user.may(Action::CreateRelease, Scope::Account)
            || user.bindings.iter().filter_map(|b| b.org).any(|org| user.may(Action::CreateRelease, Scope::Org(org))),
        statuses: crate::domain::release::Status::ALL.iter().map(|s| s.as_str()).collect(),
        types: ReleaseType::ALL.iter().map(|t| t.as_str()).collect(),
        orgs,
        query,
        query_string,
    };
    render(&page)
}
