//! API tokens: only the SHA-256 is kept; the plain text is shown once, when created.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use crate::db::schema::api_tokens;
use crate::security::sha256_hex;

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = api_tokens)]
pub struct ApiToken {
    pub id: i64,
    pub account_id: i64,
    pub user_id: i64,
    pub name: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

impl ApiToken {
    /// Usable now: neither revoked nor expired.
    pub fn is_active(&self, now: DateTime<Utc>) -> bool {
        self.revoked_at.is_none() && self.expires_at.is_none_or(|t| t > now)
    }

    /// `active`, `expired` or `revoked`, as the profile and the CLI list it.
    pub fn state(&self, now: DateTime<Utc>) -> &'static str {
        match (self.revoked_at, self.is_active(now)) {
            (Some(_), _) => "revoked",
            (None, true) => "active",
            (None, false) => "expired",
        }
    }
}

/// Creates a token and returns the row and its plain text.
pub async fn create(
    conn: &mut AsyncPgConnection,
    account_id: i64,
    user_id: i64,
    name: &str,
    expires_at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> QueryResult<(ApiToken, String)> {
    let token = format!("ry_{}", crate::security::random_token(32));
    let row = diesel::insert_into(api_tokens::table)
        .values((
            api_tokens::account_id.eq(account_id),
            api_tokens::user_id.eq(user_id),
            api_tokens::token_hash.eq(sha256_hex(&token)),
            api_tokens::name.eq(name),
            api_tokens::created_at.eq(now),
            api_tokens::expires_at.eq(expires_at),
        ))
        .returning(ApiToken::as_returning())
        .get_result(conn)
        .await?;
    Ok((row, token))
}

/// The user's tokens, newest first, revoked ones included (the list shows when they ended).
pub async fn of_user(conn: &mut AsyncPgConnection, account_id: i64, user_id: i64) -> QueryResult<Vec<ApiToken>> {
    api_tokens::table
        .filter(api_tokens::account_id.eq(account_id))
        .filter(api_tokens::user_id.eq(user_id))
        .order(api_tokens::id.desc())
        .select(ApiToken::as_select())
        .load(conn)
        .await
}

pub async fn find(conn: &mut AsyncPgConnection, id: i64) -> QueryResult<Option<ApiToken>> {
    api_tokens::table.find(id).select(ApiToken::as_select()).first(conn).await.optional()
}

/// Revokes one token if it is not revoked yet; the number of rows changed.
pub async fn revoke(conn: &mut AsyncPgConnection, id: i64, now: DateTime<Utc>) -> QueryResult<usize> {
    diesel::update(api_tokens::table.find(id).filter(api_tokens::revoked_at.is_null()))
        .set(api_tokens::revoked_at.eq(now))
        .execute(conn)
        .await
}

/// Revokes every token of a user (password reset, disabled user).
pub async fn revoke_all_of_user(conn: &mut AsyncPgConnection, user_id: i64, now: DateTime<Utc>) -> QueryResult<usize> {
    diesel::update(api_tokens::table.filter(api_tokens::user_id.eq(user_id)).filter(api_tokens::revoked_at.is_null()))
        .set(api_tokens::revoked_at.eq(now))
        .execute(conn)
        .await
}
