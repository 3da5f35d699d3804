//! The CLI commands of DESIGN §10.

use anyhow::{anyhow, Context};
use diesel_async::{AsyncConnection, AsyncPgConnection};
use std::io::BufRead;
use std::process::ExitCode;
use std::sync::Arc;

use crate::clock::{Clock, SharedClock, SystemClock};
use crate::config::Settings;
use crate::db::audit;
use crate::db::models::accounts::Account;
use crate::domain::process::time::parse_duration;
use crate::ops::users::NewUserInput;
use crate::ops::{self, Actor, OpError};
use crate::startup::Application;

fn clock() -> SharedClock {
    Arc::new(SystemClock)
}

async fn connect(settings: &Settings) -> anyhow::Result<AsyncPgConnection> {
    crate::db::run_migrations(&settings.database_url).await?;
    AsyncPgConnection::establish(&settings.database_url)
        .await
        .with_context(|| format!("connecting to {}", crate::db::redact_url(&settings.database_url)))
}

/// Turns an operation's field errors into one readable CLI message.
fn op_error(e: OpError) -> anyhow::Error {
    match e.field_errors() {
        Some(errors) => anyhow!(errors.0.iter().map(|(f, m)| format!("--{} {m}", f.replace('_', "-"))).collect::<Vec<_>>().join("; ")),
        None => anyhow::Error::new(e),
    }
}

async fn account_by_slug(conn: &mut AsyncPgConnection, slug: &str) -> anyhow::Result<Account> {
    Account::by_slug(conn, slug).await?.ok_or_else(|| anyhow!("there is no account with slug {slug:?}"))
}

pub async fn serve(settings: Settings) -> anyhow::Result<ExitCode> {
    let app = Application::build(settings.clone(), clock()).await?;
    crate::worker::spawn_worker(app.state.services.with_worker_pool()?);
    tracing::info!(bind = %settings.bind, base_url = %settings.base_url, "Railyard is listening");
    eprintln!("Railyard is serving on http://{} (base URL {})", settings.bind, settings.base_url);
    app.run_until_stopped().await?;
    Ok(ExitCode::SUCCESS)
}

/// The engine alone (scale-out): no HTTP server.
pub async fn worker(settings: Settings) -> anyhow::Result<ExitCode> {
    let (services, _) = crate::state::Services::start(settings, clock()).await?;
    crate::worker::spawn_worker(services.with_worker_pool()?);
    eprintln!("Railyard worker running (Ctrl-C stops)");
    tokio::signal::ctrl_c().await?;
    Ok(ExitCode::SUCCESS)
}

pub async fn migrate(settings: Settings) -> anyhow::Result<ExitCode> {
    crate::db::run_migrations(&settings.database_url).await?;
    println!("migrations are up to date");
    Ok(ExitCode::SUCCESS)
}

pub async fn account_add(settings: Settings, slug: &str, name: &str) -> anyhow::Result<ExitCode> {
    let mut conn = connect(&settings).await?;
    let account = ops::accounts::create_account(&mut conn, slug, name, SystemClock.now()).await.map_err(op_error)?;
    println!("account {} created (id {})", account.slug, account.id);
    Ok(ExitCode::SUCCESS)
}

pub async fn org_add(settings: Settings, account: &str, slug: &str, name: &str) -> anyhow::Result<ExitCode> {
    let mut conn = connect(&settings).await?;
    let account = account_by_slug(&mut conn, account).await?;
    let actor = Actor::system(account.id, "cli");
    let org = ops::catalog::create_org(&mut conn, &actor, slug, name, SystemClock.now()).await.map_err(op_error)?;
    println!("organization {} created in {} (id {})", org.slug, account.slug, org.id);
    Ok(ExitCode::SUCCESS)
}

pub async fn user_add(
    settings: Settings,
    account: &str,
    email: &str,
    name: &str,
    role: &str,
    org: Option<&str>,
) -> anyhow::Result<ExitCode> {
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line).context("reading the password from standard input")?;
    let password = line.trim_end_matches(['\n', '\r']).to_string();
    let mut conn = connect(&settings).await?;
    let account = account_by_slug(&mut conn, account).await?;
    let actor = Actor::system(account.id, "cli");
    let input = NewUserInput { email: email.into(), name: name.into(), password, role: role.into(), org: org.unwrap_or_default().into() };
    let user = ops::users::create_user(&mut conn, &actor, &input, SystemClock.now()).await.map_err(op_error)?;
    println!("user {} created in {} as {role}", user.email, account.slug);
    Ok(ExitCode::SUCCESS)
}

pub async fn token_create(settings: Settings, email: &str, name: &str, expires_in: Option<&str>) -> anyhow::Result<ExitCode> {
    let now = SystemClock.now();
    let expires_at = match expires_in {
        Some(text) => Some(now + parse_duration(text).map_err(|m| anyhow!("--expires-in: {m}"))?),
        None => None,
    };
    let mut conn = connect(&settings).await?;
    let made = ops::tokens::create_for(&mut conn, email, name, expires_at, now).await.map_err(|e| match e {
        OpError::NotFound => anyhow!("there is no user with e-mail {email:?}"),
        other => op_error(other),
    })?;
    println!("{}", made.token);
    Ok(ExitCode::SUCCESS)
}

pub async fn token_list(settings: Settings, email: &str) -> anyhow::Result<ExitCode> {
    let mut conn = connect(&settings).await?;
    let (user, tokens) = ops::tokens::list_for(&mut conn, email).await.map_err(|e| match e {
        OpError::NotFound => anyhow!("there is no user with e-mail {email:?}"),
        other => op_error(other),
    })?;
    let now = SystemClock.now();
    let time = |t: Option<chrono::DateTime<chrono::Utc>>| t.map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string());
    println!("{:>6}  {:<24} {:<20} {:<20} state", "id", "name", "created", "expires");
    for t in &tokens {
        let state = match t.revoked_at {
            Some(at) => format!("revoked {}", at.format("%Y-%m-%d %H:%M UTC")),
            None => t.state(now).to_string(),
        };
        let created = time(Some(t.created_at)).unwrap_or_default();
        let expires = time(t.expires_at).unwrap_or_else(|| "never".into());
        println!("{:>6}  {:<24} {:<20} {:<20} {state}", t.id, t.name, created, expires);
    }
    println!("{} token(s) of {}", tokens.len(), user.email);
    Ok(ExitCode::SUCCESS)
}

pub async fn token_revoke(settings: Settings, id: i64) -> anyhow::Result<ExitCode> {
    let mut conn = connect(&settings).await?;
    let owner = ops::tokens::revoke_any(&mut conn, id, SystemClock.now()).await.map_err(|e| match e {
        OpError::NotFound => anyhow!("there is no API token with id {id}"),
        other => op_error(other),
    })?;
    println!("token {id} of {owner} revoked");
    Ok(ExitCode::SUCCESS)
}

pub async fn seed_demo(settings: Settings, options: crate::seed::DemoOptions) -> anyhow::Result<ExitCode> {
    let base_url = settings.base_url.clone();
    let (services, _) = crate::state::Services::start(settings, clock()).await?;
    let mut conn = services.pool.get().await?;
    let started = std::time::Instant::now();
    let seeded = crate::seed::seed_demo(&mut conn, &services.secrets, &options, services.clock.now()).await?;
    if let Some(told) = seeded.story {
        let counts = crate::seed::counts(&mut conn).await?;
        println!(
            "Demo history told in {:.1} s: {} finished releases, {} in flight, {} scheduled drafts; {} deployments, {} audit events.",
            started.elapsed().as_secs_f64(),
            told.finished,
            told.in_flight,
            told.drafts,
            counts.0,
            counts.1
        );
    }
    println!("Demo account ready. Log in at {base_url}/login with:");
    for (email, password, role) in seeded.logins {
        println!("  {email:<34} {password:<18} {role}");
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Scale {
    Demo,
    Large,
}

pub async fn seed_large(settings: Settings) -> anyhow::Result<ExitCode> {
    let base_url = settings.base_url.clone();
    let (services, _) = crate::state::Services::start(settings, clock()).await?;
    let mut conn = services.pool.get().await?;
    let started = std::time::Instant::now();
    match crate::seed::large::seed_large(&mut conn, services.clock.now()).await? {
        None => println!("The large account already exists; nothing was changed."),
        Some(report) => {
            println!("Large data set seeded in {:.1} s:", started.elapsed().as_secs_f64());
            for (step, seconds) in &report.steps {
                println!("  {seconds:>7.1} s  {step}");
            }
            for (what, n) in &report.counts {
                println!("  {n:>9}  {what}");
            }
        }
    }
    println!(
        "Log in at {base_url}/login as {} / {} (every userNNNN@large.railyard.dev has the same password).",
        crate::seed::large::LARGE_ADMIN,
        crate::seed::large::LARGE_PASSWORD
    );
    Ok(ExitCode::SUCCESS)
}

pub async fn audit_verify(settings: Settings, account: Option<&str>) -> anyhow::Result<ExitCode> {
    let mut conn = connect(&settings).await?;
    let account_id = match account {
        Some(slug) => Some(account_by_slug(&mut conn, slug).await?.id),
        None => None,
    };
    let report = audit::verify(&mut conn, account_id).await?;
    if let Some(account) = account_id {
        crate::db::audit_search::record_verification(&mut conn, account, "cli:railyard audit verify", &report, chrono::Utc::now()).await?;
    }
    match report.broken {
        None => {
            println!("audit trail intact: {} chains, {} events verified", report.chains, report.events);
            Ok(ExitCode::SUCCESS)
        }
        Some(row) => {
            println!("audit trail BROKEN at chain {} seq {} (row id {}): {}", row.chain, row.seq, row.id, row.problem);
            Ok(ExitCode::FAILURE)
        }
    }
}
