//! API tokens: their owner creates (named, optionally expiring), lists and revokes them; the
//! operator lists and revokes any from the CLI. Each change is one transaction with its audit event.

use chrono::{DateTime, Utc};
use diesel_async::{AsyncConnection, AsyncPgConnection};
use serde_json::json;

use super::{Actor, OpError};
use crate::db::audit::{self, NewEvent};
use crate::db::models::api_tokens::{self, ApiToken};
use crate::db::models::users::User;
use crate::domain::validate::{self, FieldErrors};

/// What the owner types: a name and, optionally, when the token stops working (a date, read as
/// the end of that day in the owner's time zone, or an RFC 3339 time).
#[derive(Debug, Clone, Default, serde::Deserialize, utoipa::ToSchema)]
#[serde(default)]
pub struct TokenInput {
    pub name: String,
    pub expires_at: Option<String>,
}

/// A token just created: the plain text is shown this once.
#[derive(Debug)]
pub struct CreatedToken {
    pub row: ApiToken,
    pub token: String,
}

fn parse(input: &TokenInput, zone: &str, now: DateTime<Utc>) -> Result<(String, Option<DateTime<Utc>>), OpError> {
    let mut errors = FieldErrors::new();
    let name = validate::name(&input.name).map_err(|m| errors.add("name", m)).ok();
    let zone: chrono_tz::Tz = zone.parse().unwrap_or(chrono_tz::UTC);
    let expires_at = match input.expires_at.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
        None => None,
        Some(text) => match crate::domain::schedule::parse_bound(text, zone, true) {
            Ok(t) if t <= now => {
                errors.add("expires_at", "must be in the future");
                None
            }
            Ok(t) => Some(t),
            Err(m) => {
                errors.add("expires_at", m);
                None
            }
        },
    };
    match name {
        Some(name) if errors.is_empty() => Ok((name, expires_at)),
        _ => Err(OpError::Invalid(errors)),
    }
}

/// Creates a token for the actor itself.
pub async fn create_own(
    conn: &mut AsyncPgConnection,
    actor: &Actor,
    time_zone: &str,
    input: &TokenInput,
    now: DateTime<Utc>,
) -> Result<CreatedToken, OpError> {
    let user_id = actor.user_id.ok_or(OpError::NotFound)?;
    let (name, expires_at) = parse(input, time_zone, now)?;
    let account_id = actor.account_id;
    conn.transaction(async |conn| {
        let user = User::find(conn, account_id, user_id).await?;
        create_audited(conn, &actor.label, &user, &name, expires_at, now).await
    })
    .await
}

/// Creates a token for a user named by e-mail (the operator's CLI).
pub async fn create_for(
    conn: &mut AsyncPgConnection,
    email: &str,
    name: &str,
    expires_at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Result<CreatedToken, OpError> {
    let name = validate::name(name).map_err(|m| OpError::invalid("name", m))?;
    conn.transaction(async |conn| {
        let user = User::by_email(conn, email).await?.ok_or(OpError::NotFound)?;
        if user.disabled_at.is_some() {
            return Err(OpError::invalid("email", format!("{} is disabled; enable the user before creating a token", user.email)));
        }
        create_audited(conn, "system:cli", &user, &name, expires_at, now).await
    })
    .await
}

async fn create_audited(
    conn: &mut AsyncPgConnection,
    actor_label: &str,
    user: &User,
    name: &str,
    expires_at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Result<CreatedToken, OpError> {
    let (row, token) = api_tokens::create(conn, user.account_id, user.id, name, expires_at, now).await?;
    audit::append(
        conn,
        NewEvent::account(user.account_id, actor_label, "token.create", format!("user:{}", user.email))
            .with_details(json!({"token_id": row.id, "name": name, "expires_at": expires_at})),
        now,
    )
    .await?;
    Ok(CreatedToken { row, token })
}

/// The actor's own tokens, newest first.
pub async fn list_own(conn: &mut AsyncPgConnection, actor: &Actor) -> Result<Vec<ApiToken>, OpError> {
    let user_id = actor.user_id.ok_or(OpError::NotFound)?;
    Ok(api_tokens::of_user(conn, actor.account_id, user_id).await?)
}

/// The tokens of a user named by e-mail (the operator's CLI).
pub async fn list_for(conn: &mut AsyncPgConnection, email: &str) -> Result<(User, Vec<ApiToken>), OpError> {
    let user = User::by_email(conn, email).await?.ok_or(OpError::NotFound)?;
    let tokens = api_tokens::of_user(conn, user.account_id, user.id).await?;
    Ok((user, tokens))
}

/// Revokes one of the actor's own tokens; another user's token is not found. Revoking a token
/// twice is harmless and audited once.
pub async fn revoke_own(conn: &mut AsyncPgConnection, actor: &Actor, token_id: i64, now: DateTime<Utc>) -> Result<(), OpError> {
    let user_id = actor.user_id.ok_or(OpError::NotFound)?;
    conn.transaction(async |conn| {
        let row = api_tokens::find(conn, token_id).await?.filter(|t| t.user_id == user_id && t.account_id == actor.account_id);
        let row = row.ok_or(OpError::NotFound)?;
        revoke_audited(conn, &actor.label, &row, now).await
    })
    .await
}

/// Revokes any token by id (the operator's CLI); the owner's e-mail for the message.
pub async fn revoke_any(conn: &mut AsyncPgConnection, token_id: i64, now: DateTime<Utc>) -> Result<String, OpError> {
    conn.transaction(async |conn| {
        let row = api_tokens::find(conn, token_id).await?.ok_or(OpError::NotFound)?;
        let owner = User::find(conn, row.account_id, row.user_id).await?;
        revoke_audited(conn, "system:cli", &row, now).await?;
        Ok(owner.email)
    })
    .await
}

async fn revoke_audited(conn: &mut AsyncPgConnection, actor_label: &str, row: &ApiToken, now: DateTime<Utc>) -> Result<(), OpError> {
    if api_tokens::revoke(conn, row.id, now).await? == 0 {
        return Ok(());
    }
    audit::append(
        conn,
        NewEvent::account(row.account_id, actor_label, "token.revoke", format!("token:{}", row.id)).with_details(json!({"name": row.name})),
        now,
    )
    .await?;
    Ok(())
}
