//! Users, their roles and passwords.

use chrono::{DateTime, Utc};
use diesel_async::{AsyncConnection, AsyncPgConnection};
use serde_json::json;

use super::{duplicate, Actor, OpError};
use crate::db::audit::{self, NewEvent};
use crate::db::models::accounts::Organization;
use crate::db::models::api_tokens;
use crate::db::models::users::{self as rows, User};
use crate::domain::policy::{OrgRule, Role};
use crate::domain::rule::RuleCode;
use crate::domain::validate::{self, FieldErrors};

#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(default)]
pub struct NewUserInput {
    pub email: String,
    pub name: String,
    pub password: String,
    pub role: String,
    pub org: String,
}

/// Checks a role name and its org (by slug) against the role's org rule.
pub async fn parse_role(
    conn: &mut AsyncPgConnection,
    account_id: i64,
    role: &str,
    org: &str,
    errors: &mut FieldErrors,
) -> Option<(Role, Option<i64>)> {
    let role = role.trim();
    let org = org.trim();
    let Some(parsed) = Role::parse(role) else {
        let known: Vec<&str> = Role::ALL.iter().map(|r| r.as_str()).collect();
        if role.is_empty() {
            errors.add("role", "is required");
        } else {
            errors.add("role", format!("{role:?} is not a role; use one of {}", known.join(", ")));
        }
        return None;
    };
    match (parsed.org_rule(), org.is_empty()) {
        (OrgRule::Required, true) => {
            errors.add("org", format!("{role} needs an organization"));
            None
        }
        (OrgRule::Forbidden, false) => {
            errors.add("org", format!("{role} is account-wide and takes no organization"));
            None
        }
        (_, true) => Some((parsed, None)),
        (_, false) => match Organization::by_slug(conn, account_id, org).await {
            Ok(o) => Some((parsed, Some(o.id))),
            Err(diesel::result::Error::NotFound) => {
                errors.add("org", format!("there is no organization {org:?}"));
                None
            }
            Err(_) => {
                errors.add("org", "could not be checked; try again");
                None
            }
        },
    }
}

pub async fn create_user(conn: &mut AsyncPgConnection, actor: &Actor, input: &NewUserInput, now: DateTime<Utc>) -> Result<User, OpError> {
    let mut errors = FieldErrors::new();
    let email = errors.check("email", validate::email(&input.email));
    let name = errors.check("name", validate::name(&input.name));
    let password = errors.check("password", validate::password(&input.password));
    let role = parse_role(conn, actor.account_id, &input.role, &input.org, &mut errors).await;
    let (Some(email), Some(name), Some(password), Some((role, org_id))) = (email, name, password, role) else {
        return Err(OpError::Invalid(errors));
    };
    let hash = crate::security::hash_password(password)
        .await
        .map_err(|e| OpError::Unexpected(anyhow::Error::new(e).context("hashing a password")))?;
    let account_id = actor.account_id;
    conn.transaction(async |conn| {
        let user = User::create(conn, account_id, &email, &name, &hash, now)
            .await
            .map_err(|e| duplicate(e, "email", || format!("{email} already has an account")))?;
        rows::add_binding(conn, account_id, user.id, role, org_id, now).await?;
        audit::append(
            conn,
            NewEvent::account(account_id, &actor.label, "user.create", format!("user:{email}"))
                .with_details(json!({"name": name, "role": role.as_str(), "org": input.org.trim()})),
            now,
        )
        .await?;
        Ok(user)
    })
    .await
}

pub async fn set_disabled(
    conn: &mut AsyncPgConnection,
    actor: &Actor,
    user_id: i64,
    disabled: bool,
    now: DateTime<Utc>,
) -> Result<User, OpError> {
    let account_id = actor.account_id;
    conn.transaction(async |conn| {
        let user = User::find(conn, account_id, user_id).await?;
        if disabled && actor.user_id == Some(user.id) {
            return Err(OpError::Rule { code: RuleCode::SelfDisable, message: "You cannot disable your own account.".into(), field: None });
        }
        User::set_disabled(conn, account_id, user.id, disabled.then_some(now), now).await?;
        if disabled {
            // Revocation is a row change, so every server refuses the sessions at their next request.
            rows::revoke_user_sessions(conn, user.id, now).await?;
            api_tokens::revoke_all_of_user(conn, user.id, now).await?;
        }
        let action = if disabled { "user.disable" } else { "user.enable" };
        audit::append(conn, NewEvent::account(account_id, &actor.label, action, format!("user:{}", user.email)), now).await?;
        Ok(user)
    })
    .await
}

/// An admin sets a new password: every session and API token of that user ends.
pub async fn reset_password(
    conn: &mut AsyncPgConnection,
    actor: &Actor,
    user_id: i64,
    password: &str,
    now: DateTime<Utc>,
) -> Result<(), OpError> {
    let password = validate::password(password).map_err(|m| OpError::invalid("password", m))?;
    let hash = crate::security::hash_password(password)
        .await
        .map_err(|e| OpError::Unexpected(anyhow::Error::new(e).context("hashing a password")))?;
    let account_id = actor.account_id;
    conn.transaction(async |conn| {
        let user = User::find(conn, account_id, user_id).await?;
        User::set_password_hash(conn, user.id, &hash, now).await?;
        rows::revoke_user_sessions(conn, user.id, now).await?;
        // A reset answers a suspected compromise: the API tokens end with the sessions.
        api_tokens::revoke_all_of_user(conn, user.id, now).await?;
        audit::append(conn, NewEvent::account(account_id, &actor.label, "user.password_reset", format!("user:{}", user.email)), now)
            .await?;
        Ok(())
    })
    .await
}

pub async fn add_role(
    conn: &mut AsyncPgConnection,
    actor: &Actor,
    user_id: i64,
    role: &str,
    org: &str,
    now: DateTime<Utc>,
) -> Result<(), OpError> {
    let mut errors = FieldErrors::new();
    let parsed = parse_role(conn, actor.account_id, role, org, &mut errors).await;
    let Some((role, org_id)) = parsed else { return Err(OpError::Invalid(errors)) };
    let account_id = actor.account_id;
    conn.transaction(async |conn| {
        let user = User::find(conn, account_id, user_id).await?;
        let added = rows::add_binding(conn, account_id, user.id, role, org_id, now).await?;
        if added == 0 {
            return Err(OpError::Duplicate { field: "role", message: format!("{} already has this role", user.email) });
        }
        audit::append(
            conn,
            NewEvent::account(account_id, &actor.label, "user.role_add", format!("user:{}", user.email))
                .with_details(json!({"role": role.as_str(), "org": org.trim()})),
            now,
        )
        .await?;
        Ok(())
    })
    .await
}

pub async fn remove_role(conn: &mut AsyncPgConnection, actor: &Actor, binding_id: i64, now: DateTime<Utc>) -> Result<(), OpError> {
    let account_id = actor.account_id;
    conn.transaction(async |conn| {
        let Some((user_id, role)) = rows::remove_binding(conn, account_id, binding_id).await? else {
            return Err(OpError::NotFound);
        };
        if role == "account_admin" && rows::count_admins(conn, account_id).await? == 0 {
            return Err(OpError::Rule {
                code: RuleCode::LastAdmin,
                message: "The account needs at least one active account admin.".into(),
                field: None,
            });
        }
        let user = User::find(conn, account_id, user_id).await?;
        audit::append(
            conn,
            NewEvent::account(account_id, &actor.label, "user.role_remove", format!("user:{}", user.email))
                .with_details(json!({"role": role})),
            now,
        )
        .await?;
        Ok(())
    })
    .await
}

#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(default)]
pub struct ProfileInput {
    pub name: String,
    pub time_zone: String,
}

pub async fn update_profile(conn: &mut AsyncPgConnection, actor: &Actor, input: &ProfileInput, now: DateTime<Utc>) -> Result<(), OpError> {
    let mut errors = FieldErrors::new();
    let name = errors.check("name", validate::name(&input.name));
    let zone = if input.time_zone.trim().is_empty() {
        Some(None)
    } else {
        errors.check("time_zone", validate::time_zone(&input.time_zone)).map(Some)
    };
    let (Some(name), Some(zone)) = (name, zone) else { return Err(OpError::Invalid(errors)) };
    let user_id = actor.user_id.ok_or(OpError::NotFound)?;
    conn.transaction(async |conn| {
        User::update_profile(conn, user_id, &name, zone.as_deref(), now).await?;
        audit::append(
            conn,
            NewEvent::account(actor.account_id, &actor.label, "user.profile_update", actor.label.clone())
                .with_details(json!({"name": name, "time_zone": zone})),
            now,
        )
        .await?;
        Ok(())
    })
    .await
}

#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(default)]
pub struct PasswordChangeInput {
    pub current_password: String,
    pub new_password: String,
    pub confirm_password: String,
}

/// Changes one's own password; every session ends, and the caller starts a fresh one.
pub async fn change_password(
    conn: &mut AsyncPgConnection,
    actor: &Actor,
    input: &PasswordChangeInput,
    now: DateTime<Utc>,
) -> Result<User, OpError> {
    let user_id = actor.user_id.ok_or(OpError::NotFound)?;
    let user = User::find(conn, actor.account_id, user_id).await?;
    let mut errors = FieldErrors::new();
    let new = errors.check("new_password", validate::password(&input.new_password));
    if input.new_password != input.confirm_password {
        errors.add("confirm_password", "does not match the new password");
    }
    // Guessing the current password here counts with log-in failures for the same e-mail.
    let client = format!("password-change:{}", user.id);
    crate::ops::sessions::reserve_guess(conn, &user.email, &client, now).await?;
    if crate::security::verify_password(input.current_password.clone(), Some(user.password_hash.clone())).await {
        rows::clear_failures(conn, &user.email).await?;
    } else {
        errors.add("current_password", "is not your current password");
    }
    let Some(new) = new.filter(|_| errors.is_empty()) else { return Err(OpError::Invalid(errors)) };
    let hash =
        crate::security::hash_password(new).await.map_err(|e| OpError::Unexpected(anyhow::Error::new(e).context("hashing a password")))?;
    conn.transaction(async |conn| {
        User::set_password_hash(conn, user.id, &hash, now).await?;
        rows::revoke_user_sessions(conn, user.id, now).await?;
        audit::append(conn, NewEvent::account(actor.account_id, &actor.label, "user.password_change", actor.label.clone()), now).await?;
        Ok(user.clone())
    })
    .await
}
