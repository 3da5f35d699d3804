//! `seed-demo`: a demo account to explore (idempotent: a second run changes nothing): people,
//! catalog, processes that call the demo CI, and (once) months of history told by `story`.

mod driver;
pub mod large;
pub mod story;
pub mod train;

use chrono::{DateTime, Utc};
use diesel_async::AsyncPgConnection;

use crate::db::models::accounts::{Account, Organization};
use crate::db::models::catalog::{Environment, Group, Service};
use crate::db::models::processes::Process;
use crate::db::models::users::User;
use crate::ops::catalog::{self as catalog, EnvironmentInput};
use crate::ops::processes;
use crate::ops::users::{self as users, NewUserInput};
use crate::ops::{Actor, OpError};

pub const DEMO_ACCOUNT: &str = "demo";

/// (e-mail, password, name, role, org) — fixed so the README and the start-up banner can print them.
pub const DEMO_USERS: &[(&str, &str, &str, &str, &str)] = &[
    ("admin@demo.railyard.dev", "demo-admin-pass", "Ada Admin", "account_admin", ""),
    ("release.manager@demo.railyard.dev", "demo-release-pass", "Rhea Release", "account_release_manager", ""),
    ("payments.manager@demo.railyard.dev", "demo-payments-pass", "Paolo Payments", "org_release_manager", "payments"),
    ("viewer@demo.railyard.dev", "demo-viewer-pass", "Vera Viewer", "viewer", ""),
    ("approver1@demo.railyard.dev", "demo-approver-pass", "Quinn QA", "viewer", ""),
    ("approver2@demo.railyard.dev", "demo-approver-pass", "Quentin QA", "viewer", ""),
];

const ORGS: &[(&str, &str)] = &[("payments", "Payments"), ("identity", "Identity")];

const GROUPS: &[(&str, &[&str])] = &[
    ("development", &["release.manager@demo.railyard.dev", "payments.manager@demo.railyard.dev"]),
    ("qa", &["approver1@demo.railyard.dev", "approver2@demo.railyard.dev"]),
    ("operations", &["admin@demo.railyard.dev", "release.manager@demo.railyard.dev", "payments.manager@demo.railyard.dev"]),
    ("release-stakeholders", &["viewer@demo.railyard.dev", "payments.manager@demo.railyard.dev"]),
];

const ENVIRONMENTS: &[(&str, bool)] =
    &[("DEV", false), ("QA", false), ("UAT", false), ("PROD0", true), ("PROD1", true), ("PROD2", true), ("PROD3", true)];

const SERVICES: &[&str] = &["payments-api", "ledger", "identity-service", "web-frontend"];

/// The example processes of DESIGN §3 and `shared/examples/`, imported unchanged.
pub const DEMO_PROCESSES: &[&str] = &[
    include_str!("../../tests/fixtures/weekly-production-release.yaml"),
    include_str!("../../tests/fixtures/system-release-train.yaml"),
    include_str!("../../tests/fixtures/hotfix.yaml"),
];

fn ignore_duplicate<T>(result: Result<T, OpError>) -> anyhow::Result<()> {
    match result {
        Ok(_) | Err(OpError::Duplicate { .. }) => Ok(()),
        Err(e) => Err(anyhow::anyhow!("{e}: {:?}", e.field_errors())),
    }
}

/// The demo's own processes; `{{CI}}` becomes the demo CI's base URL.
pub const DEMO_CI_PROCESSES: &[&str] = &[
    include_str!("../../demo/service-release.yaml"),
    include_str!("../../demo/hotfix.yaml"),
    include_str!("../../demo/system-release-train.yaml"),
];

/// How to seed: where the demo CI listens, and how many weeks of history to tell.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    pub ci_address: String,
    pub weeks: i64,
}

/// What seeding did, for the banner.
#[derive(Debug, Default)]
pub struct Seeded {
    pub logins: Vec<(String, String, String)>,
    pub story: Option<story::Told>,
}

/// Creates whatever of the demo is missing and returns the log-ins (e-mail, password, role).
pub async fn seed_demo(
    conn: &mut AsyncPgConnection,
    secrets: &crate::security::SecretBox,
    options: &DemoOptions,
    now: DateTime<Utc>,
) -> anyhow::Result<Seeded> {
    let account = match Account::by_slug(conn, DEMO_ACCOUNT).await? {
        Some(a) => a,
        None => crate::ops::accounts::create_account(conn, DEMO_ACCOUNT, "Demo Corp", now).await?,
    };
    let actor = Actor::system(account.id, "seed-demo");
    for (slug, name) in ORGS {
        if Organization::by_slug(conn, account.id, slug).await.is_err() {
            ignore_duplicate(catalog::create_org(conn, &actor, slug, name, now).await)?;
        }
    }
    for (email, password, name, role, org) in DEMO_USERS {
        if User::by_email(conn, email).await?.is_none() {
            let input = NewUserInput {
                email: email.to_string(),
                name: name.to_string(),
                password: password.to_string(),
                role: role.to_string(),
                org: org.to_string(),
            };
            ignore_duplicate(users::create_user(conn, &actor, &input, now).await)?;
        }
    }
    for (name, members) in GROUPS {
        if Group::by_name(conn, account.id, name).await.is_err() {
            let members: Vec<String> = members.iter().map(|m| m.to_string()).collect();
            ignore_duplicate(catalog::create_group(conn, &actor, name, &members, now).await)?;
        }
    }
    for (name, production) in ENVIRONMENTS {
        if Environment::by_name(conn, account.id, name).await.is_err() {
            let input = EnvironmentInput { name: Some(name.to_string()), production: Some(*production), position: None, deploy_lock: None };
            ignore_duplicate(catalog::create_environment(conn, &actor, &input, now).await)?;
        }
    }
    for name in SERVICES.iter().chain(train::TRAIN_SERVICES) {
        if Service::by_name(conn, account.id, name).await.is_err() {
            ignore_duplicate(catalog::create_service(conn, &actor, name, now).await)?;
        }
    }
    let ci_base = format!("http://{}", options.ci_address);
    let existing = Process::list(conn, account.id).await?;
    let ours = DEMO_CI_PROCESSES.iter().map(|y| y.replace("{{CI}}", &ci_base));
    for yaml in DEMO_PROCESSES.iter().map(|y| y.to_string()).chain(ours) {
        let def = processes::parse(processes::Source::Yaml(yaml.clone())).map_err(|e| anyhow::Error::new(e).context("demo process"))?;
        if !existing.iter().any(|p| p.process.name == def.name) {
            ignore_duplicate(processes::create(conn, &actor, None, processes::Source::Yaml(yaml), now).await)?;
        }
    }
    // The demo CI is allowed as an operator would allow any CI host.
    let current = crate::db::models::accounts::AccountSettings::get(conn, account.id).await?;
    if !current.webhook_allow_list.iter().any(|h| h.eq_ignore_ascii_case(&options.ci_address)) {
        let mut hosts = current.webhook_allow_list.clone();
        hosts.push(options.ci_address.clone());
        let settings = crate::ops::settings::SettingsInput { webhook_allow_list: Some(hosts), ..Default::default() };
        crate::ops::settings::update_settings(conn, &actor, &settings, now).await.map_err(|e| anyhow::anyhow!("demo settings: {e}"))?;
    }
    let story = if crate::db::models::releases::count_in_account(conn, account.id).await? == 0 {
        let listed = Process::list(conn, account.id).await?;
        let find = |name: &str| {
            listed
                .iter()
                .find(|p| p.process.name == name)
                .map(|p| p.process.clone())
                .ok_or_else(|| anyhow::anyhow!("demo process {name} is missing"))
        };
        let (service_release, hotfix) = (find("Service Release")?, find("Demo Hotfix")?);
        let mut told = story::tell(conn, secrets, account.id, (&service_release, &hotfix), options.weeks, now).await?;
        story::calendar_furniture(conn, secrets, account.id, &service_release, now).await?;
        let train = find("System Release Train (demo)")?;
        let (finished, in_flight) = train::tell(conn, secrets, account.id, (&train, &hotfix), now).await?;
        train::group(conn, secrets, account.id, &train, now).await?;
        told.finished += finished;
        told.in_flight += in_flight;
        // Mail about the past is history, not news.
        crate::ops::outbox::retire_before(conn, account.id, now - chrono::TimeDelta::hours(36), now).await?;
        Some(told)
    } else {
        None
    };
    let logins = DEMO_USERS
        .iter()
        .map(|(email, password, _, role, org)| {
            let role = if org.is_empty() { role.to_string() } else { format!("{role} ({org})") };
            (email.to_string(), password.to_string(), role)
        })
        .collect();
    Ok(Seeded { logins, story })
}

/// (deployments, audit events) in the database, for the banner.
pub async fn counts(conn: &mut AsyncPgConnection) -> anyhow::Result<(i64, i64)> {
    Ok(crate::db::reports::totals(conn).await?)
}
