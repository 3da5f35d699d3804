//! Log-in (argon2id, throttled per e-mail and per client address) and log-out. Each outcome is
//! one transaction with its audit event; failures for unknown e-mails go to the server log only,
//! so anonymous callers cannot grow the audit trail with them.

use chrono::{DateTime, TimeDelta, Utc};
use diesel_async::{AsyncConnection, AsyncPgConnection};
use serde_json::json;

use crate::db::audit::{self, NewEvent};
use crate::db::models::users::{self as rows, User, THROTTLE_MAX_PER_ADDRESS, THROTTLE_MAX_PER_EMAIL, THROTTLE_WINDOW_MINUTES};
use crate::ops::OpError;

/// How a log-in attempt ended.
#[derive(Debug)]
pub enum LogIn {
    /// A new server-side session; the token goes into the signed cookie.
    Session { token: String },
    /// Wrong e-mail or password, or a disabled user: the page says only that.
    Refused,
    /// Too many recent failures for this e-mail or client.
    Throttled { retry_after_seconds: i64 },
}

/// Counts and reserves one password guess atomically: a failure is recorded before the password
/// is checked (the caller clears failures on success), so N parallel tries get at most the
/// allowed guesses. `Throttled` when the e-mail or client has no guesses left.
pub async fn reserve_guess(conn: &mut AsyncPgConnection, email: &str, client: &str, now: DateTime<Utc>) -> Result<(), OpError> {
    match reserve(conn, email, client, now).await? {
        Ok(()) => Ok(()),
        Err(retry_after_seconds) => Err(OpError::Throttled { retry_after_seconds }),
    }
}

async fn reserve(conn: &mut AsyncPgConnection, email: &str, client: &str, now: DateTime<Utc>) -> Result<Result<(), i64>, OpError> {
    conn.transaction(async |conn| {
        rows::lock_login(conn, email, client).await?;
        let (email_failures, addr_failures, oldest) = rows::recent_failures(conn, email, client, now).await?;
        if email_failures >= THROTTLE_MAX_PER_EMAIL || addr_failures >= THROTTLE_MAX_PER_ADDRESS {
            let window = TimeDelta::minutes(THROTTLE_WINDOW_MINUTES);
            return Ok::<_, OpError>(Err(oldest.map_or(window.num_seconds(), |t| (t + window - now).num_seconds().max(1))));
        }
        rows::record_failure(conn, email, client, now).await?;
        Ok(Ok(()))
    })
    .await
}

/// `sso_account`: the account the operator's identity provider serves, if any; only there can
/// single sign-on be required.
pub async fn log_in(
    conn: &mut AsyncPgConnection,
    (email, password): (&str, &str),
    client: &str,
    sso_account: Option<&str>,
    now: DateTime<Utc>,
) -> Result<LogIn, OpError> {
    if let Err(retry_after_seconds) = reserve(conn, email, client, now).await? {
        throttled(conn, email, client, retry_after_seconds, now).await?;
        return Ok(LogIn::Throttled { retry_after_seconds });
    }
    let user = User::by_email(conn, email).await?;
    // Every refusal — wrong password, disabled, SSO required, a user made by SSO, an unknown
    // e-mail — does the same hash work and gets the same answer: none tells what exists or
    // whether the password was right.
    let verified = crate::security::verify_password(password.to_string(), user.as_ref().map(|u| u.password_hash.clone())).await;
    let sso_required = match &user {
        Some(u) => {
            let settings = crate::db::models::accounts::AccountSettings::get(conn, u.account_id).await?;
            let served = match sso_account {
                Some(a) => a == crate::db::models::accounts::slug_of(conn, u.account_id).await?,
                None => false,
            };
            let required = settings.sso_required && served;
            !crate::domain::sso::password_allowed(required, &settings.sso_break_glass, &u.email)
        }
        None => false,
    };
    match user {
        Some(user) if verified && user.disabled_at.is_none() && !sso_required => {
            let token = conn
                .transaction(async |conn| {
                    rows::clear_failures(conn, email).await?;
                    let (token, _csrf) = rows::create_session(conn, &user, now).await?;
                    let actor = format!("user:{}", user.email);
                    audit::append(conn, NewEvent::account(user.account_id, actor.clone(), "login.success", actor), now).await?;
                    Ok::<_, OpError>(token)
                })
                .await?;
            Ok(LogIn::Session { token })
        }
        Some(u) => {
            let why = match (verified, sso_required) {
                (_, true) => "sso_required",
                (true, false) => "disabled",
                (false, false) => "wrong_password",
            };
            let event = NewEvent::account(u.account_id, format!("client:{client}"), "login.failed", format!("user:{}", u.email))
                .with_details(json!({"reason": why}));
            conn.transaction(async |conn| audit::append(conn, event, now).await).await?;
            Ok(LogIn::Refused)
        }
        None => {
            tracing::info!(email = %email, client = %client, "log-in failed for an unknown e-mail");
            Ok(LogIn::Refused)
        }
    }
}

/// A throttled try reaches the audit at most once per window per e-mail (anonymous callers
/// must not grow the append-only trail); unknown e-mails go to the server log only.
async fn throttled(
    conn: &mut AsyncPgConnection,
    email: &str,
    client: &str,
    retry_after_seconds: i64,
    now: DateTime<Utc>,
) -> Result<(), OpError> {
    let Some(u) = User::by_email(conn, email).await? else {
        tracing::warn!(email = %email, client = %client, "log-in throttled for an unknown e-mail");
        return Ok(());
    };
    let subject = format!("user:{}", u.email);
    let since = now - TimeDelta::minutes(THROTTLE_WINDOW_MINUTES);
    conn.transaction(async |conn| {
        rows::lock_login(conn, email, client).await?;
        if audit::recorded_since(conn, u.account_id, "login.throttled", &subject, since).await? {
            tracing::info!(email = %email, client = %client, "log-in throttled again (already audited in this window)");
            return Ok(());
        }
        let event = NewEvent::account(u.account_id, format!("client:{client}"), "login.throttled", subject)
            .with_details(json!({"retry_after_seconds": retry_after_seconds}));
        audit::append(conn, event, now).await?;
        Ok::<_, OpError>(())
    })
    .await
}

/// Ends a server-side session (if there is one) and records the log-out.
pub async fn log_out(
    conn: &mut AsyncPgConnection,
    (account_id, email): (i64, &str),
    session_token: Option<&str>,
    now: DateTime<Utc>,
) -> Result<(), OpError> {
    conn.transaction(async |conn| {
        if let Some(token) = session_token {
            rows::revoke_session(conn, token, now).await?;
        }
        let who = format!("user:{email}");
        audit::append(conn, NewEvent::account(account_id, who.clone(), "logout", who), now).await?;
        Ok(())
    })
    .await
}
