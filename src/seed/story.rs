//! The demo's history and present: months of weekly releases (with a retry, a rollback, a
//! rejection, an abort and hotfixes), releases running and on hold now, one left for the demo
//! CI to run, scheduled drafts, a weekly release group and a year-end freeze.

use chrono::{DateTime, Datelike, NaiveDate, TimeDelta, TimeZone, Utc};
use diesel_async::AsyncPgConnection;
use serde_json::{json, Map, Value};

use super::driver::{drive, Cast, Member, Plan};
use crate::db::models::processes::Process;
use crate::db::models::users::User;
use crate::ops::releases::{self, LinksInput, ReleaseInput, ScheduleInput};
use crate::ops::{Actor, Requester};
use crate::security::SecretBox;

pub const CI_TOKEN: &str = "demo-ci-token";
const TEST_ENVIRONMENTS: [&str; 3] = ["DEV", "QA", "UAT"];
const SERVICE_SETS: &[&[&str]] = &[&["payments-api", "ledger"], &["identity-service"], &["web-frontend"], &["payments-api"]];

#[derive(Debug, Default, Clone, Copy)]
pub struct Told {
    pub finished: usize,
    pub in_flight: usize,
    pub drafts: usize,
}

async fn member(conn: &mut AsyncPgConnection, account_id: i64, email: &str) -> anyhow::Result<Member> {
    let user = User::by_email(conn, email).await?.ok_or_else(|| anyhow::anyhow!("demo user {email} is missing"))?;
    Ok(Member {
        actor: Actor::user(user.id, account_id, email),
        email: email.to_string(),
        bindings: releases::bindings_of(conn, user.id).await?,
    })
}

pub async fn cast(conn: &mut AsyncPgConnection, account_id: i64) -> anyhow::Result<Cast> {
    Ok(Cast {
        release_manager: member(conn, account_id, "release.manager@demo.railyard.dev").await?,
        admin: member(conn, account_id, "admin@demo.railyard.dev").await?,
        approvers: vec![
            member(conn, account_id, "approver1@demo.railyard.dev").await?,
            member(conn, account_id, "approver2@demo.railyard.dev").await?,
        ],
    })
}

fn stamp(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M").to_string()
}

struct New<'a> {
    process: &'a Process,
    name: String,
    inputs: Value,
    start: DateTime<Utc>,
    hours: i64,
    release_type: &'a str,
    hotfix_for: Option<i64>,
}

async fn create(conn: &mut AsyncPgConnection, secrets: &SecretBox, rm: &Member, n: New<'_>, t: DateTime<Utc>) -> anyhow::Result<i64> {
    let input = ReleaseInput {
        process_id: Some(n.process.id),
        name: Some(n.name.clone()),
        release_type: Some(n.release_type.to_string()),
        inputs: n.inputs.as_object().cloned(),
        schedule: Some(Some(ScheduleInput {
            start: stamp(n.start),
            end: stamp(n.start + TimeDelta::hours(n.hours)),
            time_zone: Some("UTC".into()),
        })),
        owner: Some(format!("user:{}", rm.email)),
        links: n.hotfix_for.map(|id| LinksInput { depends_on: None, hotfix_for: Some(Some(id)) }),
        activate: Some(false),
        ..Default::default()
    };
    let who = Requester { actor: &rm.actor, bindings: &rm.bindings, time_zone: "UTC" };
    let saved = releases::create_release(conn, who, secrets, &input, t)
        .await
        .map_err(|e| anyhow::anyhow!("demo release {:?}: {e} {:?}", n.name, e.field_errors()))?;
    Ok(saved.release.id)
}

impl<'a> New<'a> {
    /// A standard release of the demo's service process: "<services> <version>".
    fn service(process: &'a Process, services: &[&str], version: &str, environment: &str, start: DateTime<Utc>, hours: i64) -> Self {
        New {
            process,
            name: format!("{} {version}", services.join(" + ")),
            inputs: service_inputs(services, version, environment),
            start,
            hours,
            release_type: "standard",
            hotfix_for: None,
        }
    }
}

fn service_inputs(services: &[&str], version: &str, environment: &str) -> Value {
    json!({"services": services, "version": version, "environment": environment, "test_environments": TEST_ENVIRONMENTS, "ci_token": CI_TOKEN})
}

fn hotfix_inputs(service: &str, version: &str, environment: &str, ticket: &str) -> Value {
    json!({"service": service, "version": version, "environment": environment, "ticket": ticket})
}

/// Tuesday 09:00 UTC of the week `weeks_ago` weeks before `now`.
fn tuesday(now: DateTime<Utc>, weeks_ago: i64) -> DateTime<Utc> {
    let day = (now - TimeDelta::weeks(weeks_ago)).date_naive();
    let monday = day - chrono::Days::new(u64::from(day.weekday().num_days_from_monday()));
    Utc.from_utc_datetime(&(monday + chrono::Days::new(1)).and_hms_opt(9, 0, 0).unwrap_or_default())
}

/// Tells the whole story; `weeks` of history (26 is about six months).
pub async fn tell(
    conn: &mut AsyncPgConnection,
    secrets: &SecretBox,
    account_id: i64,
    (service_release, hotfix): (&Process, &Process),
    weeks: i64,
    now: DateTime<Utc>,
) -> anyhow::Result<Told> {
    let cast = cast(conn, account_id).await?;
    let rm = cast.release_manager.clone();
    let mut told = Told::default();
    // The past: one release a week, each with its own story.
    for weeks_ago in (1..=weeks).rev() {
        let n = weeks - weeks_ago + 1;
        let services = SERVICE_SETS[(n as usize) % SERVICE_SETS.len()];
        let environment = format!("PROD{}", n % 4);
        // Last week's release failed in production, so the dashboard has a recent failure to show.
        let (version, plan) = match if weeks_ago == 1 { 7 } else { n % 13 } {
            2 => (format!("2.{n}.0-flaky"), Plan::Ignore),
            4 => (format!("2.{n}.0"), Plan::RetryOnce),
            7 => (format!("2.{n}.0-baddeploy"), Plan::RollBack),
            10 => (format!("2.{n}.0"), Plan::Rejected),
            12 => (format!("2.{n}.0-broken"), Plan::Abort),
            _ => (format!("2.{n}.0"), Plan::Clean),
        };
        // Last week's ran on Thursday, so its failure is within the dashboard's 7 days.
        let mut t = tuesday(now, weeks_ago) + TimeDelta::days(if weeks_ago == 1 { 2 } else { 0 });
        let new = New::service(service_release, services, &version, &environment, t, 48);
        let id = create(conn, secrets, &rm, new, t).await?;
        releases::activate(conn, &rm.actor, id, t).await?;
        let ended = drive(conn, &cast, id, plan, &mut t).await?;
        told.finished += 1;
        // A rolled-back or later-regretted release gets a hotfix within days.
        if plan == Plan::RollBack || n % 9 == 5 {
            let mut t = ended.finished_at.unwrap_or(t) + TimeDelta::hours(20);
            // One hotfix fails its own smoke test: not every fix works.
            let fixed = if n == 14 { format!("2.{n}.1-broken") } else { format!("2.{n}.1") };
            let new = New {
                process: hotfix,
                name: format!("Hotfix {} {fixed}", services[0]),
                inputs: hotfix_inputs(services[0], &fixed, &environment, &format!("INC-{}", 4000 + n)),
                start: t,
                hours: 4,
                release_type: "hotfix",
                hotfix_for: Some(id),
            };
            let hotfix_id = create(conn, secrets, &rm, new, t).await?;
            releases::activate(conn, &rm.actor, hotfix_id, t).await?;
            drive(conn, &cast, hotfix_id, Plan::Clean, &mut t).await?;
            told.finished += 1;
        }
    }
    // The present: one waiting for QA sign-off, one on hold for a failure decision, one whose
    // production verification waits for the operations group.
    let n = weeks + 1;
    for (services, version, plan) in [
        (SERVICE_SETS[0], format!("3.{n}.0"), Plan::StopAtApproval),
        (SERVICE_SETS[1], format!("3.{n}.1-baddeploy"), Plan::StopAtDecision),
        (&["ledger"][..], format!("3.{n}.2"), Plan::StopAtTask),
    ] {
        let mut t = now
            - TimeDelta::hours(match plan {
                Plan::StopAtApproval => 3,
                Plan::StopAtTask => 20,
                _ => 30,
            });
        let new = New::service(service_release, services, &version, "PROD1", t, 48);
        let id = create(conn, secrets, &rm, new, t).await?;
        releases::activate(conn, &rm.actor, id, t).await?;
        drive(conn, &cast, id, plan, &mut t).await?;
        told.in_flight += 1;
    }
    // One left to the worker and the demo CI: it runs as soon as the server does.
    let new = New::service(service_release, &["web-frontend"], &format!("3.{n}.0"), "PROD2", now, 24);
    let id = create(conn, secrets, &rm, new, now).await?;
    releases::activate(conn, &rm.actor, id, now).await?;
    told.in_flight += 1;
    // Scheduled drafts for the coming weeks.
    for weeks_ahead in 1..=3i64 {
        let start = tuesday(now, -weeks_ahead);
        let version = format!("3.{}.0", n + weeks_ahead);
        let services = SERVICE_SETS[(weeks_ahead as usize) % SERVICE_SETS.len()];
        let new = New::service(service_release, services, &version, &format!("PROD{}", weeks_ahead % 4), start, 48);
        create(conn, secrets, &rm, new, now).await?;
        told.drafts += 1;
    }
    Ok(told)
}

/// The weekly release group (with its input set) and the year-end freeze.
pub async fn calendar_furniture(
    conn: &mut AsyncPgConnection,
    secrets: &SecretBox,
    account_id: i64,
    service_release: &Process,
    now: DateTime<Utc>,
) -> anyhow::Result<()> {
    let actor = Actor::system(account_id, "seed-demo");
    let mut values = Map::new();
    values.insert("services".into(), json!(["web-frontend"]));
    values.insert("version".into(), json!("weekly"));
    values.insert("environment".into(), json!("PROD2"));
    values.insert("test_environments".into(), json!(TEST_ENVIRONMENTS));
    values.insert("ci_token".into(), json!(CI_TOKEN));
    let set = crate::ops::processes::InputSetInput { name: "web-frontend weekly".into(), values };
    crate::ops::processes::save_input_set(conn, &actor, secrets, service_release, None, &set, now)
        .await
        .map_err(|e| anyhow::anyhow!("demo input set: {e} {:?}", e.field_errors()))?;
    let next_thursday = {
        let day = now.date_naive();
        let ahead = (3 + 7 - i64::from(day.weekday().num_days_from_monday())) % 7;
        day + chrono::Days::new(ahead as u64)
    };
    let group = crate::ops::release_groups::ReleaseGroupInput {
        name: "Weekly web release".into(),
        process_id: service_release.id.to_string(),
        input_set: "web-frontend weekly".into(),
        rrule: "FREQ=WEEKLY;BYDAY=TH".into(),
        dtstart: format!("{next_thursday}T14:00"),
        time_zone: "Europe/Berlin".into(),
        duration: "1d".into(),
        name_template: "Web weekly {date}".into(),
        horizon_days: "21".into(),
        require_previous_finished: None,
        owner: "release.manager@demo.railyard.dev".into(),
        ..Default::default()
    };
    crate::ops::release_groups::create(conn, &actor, &group, now)
        .await
        .map_err(|e| anyhow::anyhow!("demo release group: {e} {:?}", e.field_errors()))?;
    let year = if now.month() == 1 && now.day() > 3 || now.month() > 1 { now.year() } else { now.year() - 1 };
    let start = NaiveDate::from_ymd_opt(year, 12, 20).unwrap_or_default();
    let end = NaiveDate::from_ymd_opt(year + 1, 1, 4).unwrap_or_default();
    let freeze = crate::ops::freezes::FreezeInput {
        reason: "Year-end change freeze".into(),
        environments: "PROD0, PROD1, PROD2, PROD3".into(),
        time_zone: "Europe/Berlin".into(),
        starts_at: format!("{start}T00:00"),
        ends_at: format!("{end}T00:00"),
        rrule: String::new(),
        duration: String::new(),
        org: String::new(),
    };
    crate::ops::freezes::create(conn, &actor, &freeze, now)
        .await
        .map_err(|e| anyhow::anyhow!("demo freeze: {e} {:?}", e.field_errors()))?;
    Ok(())
}
