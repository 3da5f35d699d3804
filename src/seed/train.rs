//! The demo's System Release Train (demo/system-release-train.yaml): a weekly release group of
//! type `system` with a 12-service manifest, finished trains (one with a hotfix between its
//! Prod 1 and Prod 2), and the train in flight now, whose later phases the live worker runs
//! against the demo CI.

use chrono::{DateTime, Datelike, TimeDelta, TimeZone, Utc};
use diesel_async::AsyncPgConnection;
use serde_json::{json, Map, Value};

use super::driver::{drive, Plan};
use super::story::{cast, CI_TOKEN};
use crate::db::models::processes::Process;
use crate::ops::releases::{self, LinksInput, ReleaseInput, ScheduleInput};
use crate::ops::{Actor, Requester};
use crate::security::SecretBox;

/// The services on the train (the everyday demo releases deploy the other four, so the train
/// never queues behind them for a deploy lock).
pub const TRAIN_SERVICES: &[&str] = &[
    "accounts",
    "catalog",
    "checkout",
    "fraud-detection",
    "gateway",
    "inventory",
    "notifications",
    "pricing",
    "recommendations",
    "reviews",
    "search",
    "shipping",
];

/// How long a train's window is on the calendar: Monday to the Monday two weeks on, 18:00.
const TRAIN_HOURS: i64 = 14 * 24 + 9;

/// Monday 09:00 UTC of the week `weeks_ago` weeks before `now`.
fn monday(now: DateTime<Utc>, weeks_ago: i64) -> DateTime<Utc> {
    let day = (now - TimeDelta::weeks(weeks_ago)).date_naive();
    let monday = day - chrono::Days::new(u64::from(day.weekday().num_days_from_monday()));
    Utc.from_utc_datetime(&monday.and_hms_opt(9, 0, 0).unwrap_or_default())
}

/// The manifest of train `n`: every service moves on; a third of them get a patch version.
fn manifest(n: i64) -> Value {
    let map: Map<String, Value> =
        TRAIN_SERVICES.iter().enumerate().map(|(i, s)| (s.to_string(), json!(format!("1.{n}.{}", i % 3)))).collect();
    Value::Object(map)
}

fn train_number(start: DateTime<Utc>) -> String {
    format!("{}.{:02}", start.iso_week().year(), start.iso_week().week())
}

async fn create(
    conn: &mut AsyncPgConnection,
    secrets: &SecretBox,
    rm: &super::driver::Member,
    input: ReleaseInput,
    t: DateTime<Utc>,
) -> anyhow::Result<i64> {
    let who = Requester { actor: &rm.actor, bindings: &rm.bindings, time_zone: "UTC" };
    let name = input.name.clone().unwrap_or_default();
    let saved = releases::create_release(conn, who, secrets, &input, t)
        .await
        .map_err(|e| anyhow::anyhow!("demo train {name:?}: {e} {:?}", e.field_errors()))?;
    releases::activate(conn, &rm.actor, saved.release.id, t).await?;
    Ok(saved.release.id)
}

fn schedule(start: DateTime<Utc>, hours: i64) -> Option<Option<ScheduleInput>> {
    let stamp = |t: DateTime<Utc>| t.format("%Y-%m-%dT%H:%M").to_string();
    Some(Some(ScheduleInput { start: stamp(start), end: stamp(start + TimeDelta::hours(hours)), time_zone: Some("UTC".into()) }))
}

/// Four trains: three finished (the one of four weeks ago needed a hotfix on the Tuesday
/// between its Prod 1 and Prod 2) and last Monday's, in flight now. Returns (finished, in flight).
pub async fn tell(
    conn: &mut AsyncPgConnection,
    secrets: &SecretBox,
    account_id: i64,
    (train, hotfix): (&Process, &Process),
    now: DateTime<Utc>,
) -> anyhow::Result<(usize, usize)> {
    let cast = cast(conn, account_id).await?;
    let rm = cast.release_manager.clone();
    let (mut finished, mut in_flight) = (0, 0);
    for weeks_ago in [4i64, 3, 2, 1] {
        let start = monday(now, weeks_ago);
        let n = 40 - weeks_ago;
        let input = ReleaseInput {
            process_id: Some(train.id),
            name: Some(format!("Train {}", train_number(start))),
            release_type: Some("system".into()),
            inputs: json!({"manifest": manifest(n), "train": train_number(start), "ci_token": CI_TOKEN}).as_object().cloned(),
            schedule: schedule(start, TRAIN_HOURS),
            owner: Some(format!("user:{}", rm.email)),
            stakeholders: Some(vec!["group:release-stakeholders".into()]),
            activate: Some(false),
            ..Default::default()
        };
        let id = create(conn, secrets, &rm, input, start).await?;
        let mut t = start;
        let ended = drive(conn, &cast, id, Plan::RunUntil(now), &mut t).await?;
        if ended.status().is_finished() {
            finished += 1;
        } else {
            in_flight += 1;
        }
        if weeks_ago == 4 {
            // Checkout broke in Prod 1 on Monday: a hotfix on Tuesday, before Prod 2 on Wednesday.
            let at = start + TimeDelta::days(8) + TimeDelta::hours(1);
            let input = ReleaseInput {
                process_id: Some(hotfix.id),
                name: Some(format!("Hotfix checkout 1.{n}.9")),
                release_type: Some("hotfix".into()),
                inputs: json!({"service": "checkout", "version": format!("1.{n}.9"), "environment": "PROD1", "ticket": "INC-5120"})
                    .as_object()
                    .cloned(),
                schedule: schedule(at, 4),
                owner: Some(format!("user:{}", rm.email)),
                links: Some(LinksInput { depends_on: None, hotfix_for: Some(Some(id)) }),
                activate: Some(false),
                ..Default::default()
            };
            let hotfix_id = create(conn, secrets, &rm, input, at).await?;
            let mut t = at;
            drive(conn, &cast, hotfix_id, Plan::Clean, &mut t).await?;
            finished += 1;
        }
    }
    Ok((finished, in_flight))
}

/// The train's release group: every Monday 09:00, type `system`, managed by the release manager,
/// with the platform's stakeholders, from an input set that holds the manifest.
pub async fn group(
    conn: &mut AsyncPgConnection,
    secrets: &SecretBox,
    account_id: i64,
    train: &Process,
    now: DateTime<Utc>,
) -> anyhow::Result<()> {
    let actor = Actor::system(account_id, "seed-demo");
    let mut values = Map::new();
    values.insert("manifest".into(), manifest(40));
    values.insert("train".into(), json!("weekly"));
    values.insert("ci_token".into(), json!(CI_TOKEN));
    let set = crate::ops::processes::InputSetInput { name: "Platform train".into(), values };
    crate::ops::processes::save_input_set(conn, &actor, secrets, train, None, &set, now)
        .await
        .map_err(|e| anyhow::anyhow!("demo train input set: {e} {:?}", e.field_errors()))?;
    let next_monday = monday(now, -1).date_naive();
    let group = crate::ops::release_groups::ReleaseGroupInput {
        name: "System Release Train".into(),
        process_id: train.id.to_string(),
        input_set: "Platform train".into(),
        rrule: "FREQ=WEEKLY;BYDAY=MO".into(),
        dtstart: format!("{next_monday}T09:00"),
        time_zone: "UTC".into(),
        duration: "15d".into(),
        name_template: "Train {date}".into(),
        horizon_days: "14".into(),
        require_previous_finished: None,
        release_type: "system".into(),
        owner: "release.manager@demo.railyard.dev".into(),
        stakeholders: "group:release-stakeholders".into(),
        ..Default::default()
    };
    crate::ops::release_groups::create(conn, &actor, &group, now)
        .await
        .map_err(|e| anyhow::anyhow!("demo train group: {e} {:?}", e.field_errors()))?;
    Ok(())
}
