//! Release groups (DESIGN §5): a process, an input set and an RRULE make one release per
//! occurrence within the horizon — exactly once each, even with several servers sweeping.

use std::collections::HashMap;

use chrono::{DateTime, NaiveDateTime, TimeDelta, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{duplicate, Actor, OpError};
use crate::db::audit::{self, NewEvent};
use crate::db::models::accounts::Organization;
use crate::db::models::processes::{InputSet, Process};
use crate::db::models::releases::Release;
use crate::db::models::users::User;
use crate::db::schema::{release_groups, releases};
use crate::domain::process::time::parse_duration;
use crate::domain::release::ReleaseType;
use crate::domain::schedule::occurrences;
use crate::domain::validate::{self as fields, FieldErrors};

mod manage;
mod sweep;

pub use manage::*;
pub use sweep::sweep;

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = release_groups)]
pub struct ReleaseGroup {
    pub id: i64,
    pub account_id: i64,
    pub org_id: Option<i64>,
    pub name: String,
    pub process_id: i64,
    pub input_set_id: Option<i64>,
    pub rrule: String,
    pub dtstart: NaiveDateTime,
    pub time_zone: String,
    pub duration_minutes: i32,
    pub name_template: String,
    pub horizon_days: i32,
    pub paused: bool,
    pub require_previous_finished: bool,
    pub owner_id: Option<i64>,
    pub created_at: DateTime<Utc>,
    /// The type of the releases it makes.
    pub release_type: ReleaseType,
    /// Its releases' stakeholders (`user:<email>` or `group:<name>`).
    pub stakeholders: Vec<String>,
}

impl ReleaseGroup {
    pub fn zone(&self) -> chrono_tz::Tz {
        self.time_zone.parse().unwrap_or(chrono_tz::UTC)
    }

    pub fn scope(&self) -> crate::domain::policy::Scope {
        self.org_id.map_or(crate::domain::policy::Scope::Account, crate::domain::policy::Scope::Org)
    }

    /// The duration as it is written: `3d`, `4h` or `90m`.
    pub fn duration(&self) -> String {
        let m = self.duration_minutes;
        if m % 1440 == 0 {
            format!("{}d", m / 1440)
        } else if m % 60 == 0 {
            format!("{}h", m / 60)
        } else {
            format!("{m}m")
        }
    }

    /// The next `n` occurrences from `from` (for the preview).
    pub fn next(&self, from: DateTime<Utc>, n: usize) -> Vec<DateTime<Utc>> {
        occurrences(&self.rrule, self.dtstart, self.zone(), from, from + TimeDelta::days(3660))
            .map(|v| v.into_iter().take(n).collect())
            .unwrap_or_default()
    }
}

/// The group's settings as a form (and the API, after `ReleaseGroupFields::onto`) gives them:
/// text, checked by `settings`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct ReleaseGroupInput {
    pub name: String,
    pub process_id: String,
    pub input_set: String,
    pub rrule: String,
    pub dtstart: String,
    pub time_zone: String,
    pub duration: String,
    pub name_template: String,
    pub horizon_days: String,
    pub require_previous_finished: Option<String>,
    /// The org's slug for a group of an account process run for one org; empty otherwise.
    pub org: String,
    /// `standard` (the default), `hotfix`, `feature` or `system`.
    pub release_type: String,
    /// The release manager's e-mail (default: whoever creates the group).
    pub owner: String,
    /// Principals separated by commas or lines (default on creation: its creator).
    pub stakeholders: String,
}

/// The JSON body of `POST` and `PATCH /api/v1/release-groups` (DESIGN §10): on a PATCH, what is
/// left out keeps its value.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReleaseGroupFields {
    pub name: Option<String>,
    pub process_id: Option<i64>,
    pub input_set: Option<Option<String>>,
    pub rrule: Option<String>,
    /// Local date and time, `YYYY-MM-DDTHH:MM`.
    pub dtstart: Option<String>,
    pub time_zone: Option<String>,
    /// A duration such as `4h` or `3d`.
    pub duration: Option<String>,
    pub name_template: Option<String>,
    pub horizon_days: Option<i64>,
    pub require_previous_finished: Option<bool>,
    pub org: Option<Option<String>>,
    /// `standard` (the default), `hotfix`, `feature` or `system`: the type of its releases.
    #[serde(rename = "type")]
    pub release_type: Option<String>,
    /// The release manager's e-mail (default: whoever creates the group).
    pub owner: Option<String>,
    /// `user:<email>` or `group:<name>` (default: its creator).
    pub stakeholders: Option<Vec<String>>,
}

impl ReleaseGroupFields {
    /// These fields laid over `base`.
    pub fn onto(&self, mut base: ReleaseGroupInput) -> ReleaseGroupInput {
        let set = |slot: &mut String, value: &Option<String>| {
            if let Some(v) = value {
                *slot = v.clone();
            }
        };
        set(&mut base.name, &self.name);
        set(&mut base.rrule, &self.rrule);
        set(&mut base.dtstart, &self.dtstart);
        set(&mut base.time_zone, &self.time_zone);
        set(&mut base.duration, &self.duration);
        set(&mut base.name_template, &self.name_template);
        if let Some(id) = self.process_id {
            base.process_id = id.to_string();
        }
        if let Some(set) = &self.input_set {
            base.input_set = set.clone().unwrap_or_default();
        }
        if let Some(days) = self.horizon_days {
            base.horizon_days = days.to_string();
        }
        if let Some(after) = self.require_previous_finished {
            base.require_previous_finished = after.then(|| "on".to_string());
        }
        if let Some(org) = &self.org {
            base.org = org.clone().unwrap_or_default();
        }
        set(&mut base.release_type, &self.release_type);
        set(&mut base.owner, &self.owner);
        if let Some(list) = &self.stakeholders {
            base.stakeholders = list.join(", ");
        }
        base
    }
}

pub const MAX_HORIZON_DAYS: i64 = 366;

/// The stored columns of checked settings (a create and an update write the same ones).
#[derive(Insertable, AsChangeset)]
#[diesel(table_name = release_groups, treat_none_as_null = true)]
struct GroupColumns<'a> {
    org_id: Option<i64>,
    name: &'a str,
    process_id: i64,
    input_set_id: Option<i64>,
    rrule: &'a str,
    dtstart: NaiveDateTime,
    time_zone: &'a str,
    duration_minutes: i32,
    name_template: &'a str,
    horizon_days: i32,
    require_previous_finished: bool,
    release_type: ReleaseType,
    owner_id: Option<i64>,
    stakeholders: &'a [String],
}

impl Settings {
    fn columns(&self) -> GroupColumns<'_> {
        GroupColumns {
            org_id: self.org_id,
            name: &self.name,
            process_id: self.process_id,
            input_set_id: self.input_set_id,
            rrule: &self.rrule,
            dtstart: self.dtstart,
            time_zone: &self.time_zone,
            duration_minutes: self.duration_minutes,
            name_template: &self.name_template,
            horizon_days: self.horizon_days,
            require_previous_finished: self.require_previous_finished,
            release_type: self.release_type,
            owner_id: self.owner_id,
            stakeholders: &self.stakeholders,
        }
    }
}

/// Checked settings, ready to store.
struct Settings {
    name: String,
    process_id: i64,
    org_id: Option<i64>,
    input_set_id: Option<i64>,
    rrule: String,
    dtstart: NaiveDateTime,
    time_zone: String,
    duration_minutes: i32,
    name_template: String,
    horizon_days: i32,
    require_previous_finished: bool,
    release_type: ReleaseType,
    owner_id: Option<i64>,
    stakeholders: Vec<String>,
}

async fn settings(conn: &mut AsyncPgConnection, actor: &Actor, input: &ReleaseGroupInput, now: DateTime<Utc>) -> Result<Settings, OpError> {
    let mut errors = FieldErrors::new();
    let name = errors.check("name", fields::name(&input.name));
    let process = match input.process_id.trim().parse::<i64>() {
        Ok(id) => match Process::find(conn, actor.account_id, id).await {
            Ok(p) if p.latest_version > 0 => Some(p),
            _ => {
                errors.add("process_id", format!("there is no saved process {id}"));
                None
            }
        },
        Err(_) => {
            errors.add("process_id", "is required");
            None
        }
    };
    let input_set = match (&process, input.input_set.trim()) {
        (_, "") => None,
        (Some(p), set) => match InputSet::by_name(conn, actor.account_id, p.id, set).await {
            Ok(s) => Some(s.id),
            Err(_) => {
                errors.add("input_set", format!("the process has no input set {set:?}"));
                None
            }
        },
        (None, _) => None,
    };
    let org_id = match (&process, input.org.trim()) {
        (Some(p), "") => p.org_id,
        (Some(p), slug) => match Organization::by_slug(conn, actor.account_id, slug).await.optional()? {
            Some(org) if p.org_id.is_none() || p.org_id == Some(org.id) => Some(org.id),
            Some(_) => {
                errors.add("org", "the process belongs to another org");
                None
            }
            None => {
                errors.add("org", format!("there is no org {slug:?}"));
                None
            }
        },
        (None, _) => None,
    };
    let zone = errors.check("time_zone", fields::time_zone(&input.time_zone));
    let dtstart = match NaiveDateTime::parse_from_str(input.dtstart.trim(), "%Y-%m-%dT%H:%M") {
        Ok(d) => Some(d),
        Err(_) => {
            errors.add("dtstart", format!("{:?} is not a local date and time (YYYY-MM-DDTHH:MM)", input.dtstart.trim()));
            None
        }
    };
    let rrule = input.rrule.trim().trim_start_matches("RRULE:").to_string();
    if let (Some(d), Some(z)) = (dtstart, &zone) {
        let tz: chrono_tz::Tz = z.parse().unwrap_or(chrono_tz::UTC);
        if let Err(m) = occurrences(&rrule, d, tz, now, now + TimeDelta::days(1)) {
            errors.add("rrule", m);
        }
    } else if rrule.is_empty() {
        errors.add("rrule", "is required, e.g. FREQ=WEEKLY;BYDAY=MO");
    }
    let duration = match parse_duration(&input.duration) {
        Ok(d) if d.num_minutes() >= 1 => Some(d.num_minutes() as i32),
        _ => {
            errors.add("duration", format!("{:?} is not a duration (e.g. 4h, 22d)", input.duration.trim()));
            None
        }
    };
    let template = errors.check("name_template", fields::name(&input.name_template));
    let horizon = match input.horizon_days.trim().parse::<i64>() {
        Ok(h) if (1..=MAX_HORIZON_DAYS).contains(&h) => Some(h as i32),
        _ => {
            errors.add("horizon_days", format!("must be a number of days from 1 to {MAX_HORIZON_DAYS}"));
            None
        }
    };
    let release_type = match input.release_type.trim() {
        "" => Some(ReleaseType::Standard),
        t => ReleaseType::parse(t).or_else(|| {
            errors.add("type", format!("{t:?} is not standard, hotfix, feature or system"));
            None
        }),
    };
    let owner_id = match input.owner.trim() {
        "" => actor.user_id,
        email => match User::by_email(conn, email).await? {
            Some(u) if u.account_id == actor.account_id => Some(u.id),
            _ => {
                errors.add("owner", format!("there is no user {email:?}"));
                None
            }
        },
    };
    let stakeholders = group_stakeholders(conn, actor, &input.stakeholders, &mut errors).await?;
    let (
        Some(name),
        Some(process),
        Some(time_zone),
        Some(dtstart),
        Some(duration_minutes),
        Some(name_template),
        Some(horizon_days),
        Some(release_type),
    ) = (name, process, zone, dtstart, duration, template, horizon, release_type)
    else {
        return Err(OpError::Invalid(errors));
    };
    errors.into_result()?;
    Ok(Settings {
        name,
        process_id: process.id,
        org_id,
        input_set_id: input_set,
        rrule,
        dtstart,
        time_zone,
        duration_minutes,
        name_template,
        horizon_days,
        require_previous_finished: input.require_previous_finished.is_some(),
        release_type,
        owner_id,
        stakeholders,
    })
}

/// The stakeholders as written (commas or lines): users and groups, each checked.
async fn group_stakeholders(
    conn: &mut AsyncPgConnection,
    actor: &Actor,
    text: &str,
    errors: &mut FieldErrors,
) -> Result<Vec<String>, OpError> {
    let mut out = Vec::new();
    for s in text.split([',', '\n']).map(str::trim).filter(|s| !s.is_empty()) {
        if let Err(m) = crate::domain::process::validate::check_principal(s) {
            errors.add("stakeholders", m);
            continue;
        }
        if let Some(email) = s.strip_prefix("user:") {
            if User::by_email(conn, email.trim()).await?.is_none_or(|u| u.account_id != actor.account_id) {
                errors.add("stakeholders", format!("there is no user {:?}", email.trim()));
                continue;
            }
        }
        if !out.iter().any(|x: &String| x == s) {
            out.push(s.to_string());
        }
    }
    Ok(out)
}

/// The scope a group's settings would put it in, for the authorization before a create or an
/// update: the org named, else the process's.
pub async fn scope_of(conn: &mut AsyncPgConnection, account_id: i64, input: &ReleaseGroupInput) -> Result<Option<i64>, OpError> {
    if !input.org.trim().is_empty() {
        return Ok(Organization::by_slug(conn, account_id, input.org.trim()).await.optional()?.map(|o| o.id));
    }
    match input.process_id.trim().parse::<i64>() {
        Ok(id) => Ok(Process::find(conn, account_id, id).await.ok().and_then(|p| p.org_id)),
        Err(_) => Ok(None),
    }
}

pub async fn create(
    conn: &mut AsyncPgConnection,
    actor: &Actor,
    input: &ReleaseGroupInput,
    now: DateTime<Utc>,
) -> Result<ReleaseGroup, OpError> {
    let mut s = settings(conn, actor, input, now).await?;
    // Its stakeholders default to whoever creates it.
    if input.stakeholders.trim().is_empty() {
        if let Some(id) = actor.user_id {
            let creator = User::find(conn, actor.account_id, id).await?;
            s.stakeholders = vec![format!("user:{}", creator.email)];
        }
    }
    conn.transaction(async |conn| {
        let group: ReleaseGroup = diesel::insert_into(release_groups::table)
            .values((s.columns(), release_groups::account_id.eq(actor.account_id), release_groups::created_at.eq(now)))
            .returning(ReleaseGroup::as_returning())
            .get_result(conn)
            .await
            .map_err(|e| duplicate(e, "name", || format!("a release group {:?} already exists", s.name)))?;
        audit::append(
            conn,
            NewEvent::account(actor.account_id, &actor.label, "release_group.create", format!("release_group:{}", group.id))
                .with_details(json!({"name": group.name, "rrule": group.rrule})),
            now,
        )
        .await?;
        Ok(group)
    })
    .await
}

/// The group's current settings as a form shows them.
pub async fn as_input(conn: &mut AsyncPgConnection, g: &ReleaseGroup) -> Result<ReleaseGroupInput, OpError> {
    let input_set = match g.input_set_id {
        Some(id) => InputSet::find(conn, g.account_id, g.process_id, id).await?.name,
        None => String::new(),
    };
    let process_org = Process::find(conn, g.account_id, g.process_id).await?.org_id;
    let org = match g.org_id {
        Some(id) if process_org.is_none() => Organization::find(conn, g.account_id, id).await?.slug,
        _ => String::new(),
    };
    Ok(ReleaseGroupInput {
        name: g.name.clone(),
        process_id: g.process_id.to_string(),
        input_set,
        rrule: g.rrule.clone(),
        dtstart: g.dtstart.format("%Y-%m-%dT%H:%M").to_string(),
        time_zone: g.time_zone.clone(),
        duration: g.duration(),
        name_template: g.name_template.clone(),
        horizon_days: g.horizon_days.to_string(),
        require_previous_finished: g.require_previous_finished.then(|| "on".to_string()),
        org,
        release_type: g.release_type.as_str().to_owned(),
        owner: match g.owner_id {
            Some(id) => User::find(conn, g.account_id, id).await?.email,
            None => String::new(),
        },
        stakeholders: g.stakeholders.join(", "),
    })
}

/// A group with the names its ids stand for.
#[derive(Debug, Clone)]
pub struct GroupView {
    pub group: ReleaseGroup,
    pub process_name: String,
    pub input_set: Option<String>,
    pub org: Option<String>,
    /// The release manager's e-mail.
    pub owner: Option<String>,
}

pub async fn describe(conn: &mut AsyncPgConnection, group: ReleaseGroup) -> Result<GroupView, OpError> {
    let process_name = Process::find(conn, group.account_id, group.process_id).await?.name;
    let input_set = match group.input_set_id {
        Some(id) => Some(InputSet::find(conn, group.account_id, group.process_id, id).await?.name),
        None => None,
    };
    let org = match group.org_id {
        Some(id) => Some(Organization::find(conn, group.account_id, id).await?.slug),
        None => None,
    };
    let owner = match group.owner_id {
        Some(id) => Some(User::find(conn, group.account_id, id).await?.email),
        None => None,
    };
    Ok(GroupView { group, process_name, input_set, org, owner })
}

/// New settings for a group; the occurrences it already created stay as they are.
pub async fn update(
    conn: &mut AsyncPgConnection,
    actor: &Actor,
    id: i64,
    input: &ReleaseGroupInput,
    now: DateTime<Utc>,
) -> Result<ReleaseGroup, OpError> {
    let s = settings(conn, actor, input, now).await?;
    conn.transaction(async |conn| {
        let before = find_for_update(conn, actor.account_id, id).await?;
        let after: ReleaseGroup = diesel::update(release_groups::table.find(before.id))
            .set(s.columns())
            .returning(ReleaseGroup::as_returning())
            .get_result(conn)
            .await
            .map_err(|e| duplicate(e, "name", || format!("a release group {:?} already exists", s.name)))?;
        // Plain strings and numbers: serialising them cannot fail.
        let view = |g: &ReleaseGroup| serde_json::to_value(GroupSettingsView::of(g)).unwrap_or_default();
        let (old, new) = (view(&before), view(&after));
        let changed: serde_json::Map<String, serde_json::Value> = new
            .as_object()
            .into_iter()
            .flatten()
            .filter(|(k, v)| old.get(k.as_str()) != Some(v))
            .map(|(k, v)| (k.clone(), json!({"from": old.get(k.as_str()), "to": v})))
            .collect();
        audit::append(
            conn,
            NewEvent::account(actor.account_id, &actor.label, "release_group.update", format!("release_group:{id}"))
                .with_details(json!({"name": after.name, "changed": changed})),
            now,
        )
        .await?;
        Ok(after)
    })
    .await
}

/// The settings an audit event compares before and after an update.
#[derive(Serialize)]
struct GroupSettingsView<'a> {
    name: &'a str,
    process_id: i64,
    org_id: Option<i64>,
    input_set_id: Option<i64>,
    rrule: &'a str,
    dtstart: String,
    time_zone: &'a str,
    duration: String,
    name_template: &'a str,
    horizon_days: i32,
    require_previous_finished: bool,
    release_type: &'static str,
    owner_id: Option<i64>,
    stakeholders: &'a [String],
}

impl<'a> GroupSettingsView<'a> {
    fn of(g: &'a ReleaseGroup) -> Self {
        GroupSettingsView {
            name: &g.name,
            process_id: g.process_id,
            org_id: g.org_id,
            input_set_id: g.input_set_id,
            rrule: &g.rrule,
            dtstart: g.dtstart.format("%Y-%m-%dT%H:%M").to_string(),
            time_zone: &g.time_zone,
            duration: g.duration(),
            name_template: &g.name_template,
            horizon_days: g.horizon_days,
            require_previous_finished: g.require_previous_finished,
            release_type: g.release_type.as_str(),
            owner_id: g.owner_id,
            stakeholders: &g.stakeholders,
        }
    }
}

pub async fn list(conn: &mut AsyncPgConnection, account_id: i64) -> QueryResult<Vec<ReleaseGroup>> {
    release_groups::table
        .filter(release_groups::account_id.eq(account_id))
        .order(release_groups::name)
        .select(ReleaseGroup::as_select())
        .load(conn)
        .await
}

pub async fn find(conn: &mut AsyncPgConnection, account_id: i64, id: i64) -> QueryResult<ReleaseGroup> {
    release_groups::table
        .filter(release_groups::account_id.eq(account_id))
        .filter(release_groups::id.eq(id))
        .select(ReleaseGroup::as_select())
        .first(conn)
        .await
}

async fn find_for_update(conn: &mut AsyncPgConnection, account_id: i64, id: i64) -> QueryResult<ReleaseGroup> {
    release_groups::table
        .filter(release_groups::account_id.eq(account_id))
        .filter(release_groups::id.eq(id))
        .select(ReleaseGroup::as_select())
        .for_update()
        .first(conn)
        .await
}

/// The releases each group made, oldest occurrence first: one query for a whole page of groups.
pub async fn releases_of(conn: &mut AsyncPgConnection, group_ids: &[i64]) -> QueryResult<HashMap<i64, Vec<Release>>> {
    let rows: Vec<Release> = releases::table
        .filter(releases::release_group_id.eq_any(group_ids))
        .order((releases::release_group_id, releases::occurrence))
        .select(Release::as_select())
        .load(conn)
        .await?;
    let mut by_group: HashMap<i64, Vec<Release>> = HashMap::new();
    for release in rows {
        if let Some(group_id) = release.release_group_id {
            by_group.entry(group_id).or_default().push(release);
        }
    }
    Ok(by_group)
}
