//! What a create or PATCH of a release, and a list query, may say.

use crate::domain::schedule::parse_bound;
use diesel_async::AsyncPgConnection;
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::db::models::accounts::Organization;
use crate::db::models::releases::ListFilter;
use crate::domain::release::{State, Status};
use crate::ops::OpError;

#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScheduleInput {
    pub start: String,
    pub end: String,
    #[serde(default)]
    pub time_zone: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LinksInput {
    #[serde(default)]
    pub depends_on: Option<Vec<i64>>,
    #[serde(default)]
    pub hotfix_for: Option<Option<i64>>,
}

/// A create (all of it) or a PATCH of a draft (only what is given).
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReleaseInput {
    pub process_id: Option<i64>,
    /// A saved version of the process; absent: the draft's own, or the newest for a new
    /// release or another process.
    pub process_version: Option<i32>,
    pub name: Option<String>,
    #[serde(rename = "type")]
    pub release_type: Option<String>,
    /// An org slug; `null` or absent = account level.
    #[serde(default, deserialize_with = "present")]
    pub org: Option<Option<String>>,
    pub inputs: Option<Map<String, Value>>,
    pub variables: Option<Map<String, Value>>,
    #[serde(default, deserialize_with = "present")]
    pub schedule: Option<Option<ScheduleInput>>,
    pub owner: Option<String>,
    pub stakeholders: Option<Vec<String>>,
    pub links: Option<LinksInput>,
    pub input_set: Option<String>,
    pub activate: Option<bool>,
    pub lock_version: Option<i32>,
}

/// Tells "absent" (None) from "null" (Some(None)).
pub(super) fn present<'de, D: serde::Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}
#[derive(Debug, Deserialize, Default, Clone, PartialEq, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(default, deny_unknown_fields)]
pub struct ListQuery {
    pub status: Option<String>,
    pub state: Option<String>,
    pub org: Option<String>,
    #[serde(rename = "type")]
    pub release_type: Option<String>,
    pub process_id: Option<i64>,
    /// The release manager's e-mail.
    pub owner: Option<String>,
    pub q: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
    pub page: Option<i64>,
}

/// Turns list query parameters into a filter, naming a bad one.
/// `from`/`to` take a date (a day in `zone`, the caller's) or a time (DESIGN §10).
pub async fn filter_from(conn: &mut AsyncPgConnection, account_id: i64, q: &ListQuery, zone: chrono_tz::Tz) -> Result<ListFilter, OpError> {
    let mut f = ListFilter::default();
    if let Some(s) = q.status.as_deref().filter(|s| !s.is_empty()) {
        Status::parse(s).ok_or_else(|| OpError::parse("status", format!("{s:?} is not a status")))?;
        f.status = Some(s.to_string());
    }
    if let Some(s) = q.state.as_deref().filter(|s| !s.is_empty()) {
        State::parse(s).ok_or_else(|| OpError::parse("state", format!("{s:?} is not draft, active or archived")))?;
        f.state = Some(s.to_string());
    }
    if let Some(t) = q.release_type.as_deref().filter(|s| !s.is_empty()) {
        crate::domain::release::ReleaseType::parse(t).ok_or_else(|| OpError::parse("type", format!("{t:?} is not a release type")))?;
        f.release_type = Some(t.to_string());
    }
    match q.org.as_deref().filter(|s| !s.is_empty()) {
        Some("account") => f.org = Some(None),
        Some(slug) => {
            let org = Organization::by_slug(conn, account_id, slug)
                .await
                .map_err(|_| OpError::parse("org", format!("there is no organization {slug:?}")))?;
            f.org = Some(Some(org.id));
        }
        None => {}
    }
    f.process_id = q.process_id;
    if let Some(email) = q.owner.as_deref().map(|o| o.trim().trim_start_matches("user:")).filter(|s| !s.is_empty()) {
        match crate::db::models::users::User::by_email(conn, email).await? {
            Some(u) if u.account_id == account_id => f.owner_id = Some(u.id),
            _ => return Err(OpError::parse("owner", format!("there is no user {email:?}"))),
        }
    }
    f.text = q.q.clone().filter(|s| !s.trim().is_empty());
    for (field, value, slot, is_end) in [("from", &q.from, &mut f.from, false), ("to", &q.to, &mut f.to, true)] {
        if let Some(v) = value.as_deref().filter(|s| !s.is_empty()) {
            *slot = Some(parse_bound(v, zone, is_end).map_err(|m| OpError::parse(field, m))?);
        }
    }
    Ok(f)
}
