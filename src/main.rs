use clap::{Parser, Subcommand};
use railyard::commands;
use std::process::ExitCode;

#[derive(Parser)]
#[command(name = "railyard", version, about = "Railyard: self-hosted release orchestration")]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Migrations, HTTP server and embedded worker (the default).
    Serve,
    /// The engine only (scale-out).
    Worker,
    /// Run pending database migrations and exit.
    Migrate,
    /// Accounts (tenants).
    Account {
        #[command(subcommand)]
        command: AccountCommand,
    },
    /// Organizations inside an account.
    Org {
        #[command(subcommand)]
        command: OrgCommand,
    },
    /// Users.
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// API tokens.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// Create the demo account, users, catalog and processes (idempotent); the first time, also
    /// months of history, releases running now, drafts, a release group and a freeze.
    SeedDemo {
        /// Weeks of history to tell the first time.
        #[arg(long, default_value_t = 26)]
        weeks: i64,
        /// Where the demo CI listens (the demo processes call it).
        #[arg(long, env = "RAILYARD_DEMO_CI", default_value = railyard::demo_ci::DEFAULT_ADDRESS)]
        ci: String,
        /// `large`: instead, the benchmark account `large` (20 orgs, 2,000 users, 200 processes,
        /// 20,000 releases, 2,000,000 audit events), made once.
        #[arg(long, value_enum, default_value = "demo")]
        scale: railyard::commands::Scale,
    },
    /// A simulated CI/CD system for the demo (build, test, smoke, deploy with callbacks).
    DemoCi {
        #[arg(long, env = "RAILYARD_DEMO_CI", default_value = railyard::demo_ci::DEFAULT_ADDRESS)]
        address: String,
        /// Multiplies every job's duration (0.1 = ten times faster).
        #[arg(long, default_value_t = 1.0)]
        speed: f64,
    },
    /// The audit trail.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
}

#[derive(Subcommand)]
enum AccountCommand {
    Add {
        #[arg(long)]
        slug: String,
        #[arg(long)]
        name: String,
    },
}

#[derive(Subcommand)]
enum OrgCommand {
    Add {
        #[arg(long)]
        account: String,
        #[arg(long)]
        slug: String,
        #[arg(long)]
        name: String,
    },
}

#[derive(Subcommand)]
enum UserCommand {
    Add {
        #[arg(long)]
        account: String,
        #[arg(long)]
        email: String,
        #[arg(long)]
        name: String,
        /// account_admin, account_release_manager, org_release_manager (needs --org) or viewer.
        #[arg(long)]
        role: String,
        #[arg(long)]
        org: Option<String>,
        /// Read the password from standard input (one line).
        #[arg(long, required = true)]
        password_stdin: bool,
    },
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Prints the API token alone on stdout.
    Create {
        #[arg(long)]
        email: String,
        #[arg(long, default_value = "cli")]
        name: String,
        /// How long it works, e.g. 90d or 12h (default: until revoked).
        #[arg(long)]
        expires_in: Option<String>,
    },
    /// The user's tokens: id, name, created, expires, state.
    List {
        #[arg(long)]
        email: String,
    },
    /// Revokes a token at once.
    Revoke {
        #[arg(long)]
        id: i64,
    },
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Recompute every hash chain; non-zero exit and the first broken row on tampering.
    Verify {
        #[arg(long)]
        account: Option<String>,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    railyard::telemetry::init();
    let cli = Cli::parse();
    let settings = match railyard::config::Settings::from_env() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => commands::serve(settings).await,
        Command::Worker => commands::worker(settings).await,
        Command::Migrate => commands::migrate(settings).await,
        Command::Account { command: AccountCommand::Add { slug, name } } => commands::account_add(settings, &slug, &name).await,
        Command::Org { command: OrgCommand::Add { account, slug, name } } => commands::org_add(settings, &account, &slug, &name).await,
        Command::User { command: UserCommand::Add { account, email, name, role, org, password_stdin: _ } } => {
            commands::user_add(settings, &account, &email, &name, &role, org.as_deref()).await
        }
        Command::Token { command: TokenCommand::Create { email, name, expires_in } } => {
            commands::token_create(settings, &email, &name, expires_in.as_deref()).await
        }
        Command::Token { command: TokenCommand::List { email } } => commands::token_list(settings, &email).await,
        Command::Token { command: TokenCommand::Revoke { id } } => commands::token_revoke(settings, id).await,
        Command::SeedDemo { weeks, ci, scale: commands::Scale::Demo } => {
            commands::seed_demo(settings, railyard::seed::DemoOptions { ci_address: ci, weeks }).await
        }
        Command::SeedDemo { scale: commands::Scale::Large, .. } => commands::seed_large(settings).await,
        Command::DemoCi { address, speed } => {
            railyard::demo_ci::serve(&address, speed, &settings.base_url).await.map(|_| ExitCode::SUCCESS)
        }
        Command::Audit { command: AuditCommand::Verify { account } } => commands::audit_verify(settings, account.as_deref()).await,
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
