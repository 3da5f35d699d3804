//! Users, role bindings, sessions, API tokens and log-in failures.

use chrono::{DateTime, TimeDelta, Utc};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Jsonb, Nullable, Text, Timestamptz};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde::Deserialize;

use crate::db::prepared::prepared;
use crate::db::schema::{login_failures, organizations, role_bindings, sessions, users};
use crate::domain::policy::{Binding, Role};
use crate::security::sha256_hex;

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = users)]
pub struct User {
    pub id: i64,
    pub account_id: i64,
    pub email: String,
    pub name: String,
    pub password_hash: String,
    pub time_zone: Option<String>,
    pub disabled_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl User {
    pub async fn create(
        conn: &mut AsyncPgConnection,
        account_id: i64,
        email: &str,
        name: &str,
        password_hash: &str,
        now: DateTime<Utc>,
    ) -> QueryResult<User> {
        diesel::insert_into(users::table)
            .values((
                users::account_id.eq(account_id),
                users::email.eq(email),
                users::name.eq(name),
                users::password_hash.eq(password_hash),
                users::created_at.eq(now),
                users::updated_at.eq(now),
            ))
            .returning(User::as_returning())
            .get_result(conn)
            .await
    }

    /// E-mails are unique across the installation, compared case-insensitively.
    pub async fn by_email(conn: &mut AsyncPgConnection, email: &str) -> QueryResult<Option<User>> {
        users::table.filter(users::email.eq(email.trim().to_ascii_lowercase())).select(User::as_select()).first(conn).await.optional()
    }

    pub async fn find(conn: &mut AsyncPgConnection, account_id: i64, id: i64) -> QueryResult<User> {
        users::table.filter(users::account_id.eq(account_id)).filter(users::id.eq(id)).select(User::as_select()).first(conn).await
    }

    pub async fn list(conn: &mut AsyncPgConnection, account_id: i64) -> QueryResult<Vec<User>> {
        users::table.filter(users::account_id.eq(account_id)).order(users::email).select(User::as_select()).load(conn).await
    }

    /// The e-mails of these users of the account, as (id, e-mail).
    pub async fn emails_by_ids(conn: &mut AsyncPgConnection, account_id: i64, ids: &[i64]) -> QueryResult<Vec<(i64, String)>> {
        users::table
            .filter(users::account_id.eq(account_id))
            .filter(users::id.eq_any(ids))
            .select((users::id, users::email))
            .load(conn)
            .await
    }

    /// Looks up active users of the account by e-mail; returns (found ids, missing e-mails).
    pub async fn ids_by_emails(conn: &mut AsyncPgConnection, account_id: i64, emails: &[String]) -> QueryResult<(Vec<i64>, Vec<String>)> {
        let lowered: Vec<String> = emails.iter().map(|e| e.trim().to_ascii_lowercase()).collect();
        let found: Vec<(i64, String)> = users::table
            .filter(users::account_id.eq(account_id))
            .filter(users::email.eq_any(&lowered))
            .select((users::id, users::email))
            .load(conn)
            .await?;
        let missing = lowered.iter().filter(|e| !found.iter().any(|(_, f)| f == *e)).cloned().collect();
        Ok((found.into_iter().map(|(id, _)| id).collect(), missing))
    }

    pub async fn set_disabled(
        conn: &mut AsyncPgConnection,
        account_id: i64,
        id: i64,
        disabled_at: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> QueryResult<usize> {
        diesel::update(users::table.filter(users::account_id.eq(account_id)).filter(users::id.eq(id)))
            .set((users::disabled_at.eq(disabled_at), users::updated_at.eq(now)))
            .execute(conn)
            .await
    }

    pub async fn set_password_hash(conn: &mut AsyncPgConnection, id: i64, hash: &str, now: DateTime<Utc>) -> QueryResult<usize> {
        diesel::update(users::table.find(id)).set((users::password_hash.eq(hash), users::updated_at.eq(now))).execute(conn).await
    }

    pub async fn update_profile(
        conn: &mut AsyncPgConnection,
        id: i64,
        name: &str,
        time_zone: Option<&str>,
        now: DateTime<Utc>,
    ) -> QueryResult<usize> {
        diesel::update(users::table.find(id))
            .set((users::name.eq(name), users::time_zone.eq(time_zone), users::updated_at.eq(now)))
            .execute(conn)
            .await
    }
}

#[derive(Debug, Clone, Queryable)]
pub struct RoleBindingRow {
    pub id: i64,
    pub user_id: i64,
    pub role: String,
    pub org_id: Option<i64>,
    pub org_slug: Option<String>,
}

pub async fn bindings_of_account(conn: &mut AsyncPgConnection, account_id: i64) -> QueryResult<Vec<RoleBindingRow>> {
    role_bindings::table
        .left_join(organizations::table)
        .filter(role_bindings::account_id.eq(account_id))
        .order((role_bindings::user_id, role_bindings::role))
        .select((role_bindings::id, role_bindings::user_id, role_bindings::role, role_bindings::org_id, organizations::slug.nullable()))
        .load(conn)
        .await
}

pub async fn add_binding(
    conn: &mut AsyncPgConnection,
    account_id: i64,
    user_id: i64,
    role: Role,
    org_id: Option<i64>,
    now: DateTime<Utc>,
) -> QueryResult<usize> {
    diesel::insert_into(role_bindings::table)
        .values((
            role_bindings::account_id.eq(account_id),
            role_bindings::user_id.eq(user_id),
            role_bindings::role.eq(role.as_str()),
            role_bindings::org_id.eq(org_id),
            role_bindings::created_at.eq(now),
        ))
        .on_conflict_do_nothing()
        .execute(conn)
        .await
}

pub async fn remove_binding(conn: &mut AsyncPgConnection, account_id: i64, binding_id: i64) -> QueryResult<Option<(i64, String)>> {
    diesel::delete(role_bindings::table.filter(role_bindings::account_id.eq(account_id)).filter(role_bindings::id.eq(binding_id)))
        .returning((role_bindings::user_id, role_bindings::role))
        .get_result(conn)
        .await
        .optional()
}

pub async fn count_admins(conn: &mut AsyncPgConnection, account_id: i64) -> QueryResult<i64> {
    role_bindings::table
        .inner_join(users::table)
        .filter(role_bindings::account_id.eq(account_id))
        .filter(role_bindings::role.eq("account_admin"))
        .filter(users::disabled_at.is_null())
        .count()
        .get_result(conn)
        .await
}

/// A signed-in principal as loaded by one query: user, account and every role binding.
#[derive(Debug, Clone, QueryableByName)]
pub struct AuthRow {
    #[diesel(sql_type = BigInt)]
    pub user_id: i64,
    #[diesel(sql_type = BigInt)]
    pub account_id: i64,
    #[diesel(sql_type = Text)]
    pub account_slug: String,
    #[diesel(sql_type = Text)]
    pub email: String,
    #[diesel(sql_type = Text)]
    pub name: String,
    #[diesel(sql_type = Text)]
    pub time_zone: String,
    #[diesel(sql_type = Nullable<Text>)]
    pub csrf_token: Option<String>,
    #[diesel(sql_type = Jsonb)]
    pub roles: serde_json::Value,
    #[diesel(sql_type = BigInt)]
    pub unread: i64,
    /// The database's snapshot at this statement (`ops::read_cache`: what the request may reuse).
    #[diesel(sql_type = Text)]
    pub snapshot: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct RoleJson {
    pub role: String,
    pub org_id: Option<i64>,
    pub org_slug: Option<String>,
}

impl AuthRow {
    pub fn role_list(&self) -> Vec<RoleJson> {
        serde_json::from_value(self.roles.clone()).unwrap_or_default()
    }

    pub fn bindings(&self) -> Vec<Binding> {
        self.role_list().iter().filter_map(|r| Role::parse(&r.role).map(|role| Binding { role, org: r.org_id })).collect()
    }
}

const PRINCIPAL_COLUMNS: &str = "u.id AS user_id, u.account_id, a.slug AS account_slug, u.email, u.name, \
     COALESCE(u.time_zone, a.time_zone) AS time_zone, \
     COALESCE((SELECT jsonb_agg(jsonb_build_object('role', rb.role, 'org_id', rb.org_id, 'org_slug', o.slug) ORDER BY rb.role, o.slug) \
               FROM role_bindings rb LEFT JOIN organizations o ON o.id = rb.org_id WHERE rb.user_id = u.id), '[]'::jsonb) AS roles, \
     (SELECT count(*) FROM notifications n WHERE n.user_id = u.id AND n.read_at IS NULL) AS unread, \
     pg_current_snapshot()::text AS snapshot";

/// The session row, its user (not disabled) and the user's roles, in one statement.
pub async fn principal_by_session(conn: &mut AsyncPgConnection, session_token: &str, now: DateTime<Utc>) -> QueryResult<Option<AuthRow>> {
    prepared(
        diesel::sql_query(format!(
            "SELECT {PRINCIPAL_COLUMNS}, s.csrf_token FROM sessions s JOIN users u ON u.id = s.user_id JOIN accounts a ON a.id = u.account_id \
             WHERE s.token_hash = $1 AND s.revoked_at IS NULL AND s.expires_at > $2 AND u.disabled_at IS NULL"
        ))
        .bind::<Text, _>(sha256_hex(session_token))
        .bind::<Timestamptz, _>(now),
    )
    .get_result(conn)
    .await
    .optional()
}

/// The API token (by its SHA-256; not revoked, not expired), its user (not disabled) and the
/// user's roles, in one statement.
pub async fn principal_by_api_token(conn: &mut AsyncPgConnection, token: &str, now: DateTime<Utc>) -> QueryResult<Option<AuthRow>> {
    prepared(diesel::sql_query(format!(
        "SELECT {PRINCIPAL_COLUMNS}, NULL::text AS csrf_token FROM api_tokens t JOIN users u ON u.id = t.user_id JOIN accounts a ON a.id = u.account_id \
         WHERE t.token_hash = $1 AND t.revoked_at IS NULL AND (t.expires_at IS NULL OR t.expires_at > $2) AND u.disabled_at IS NULL"
    ))
    .bind::<Text, _>(sha256_hex(token))
    .bind::<Timestamptz, _>(now))
    .get_result(conn)
    .await
    .optional()
}

pub const SESSION_LIFETIME_DAYS: i64 = 14;

/// Creates a session and returns (session token for the cookie, CSRF token).
pub async fn create_session(conn: &mut AsyncPgConnection, user: &User, now: DateTime<Utc>) -> QueryResult<(String, String)> {
    let token = crate::security::random_token(32);
    let csrf = crate::security::random_token(32);
    diesel::insert_into(sessions::table)
        .values((
            sessions::token_hash.eq(sha256_hex(&token)),
            sessions::account_id.eq(user.account_id),
            sessions::user_id.eq(user.id),
            sessions::csrf_token.eq(&csrf),
            sessions::created_at.eq(now),
            sessions::expires_at.eq(now + TimeDelta::days(SESSION_LIFETIME_DAYS)),
        ))
        .execute(conn)
        .await?;
    Ok((token, csrf))
}

pub async fn revoke_session(conn: &mut AsyncPgConnection, session_token: &str, now: DateTime<Utc>) -> QueryResult<usize> {
    diesel::update(sessions::table.find(sha256_hex(session_token)).filter(sessions::revoked_at.is_null()))
        .set(sessions::revoked_at.eq(now))
        .execute(conn)
        .await
}

pub async fn revoke_user_sessions(conn: &mut AsyncPgConnection, user_id: i64, now: DateTime<Utc>) -> QueryResult<usize> {
    diesel::update(sessions::table.filter(sessions::user_id.eq(user_id)).filter(sessions::revoked_at.is_null()))
        .set(sessions::revoked_at.eq(now))
        .execute(conn)
        .await
}

pub const THROTTLE_WINDOW_MINUTES: i64 = 15;
pub const THROTTLE_MAX_PER_EMAIL: i64 = 5;
pub const THROTTLE_MAX_PER_ADDRESS: i64 = 50;

/// Failures inside the window for this e-mail and for this client address, and the oldest
/// such e-mail failure (it decides when the e-mail may try again).
pub async fn recent_failures(
    conn: &mut AsyncPgConnection,
    email: &str,
    client_addr: &str,
    now: DateTime<Utc>,
) -> QueryResult<(i64, i64, Option<DateTime<Utc>>)> {
    let since = now - TimeDelta::minutes(THROTTLE_WINDOW_MINUTES);
    let lowered = email.trim().to_ascii_lowercase();
    let by_email: Vec<DateTime<Utc>> = login_failures::table
        .filter(login_failures::email.eq(&lowered))
        .filter(login_failures::at.gt(since))
        .order(login_failures::at.desc())
        .limit(THROTTLE_MAX_PER_EMAIL)
        .select(login_failures::at)
        .load(conn)
        .await?;
    let by_addr: i64 = login_failures::table
        .filter(login_failures::client_addr.eq(client_addr))
        .filter(login_failures::at.gt(since))
        .count()
        .get_result(conn)
        .await?;
    Ok((by_email.len() as i64, by_addr, by_email.last().copied()))
}

/// Serialises log-in attempts for one e-mail and one client address until the transaction ends,
/// so counting and recording a guess is atomic (always e-mail first, then address).
pub async fn lock_login(conn: &mut AsyncPgConnection, email: &str, client_addr: &str) -> QueryResult<()> {
    diesel::sql_query("SELECT pg_advisory_xact_lock(hashtextextended('login-email:' || $1, 0)), pg_advisory_xact_lock(hashtextextended('login-addr:' || $2, 0))")
        .bind::<diesel::sql_types::Text, _>(email.trim().to_ascii_lowercase())
        .bind::<diesel::sql_types::Text, _>(client_addr)
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn record_failure(conn: &mut AsyncPgConnection, email: &str, client_addr: &str, now: DateTime<Utc>) -> QueryResult<usize> {
    diesel::insert_into(login_failures::table)
        .values((
            login_failures::email.eq(email.trim().to_ascii_lowercase()),
            login_failures::client_addr.eq(client_addr),
            login_failures::at.eq(now),
        ))
        .execute(conn)
        .await
}

pub async fn clear_failures(conn: &mut AsyncPgConnection, email: &str) -> QueryResult<usize> {
    diesel::delete(login_failures::table.filter(login_failures::email.eq(email.trim().to_ascii_lowercase()))).execute(conn).await
}

/// A user's principal (not disabled) by id, for credentials that are not sessions or tokens
/// (calendar feeds).
pub async fn principal_by_user_id(conn: &mut AsyncPgConnection, user_id: i64) -> QueryResult<Option<AuthRow>> {
    prepared(diesel::sql_query(format!(
        "SELECT {PRINCIPAL_COLUMNS}, NULL::text AS csrf_token FROM users u JOIN accounts a ON a.id = u.account_id WHERE u.id = $1 AND u.disabled_at IS NULL"
    ))
    .bind::<BigInt, _>(user_id))
    .get_result(conn)
    .await
    .optional()
}

#[derive(QueryableByName)]
struct Standing {
    #[diesel(sql_type = diesel::sql_types::Array<diesel::sql_types::Text>)]
    groups: Vec<String>,
    #[diesel(sql_type = diesel::sql_types::Array<diesel::sql_types::BigInt>)]
    delegating_for: Vec<i64>,
}

/// In one statement: the groups a user belongs to and the approvers whose delegate they are at `now`.
pub async fn standing(conn: &mut AsyncPgConnection, user_id: i64, now: DateTime<Utc>) -> QueryResult<(Vec<String>, Vec<i64>)> {
    let row: Standing = prepared(diesel::sql_query(
        "SELECT ARRAY(SELECT g.name FROM group_members m JOIN groups g ON g.id = m.group_id WHERE m.user_id = $1) AS groups, \
                ARRAY(SELECT d.user_id FROM delegations d WHERE d.delegate_id = $1 AND d.starts_at <= $2 AND d.ends_at > $2) AS delegating_for",
    )
    .bind::<diesel::sql_types::BigInt, _>(user_id)
    .bind::<diesel::sql_types::Timestamptz, _>(now))
    .get_result(conn)
    .await?;
    Ok((row.groups, row.delegating_for))
}
