//! PostgreSQL access: the pool, embedded migrations (run under a lock), the audit chain, waking
//! the workers, and row types that own their queries (`models`).

pub mod audit;
pub mod audit_search;
pub mod dashboard;
pub mod engine;
pub mod engine_holds;
pub mod gauges;
pub mod locks;
pub mod models;
pub mod prepared;
pub mod release_page;
pub mod reminders;
pub mod reports;
pub mod schema;
pub mod seed;
pub mod statements;
pub mod wake;

use anyhow::Context;
use diesel::Connection;
use diesel_async::async_connection_wrapper::AsyncConnectionWrapper;
use diesel_async::pooled_connection::deadpool::{Object, Pool};
use diesel_async::pooled_connection::{AsyncDieselConnectionManager, ManagerConfig, RecyclingMethod};
use diesel_async::{AsyncConnection, AsyncPgConnection};
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};

/// PostgreSQL refuses to store NUL in text (`invalid byte sequence … 0x00`) and in jsonb
/// (`unsupported Unicode escape sequence`): the input was wrong, not the server.
pub fn is_unstorable_text(e: &diesel::result::Error) -> bool {
    match e {
        diesel::result::Error::DatabaseError(_, info) => {
            let m = info.message();
            m.contains("0x00") || m.contains("unsupported Unicode escape sequence")
        }
        _ => false,
    }
}

pub const UNSTORABLE_TEXT: &str = "Text may not contain NUL characters (U+0000).";

pub type DbPool = Pool<AsyncPgConnection>;
pub type DbConn = Object<AsyncPgConnection>;

pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations");

/// Any fixed number works; it only has to be the same on every server.
const MIGRATION_LOCK_KEY: i64 = 0x5241_494c_5941_5244; // "RAILYARD"

/// The pool: a request waits at most `wait` for a free connection (then the caller answers 503
/// rather than hang), and opening a connection gives up after 5 s (PostgreSQL down or restarting).
pub fn build_pool(database_url: &str, max_size: usize, wait: std::time::Duration) -> anyhow::Result<DbPool> {
    let mut config = ManagerConfig::<AsyncPgConnection>::default();
    // A closed connection is already refused by the pool (`is_broken`); a `SELECT 1` before
    // every checkout would cost each request a round trip for nothing.
    config.recycling_method = RecyclingMethod::Fast;
    config.custom_setup = Box::new(|url| {
        Box::pin(async move {
            let mut conn = <AsyncPgConnection as AsyncConnection>::establish(url).await?;
            conn.set_instrumentation(statements::StatementCounter);
            Ok(conn)
        })
    });
    let manager = AsyncDieselConnectionManager::<AsyncPgConnection>::new_with_config(database_url, config);
    Pool::builder(manager)
        .max_size(max_size)
        .wait_timeout(Some(wait))
        .create_timeout(Some(std::time::Duration::from_secs(5)))
        .recycle_timeout(Some(std::time::Duration::from_secs(5)))
        .runtime(deadpool::Runtime::Tokio1)
        .build()
        .context("building the database pool")
}

/// Runs pending migrations on a dedicated connection holding a session advisory lock, so
/// several servers starting at once migrate exactly once. The connection is closed after.
pub async fn run_migrations(database_url: &str) -> anyhow::Result<()> {
    let url = database_url.to_string();
    tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
        use diesel::RunQueryDsl;
        let mut conn = <AsyncConnectionWrapper<AsyncPgConnection> as Connection>::establish(&url)
            .with_context(|| format!("connecting to PostgreSQL at {}", redact_url(&url)))?;
        diesel::sql_query(format!("SELECT pg_advisory_lock({MIGRATION_LOCK_KEY})")).execute(&mut conn)?;
        let result = conn.run_pending_migrations(MIGRATIONS).map(|applied| applied.len());
        diesel::sql_query(format!("SELECT pg_advisory_unlock({MIGRATION_LOCK_KEY})")).execute(&mut conn)?;
        let applied = result.map_err(|e| anyhow::anyhow!(e).context("running migrations"))?;
        if applied > 0 {
            tracing::info!(applied, "database migrations applied");
        }
        Ok(())
    })
    .await
    .context("migration task")?
}

/// Hides the password of a connection URL for messages.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let creds = &url[scheme + 3..at];
            match creds.find(':') {
                Some(colon) => format!("{}{}:***{}", &url[..scheme + 3], &creds[..colon], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

/// `SELECT 1`: the database answers.
pub async fn ping(conn: &mut AsyncPgConnection) -> diesel::QueryResult<usize> {
    use diesel_async::RunQueryDsl;
    diesel::sql_query("SELECT 1").execute(conn).await
}

/// The key that signs cookies: `RAILYARD_SECRET_KEY`, or outside production a development key
/// generated once and kept in the database (shared by every server on it).
pub async fn secret_key(
    conn: &mut AsyncPgConnection,
    configured: Option<Vec<u8>>,
    now: chrono::DateTime<chrono::Utc>,
) -> anyhow::Result<Vec<u8>> {
    use diesel::prelude::*;
    use diesel_async::RunQueryDsl;
    use schema::app_secrets::dsl as s;
    if let Some(key) = configured {
        return Ok(key);
    }
    diesel::insert_into(s::app_secrets)
        .values((s::name.eq("development_secret_key"), s::value.eq(crate::security::random_bytes(64)), s::created_at.eq(now)))
        .on_conflict_do_nothing()
        .execute(conn)
        .await?;
    let key: Vec<u8> = s::app_secrets.filter(s::name.eq("development_secret_key")).select(s::value).first(conn).await?;
    tracing::warn!("RAILYARD_SECRET_KEY is not set: using the development key kept in the database (set it in production)");
    Ok(key)
}

#[cfg(test)]
mod tests {
    #[test]
    fn redacts_passwords() {
        assert_eq!(super::redact_url("postgres://u:secret@h/db"), "postgres://u:***@h/db");
        assert_eq!(super::redact_url("postgres://root@%2Fvar/db"), "postgres://root@%2Fvar/db");
    }
}
