//! `seed-demo --scale large`: a large company's whole history in one account (DESIGN §11's
//! benchmark set): 20 orgs, 2,000 users, 200 processes of 5 phases × 5 activities, 20,000
//! releases over two years in every state and status, their deployments, and 2,000,000 audit
//! events whose chains verify. The structure goes through `ops` (one of each kind of thing, as a
//! user would make it); the volume is copied from those in bulk statements, and the audit rows
//! are hashed here and written in batches.

use std::time::Instant;

use chrono::{DateTime, TimeDelta, Utc};
use diesel_async::AsyncPgConnection;

use crate::db::models::accounts::Account;
use crate::db::seed as bulk;
use crate::domain::audit::{chain_for, ChainEvent, GENESIS_HASH};
use crate::ops::catalog::{self, EnvironmentInput};
use crate::ops::users::{self, NewUserInput};
use crate::ops::{processes, releases, Actor};

pub const LARGE_ACCOUNT: &str = "large";
pub const LARGE_ADMIN: &str = "admin@large.railyard.dev";
/// Every user of the large set has this password (one hash, computed once).
pub const LARGE_PASSWORD: &str = "large-demo-pass";

const ORGS: usize = 20;
const USERS: i64 = 2_000;
const PROCESSES: usize = 200;
const RELEASES: i64 = 20_000;
const AUDIT_EVENTS: i64 = 2_000_000;
const SERVICES: usize = 40;
const ENVIRONMENTS: &[(&str, bool)] = &[("DEV", false), ("QA", false), ("UAT", false), ("PROD1", true), ("PROD2", true), ("PROD3", true)];

/// What was made, and how long each step took.
#[derive(Debug, Default)]
pub struct LargeReport {
    pub steps: Vec<(&'static str, f64)>,
    pub counts: Vec<(&'static str, i64)>,
}

fn process_yaml(i: usize) -> String {
    let phases: Vec<String> = (1..=5)
        .map(|p| {
            let acts: Vec<String> = (1..=5)
                .map(|a| {
                    let dep = if a > 1 { format!(", depends_on: [a{}]", a - 1) } else { String::new() };
                    format!("{{key: a{a}, name: Step {p}.{a}, kind: manual{dep}}}")
                })
                .collect();
            let dep = if p > 1 { format!(", depends_on: [p{}]", p - 1) } else { String::new() };
            format!("{{key: p{p}, name: Phase {p}{dep}, activities: [{}]}}", acts.join(", "))
        })
        .collect();
    format!("name: Service {i:03} release\nphases: [{}]\n", phases.join(", "))
}

/// Seeds the large account unless it exists (`None` then).
pub async fn seed_large(conn: &mut AsyncPgConnection, now: DateTime<Utc>) -> anyhow::Result<Option<LargeReport>> {
    if Account::by_slug(conn, LARGE_ACCOUNT).await?.is_some() {
        return Ok(None);
    }
    let mut report = LargeReport::default();
    let mut clock = Instant::now();
    let mut step = |report: &mut LargeReport, name: &'static str| {
        report.steps.push((name, clock.elapsed().as_secs_f64()));
        clock = Instant::now();
    };
    let account = crate::ops::accounts::create_account(conn, LARGE_ACCOUNT, "Large Co", now).await?.id;
    let system = Actor::system(account, "seed-demo --scale large");
    let fail = |what: &'static str| move |e: crate::ops::OpError| anyhow::anyhow!("{what}: {e}: {:?}", e.field_errors());
    let mut orgs = Vec::new();
    for o in 1..=ORGS {
        orgs.push(
            catalog::create_org(conn, &system, &format!("org-{o:02}"), &format!("Organization {o:02}"), now).await.map_err(fail("org"))?.id,
        );
    }
    for (name, production) in ENVIRONMENTS {
        let input = EnvironmentInput { name: Some(name.to_string()), production: Some(*production), position: None, deploy_lock: None };
        catalog::create_environment(conn, &system, &input, now).await.map_err(fail("environment"))?;
    }
    for s in 0..SERVICES {
        catalog::create_service(conn, &system, &format!("service-{s:02}"), now).await.map_err(fail("service"))?;
    }
    let admin_input = NewUserInput {
        email: LARGE_ADMIN.into(),
        name: "Large Admin".into(),
        password: LARGE_PASSWORD.into(),
        role: "account_admin".into(),
        org: String::new(),
    };
    let admin = users::create_user(conn, &system, &admin_input, now).await.map_err(fail("admin"))?;
    let hash = crate::security::hash_password(LARGE_PASSWORD.into()).await.map_err(|e| anyhow::anyhow!("hashing: {e}"))?;
    bulk::add_users(conn, account, &hash, USERS - 1, now).await?;
    bulk::bind_roles(conn, account, &orgs, now).await?;
    step(&mut report, "account, orgs, catalog and 2,000 users");

    // A large company runs releases per organization: each org has its processes and releases.
    let level = crate::ops::settings::SettingsInput { release_level: Some("organization".into()), ..Default::default() };
    crate::ops::settings::update_settings(conn, &system, &level, now).await.map_err(fail("settings"))?;
    let rm = Actor::user(admin.id, account, &admin.email);
    for i in 0..PROCESSES {
        let org_index = Some(i % ORGS);
        let org = org_index.map(|o| orgs[o]);
        let process =
            processes::create(conn, &system, org, processes::Source::Yaml(process_yaml(i)), now).await.map_err(fail("process"))?;
        let input = releases::ReleaseInput {
            process_id: Some(process.process.id),
            name: Some(format!("Service {i:03} release")),
            org: Some(org_index.map(|o| format!("org-{:02}", o + 1))),
            ..Default::default()
        };
        let secrets = crate::security::SecretBox::derive(b"large-seed-has-no-secret-inputs");
        let prepared = releases::prepare(conn, &rm, "UTC", &secrets, &input, None, false).await.map_err(fail("release"))?;
        releases::create(conn, &rm, prepared, false, now).await.map_err(fail("release"))?;
    }
    step(&mut report, "200 processes, each with a first release through ops");

    bulk::copy_releases(conn, account, (RELEASES, PROCESSES as i64), now).await?;
    step(&mut report, "20,000 releases with their phases and activities (bulk copies)");

    bulk::add_deployments(conn, account).await?;
    step(&mut report, "deployments");

    let existing = bulk::count(conn, "audit_events", account).await?;
    write_histories(conn, account, AUDIT_EVENTS - existing).await?;
    step(&mut report, "2,000,000 audit events, hashed into their chains");
    bulk::vacuum_analyze(conn).await?;
    step(&mut report, "VACUUM ANALYZE");

    for (name, table) in [
        ("organizations", "organizations"),
        ("users", "users"),
        ("processes", "processes"),
        ("releases", "releases"),
        ("release activities", "release_activities"),
        ("deployments", "deployments"),
        ("audit events", "audit_events"),
    ] {
        report.counts.push((name, bulk::count(conn, table, account).await?));
    }
    Ok(Some(report))
}

/// Appends `total` events to the copied releases' chains (each chain from its genesis), hashed
/// here exactly as `db::audit::append` would, written 50,000 rows per statement.
async fn write_histories(conn: &mut AsyncPgConnection, account: i64, total: i64) -> anyhow::Result<()> {
    let rows = bulk::releases_without_history(conn, account).await?;
    if rows.is_empty() {
        return Ok(());
    }
    let per_release = (total + rows.len() as i64 - 1) / rows.len() as i64;
    let mut left = total;
    let mut batch = bulk::Batch::default();
    for row in &rows {
        let n = per_release.min(left);
        if n <= 0 {
            break;
        }
        left -= n;
        let chain = chain_for(Some(account), Some(row.0));
        let mut previous = GENESIS_HASH.to_string();
        for seq in 1..=n {
            let (actor, action, subject) = match seq {
                1 => ("user:admin@large.railyard.dev".to_string(), "release.create".to_string(), format!("release:{}", row.0)),
                2 => ("user:admin@large.railyard.dev".to_string(), "release.activate".to_string(), format!("release:{}", row.0)),
                _ => {
                    let step = (seq - 3) / 2;
                    let (phase, activity) = (step / 5 % 5 + 1, step % 5 + 1);
                    let action = if seq % 2 == 1 { "activity.running" } else { "activity.success" };
                    ("system:engine".to_string(), action.to_string(), format!("activity:p{phase}.a{activity}"))
                }
            };
            let event = ChainEvent {
                chain: chain.clone(),
                seq,
                account_id: Some(account),
                release_id: Some(row.0),
                actor,
                action,
                subject,
                reason: None,
                details: serde_json::json!({}),
                at: crate::clock::to_micros(row.1 + TimeDelta::seconds(seq * 37)),
            };
            let hash = event.hash(&previous);
            batch.push(event, std::mem::replace(&mut previous, hash.clone()), hash.clone());
        }
        batch.heads.push((chain, n, previous));
        if batch.len() >= 50_000 {
            batch.write(conn, account).await?;
        }
    }
    batch.write(conn, account).await?;
    Ok(())
}
