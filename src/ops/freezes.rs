//! Freeze windows (DESIGN §2): while one covers an environment a release targets, the release
//! is held (OnHold, reason shown) until the window ends — unless it is a hotfix with an
//! override granted by an account release manager (reason required, audited).

use chrono::{DateTime, NaiveDateTime, TimeDelta, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use serde::Deserialize;
use serde_json::json;

use super::{Actor, OpError};
use crate::db::audit::{self, NewEvent};
use crate::db::models::accounts::Organization;
use crate::db::models::releases::Release;
use crate::db::schema::{freeze_overrides, freeze_windows};
use crate::domain::policy::Scope;
use crate::domain::process::time::parse_duration;
use crate::domain::release::ReleaseType;
use crate::domain::rule::RuleCode;
use crate::domain::schedule::occurrences;
use crate::domain::validate::{self as fields, FieldErrors};

/// How the reason of a release held by a freeze begins (the page offers an override on it).

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = freeze_windows)]
pub struct FreezeWindow {
    pub id: i64,
    pub account_id: i64,
    pub reason: String,
    pub environments: Vec<String>,
    pub time_zone: String,
    pub starts_at: Option<DateTime<Utc>>,
    pub ends_at: Option<DateTime<Utc>>,
    pub rrule: Option<String>,
    pub dtstart: Option<NaiveDateTime>,
    pub duration_minutes: Option<i32>,
    pub created_at: DateTime<Utc>,
    /// An org's freeze holds only that org's releases; `None` holds the whole account's.
    pub org_id: Option<i64>,
}

impl FreezeWindow {
    pub fn scope(&self) -> Scope {
        self.org_id.map_or(Scope::Account, Scope::Org)
    }

    /// Whether it holds a release of this org (`None`: an account-level release).
    pub fn holds_org(&self, release_org: Option<i64>) -> bool {
        self.org_id.is_none() || self.org_id == release_org
    }

    /// The concrete windows of this freeze that meet [from, to).
    pub fn windows(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> Vec<(DateTime<Utc>, DateTime<Utc>)> {
        match (self.starts_at, self.ends_at, &self.rrule, self.dtstart, self.duration_minutes) {
            (Some(s), Some(e), _, _, _) => (s < to && e > from).then_some((s, e)).into_iter().collect(),
            (_, _, Some(rule), Some(dtstart), Some(minutes)) => {
                let length = TimeDelta::minutes(i64::from(minutes));
                let zone: chrono_tz::Tz = self.time_zone.parse().unwrap_or(chrono_tz::UTC);
                occurrences(rule, dtstart, zone, from - length, to)
                    .unwrap_or_default()
                    .into_iter()
                    .map(|s| (s, s + length))
                    .filter(|(s, e)| *s < to && *e > from)
                    .collect()
            }
            _ => Vec::new(),
        }
    }
}

pub async fn list(conn: &mut AsyncPgConnection, account_id: i64) -> QueryResult<Vec<FreezeWindow>> {
    freeze_windows::table
        .filter(freeze_windows::account_id.eq(account_id))
        .order(freeze_windows::id)
        .select(FreezeWindow::as_select())
        .load(conn)
        .await
}

/// The freezes someone with these bindings sees (the account's, and their orgs').
pub async fn visible(
    conn: &mut AsyncPgConnection,
    account_id: i64,
    bindings: &[crate::domain::policy::Binding],
) -> QueryResult<Vec<FreezeWindow>> {
    let all = list(conn, account_id).await?;
    Ok(all
        .into_iter()
        .filter(|f| crate::domain::policy::allows(bindings, crate::domain::policy::Action::ViewCalendar, f.scope()))
        .collect())
}

pub async fn find(conn: &mut AsyncPgConnection, account_id: i64, id: i64) -> QueryResult<FreezeWindow> {
    freeze_windows::table
        .filter(freeze_windows::account_id.eq(account_id))
        .filter(freeze_windows::id.eq(id))
        .select(FreezeWindow::as_select())
        .first(conn)
        .await
}

/// The freeze holding a release of `org` on these environments at `now`: (reason, end of the
/// window).
pub async fn active_on(
    conn: &mut AsyncPgConnection,
    account_id: i64,
    org: Option<i64>,
    environments: &[String],
    now: DateTime<Utc>,
) -> QueryResult<Option<(String, DateTime<Utc>)>> {
    if environments.is_empty() {
        return Ok(None);
    }
    let all = list(conn, account_id).await?;
    Ok(all
        .iter()
        .filter(|f| f.holds_org(org) && f.environments.iter().any(|e| environments.contains(e)))
        .flat_map(|f| f.windows(now, now + TimeDelta::seconds(1)).into_iter().map(move |(_, end)| (f.reason.clone(), end)))
        .max_by_key(|(_, end)| *end))
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct FreezeInput {
    pub reason: String,
    pub environments: String,
    pub time_zone: String,
    pub starts_at: String,
    pub ends_at: String,
    pub rrule: String,
    pub duration: String,
    /// The org's slug for an org's freeze; empty for the account's.
    pub org: String,
}

/// The JSON body of `POST /api/v1/freezes` (DESIGN §10): `start` and `end`, or `rrule`,
/// `dtstart` and `duration`; times are RFC 3339 or local `YYYY-MM-DDTHH:MM` in `time_zone`.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FreezeFields {
    pub reason: String,
    pub environments: Vec<String>,
    pub time_zone: Option<String>,
    pub start: Option<String>,
    pub end: Option<String>,
    pub rrule: Option<String>,
    pub dtstart: Option<String>,
    pub duration: Option<String>,
    pub org: Option<String>,
}

impl FreezeFields {
    pub fn into_input(self, default_zone: &str) -> FreezeInput {
        FreezeInput {
            reason: self.reason,
            environments: self.environments.join(","),
            time_zone: self.time_zone.unwrap_or_else(|| default_zone.to_string()),
            starts_at: self.dtstart.filter(|_| self.rrule.is_some()).or(self.start).unwrap_or_default(),
            ends_at: self.end.unwrap_or_default(),
            rrule: self.rrule.unwrap_or_default(),
            duration: self.duration.unwrap_or_default(),
            org: self.org.unwrap_or_default(),
        }
    }
}

/// The scope a new freeze would have: the org named, else the account.
pub async fn scope_of(conn: &mut AsyncPgConnection, account_id: i64, input: &FreezeInput) -> QueryResult<Scope> {
    Ok(match input.org.trim() {
        "" => Scope::Account,
        slug => Organization::by_slug(conn, account_id, slug).await.optional()?.map_or(Scope::Account, |o| Scope::Org(o.id)),
    })
}

pub async fn create(conn: &mut AsyncPgConnection, actor: &Actor, input: &FreezeInput, now: DateTime<Utc>) -> Result<FreezeWindow, OpError> {
    let mut errors = FieldErrors::new();
    let reason = errors.check("reason", fields::required_text(&input.reason, 500));
    let envs: Vec<String> = input.environments.split([',', ' ']).map(str::trim).filter(|s| !s.is_empty()).map(str::to_string).collect();
    if envs.is_empty() {
        errors.add("environments", "name at least one environment");
    }
    let known = crate::db::models::catalog::Environment::list(conn, actor.account_id).await?;
    for e in &envs {
        if !known.iter().any(|k| &k.name == e) {
            errors.add("environments", format!("there is no environment {e:?}"));
        }
    }
    let org_id = match input.org.trim() {
        "" => None,
        slug => match Organization::by_slug(conn, actor.account_id, slug).await.optional()? {
            Some(org) => Some(org.id),
            None => {
                errors.add("org", format!("there is no org {slug:?}"));
                None
            }
        },
    };
    let zone = errors.check("time_zone", fields::time_zone(&input.time_zone));
    let tz: chrono_tz::Tz = zone.as_deref().unwrap_or("UTC").parse().unwrap_or(chrono_tz::UTC);
    let starts = errors.check("starts_at", crate::domain::schedule::parse_time(&input.starts_at, tz));
    let recurring = !input.rrule.trim().is_empty();
    let (ends, duration) = if recurring {
        let d = match parse_duration(&input.duration) {
            Ok(d) => Some(d.num_minutes() as i32),
            Err(m) => {
                errors.add("duration", m);
                None
            }
        };
        if let (Some(s), Some(_)) = (starts, &zone) {
            if let Err(m) = occurrences(&input.rrule, s.with_timezone(&tz).naive_local(), tz, now, now + TimeDelta::days(1)) {
                errors.add("rrule", m);
            }
        }
        (None, d)
    } else {
        let e = errors.check("ends_at", crate::domain::schedule::parse_time(&input.ends_at, tz));
        if let (Some(s), Some(e)) = (starts, e) {
            if e <= s {
                errors.add("ends_at", "must be after the start");
            }
        }
        (e, None)
    };
    errors.into_result()?;
    let (Some(reason), Some(zone), Some(starts)) = (reason, zone, starts) else {
        return Err(OpError::Unexpected(anyhow::anyhow!("checked freeze incomplete")));
    };
    conn.transaction(async |conn| {
        let row: FreezeWindow = diesel::insert_into(freeze_windows::table)
            .values((
                freeze_windows::account_id.eq(actor.account_id),
                freeze_windows::reason.eq(&reason),
                freeze_windows::environments.eq(&envs),
                freeze_windows::time_zone.eq(&zone),
                freeze_windows::starts_at.eq((!recurring).then_some(starts)),
                freeze_windows::ends_at.eq(ends),
                freeze_windows::rrule.eq(recurring.then(|| input.rrule.trim().trim_start_matches("RRULE:").to_string())),
                freeze_windows::dtstart.eq(recurring.then(|| starts.with_timezone(&tz).naive_local())),
                freeze_windows::duration_minutes.eq(duration),
                freeze_windows::created_at.eq(now),
                freeze_windows::org_id.eq(org_id),
            ))
            .returning(FreezeWindow::as_returning())
            .get_result(conn)
            .await?;
        audit::append(
            conn,
            NewEvent::account(actor.account_id, &actor.label, "freeze.create", format!("freeze:{}", row.id))
                .with_details(json!({"reason": reason, "environments": envs, "org": input.org.trim()})),
            now,
        )
        .await?;
        Ok(row)
    })
    .await
}

pub async fn delete(conn: &mut AsyncPgConnection, actor: &Actor, id: i64, now: DateTime<Utc>) -> Result<(), OpError> {
    conn.transaction(async |conn| {
        let gone: FreezeWindow =
            diesel::delete(freeze_windows::table.filter(freeze_windows::account_id.eq(actor.account_id)).filter(freeze_windows::id.eq(id)))
                .returning(FreezeWindow::as_returning())
                .get_result(conn)
                .await
                .optional()?
                .ok_or(OpError::NotFound)?;
        audit::append(
            conn,
            NewEvent::account(actor.account_id, &actor.label, "freeze.delete", format!("freeze:{id}"))
                .with_details(json!({"reason": gone.reason, "environments": gone.environments, "org_id": gone.org_id})),
            now,
        )
        .await?;
        // What it held is looked at again now rather than at the window's end.
        crate::db::wake::schedule_held_now(conn, actor.account_id, None, now).await?;
        Ok(())
    })
    .await
}

/// A hotfix passes freezes from now on (reason required; audited on the release).
pub async fn override_for(
    conn: &mut AsyncPgConnection,
    actor: &Actor,
    release_id: i64,
    reason: &str,
    now: DateTime<Utc>,
) -> Result<Release, OpError> {
    let reason = crate::ops::required_reason(reason)?;
    conn.transaction(async |conn| {
        let r = Release::lock(conn, actor.account_id, release_id).await?;
        if r.release_type != ReleaseType::Hotfix {
            return Err(OpError::Rule {
                code: RuleCode::NotHotfix,
                message: "Only hotfix releases may be let through a freeze.".into(),
                field: None,
            });
        }
        diesel::insert_into(freeze_overrides::table)
            .values((
                freeze_overrides::release_id.eq(r.id),
                freeze_overrides::reason.eq(&reason),
                freeze_overrides::granted_by.eq(&actor.label),
                freeze_overrides::granted_at.eq(now),
            ))
            .on_conflict(freeze_overrides::release_id)
            .do_update()
            .set((
                freeze_overrides::reason.eq(&reason),
                freeze_overrides::granted_by.eq(&actor.label),
                freeze_overrides::granted_at.eq(now),
            ))
            .execute(conn)
            .await?;
        audit::append(conn, NewEvent::release(&r, actor.label.clone(), "release.freeze_override").with_reason(reason.clone()), now).await?;
        crate::db::wake::schedule_now(conn, r.id, now).await?;
        crate::db::wake::schedule_held_now(conn, r.account_id, Some(r.id), now).await?;
        Ok(Release::find(conn, r.account_id, r.id).await?)
    })
    .await
}

pub async fn has_override(conn: &mut AsyncPgConnection, release_id: i64) -> QueryResult<bool> {
    Ok(freeze_overrides::table.find(release_id).count().get_result::<i64>(conn).await? > 0)
}
