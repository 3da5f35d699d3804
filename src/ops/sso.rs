//! Log-in through the company's identity provider (DESIGN §10): the person is matched by
//! verified e-mail, created just in time when the account allows it, given the roles the
//! account's group mapping says (re-applied at each log-in), and gets the same server-side
//! session as a password log-in. Refusals of known users are audited; identities that match no
//! user go to the server log only, so that anonymous callers cannot grow the audit.

use chrono::{DateTime, Utc};
use diesel_async::{AsyncConnection, AsyncPgConnection};
use serde_json::json;

use crate::db::audit::{self, NewEvent};
use crate::db::models::accounts::{Account, AccountSettings};
use crate::db::models::sso as rows;
use crate::db::models::users::{self as user_rows, User};
use crate::domain::policy::{Binding, Role};
use crate::domain::sso::{mapped, password_allowed, protect, reconcile};
use crate::ops::OpError;

/// Who the provider says signed in: its ID token's verified claims.
#[derive(Debug, Clone)]
pub struct Identity {
    pub subject: String,
    pub email: Option<String>,
    pub email_verified: bool,
    pub name: Option<String>,
    pub groups: Vec<String>,
}

#[derive(Debug)]
pub enum SsoLogIn {
    Session {
        token: String,
    },
    /// Refused, with the sentence the log-in page shows.
    Refused(String),
}

/// The password the log-in form never matches: users made by SSO sign in only through it.
const NO_PASSWORD: &str = "!sso-only";

/// The sentence shown when an e-mail's user is bound to another identity at the provider.
const BOUND_ELSEWHERE: &str = "Your Railyard user is linked to another identity at your provider; ask your administrator.";

pub async fn log_in(
    conn: &mut AsyncPgConnection,
    (account_slug, issuer): (&str, &str),
    who: &Identity,
    now: DateTime<Utc>,
) -> Result<SsoLogIn, OpError> {
    let Some(account) = Account::by_slug(conn, account_slug).await? else {
        return Err(OpError::Unexpected(anyhow::anyhow!("RAILYARD_OIDC_ACCOUNT names no account ({account_slug:?})")));
    };
    let Some(email) = who.email.as_deref().map(|e| e.trim().to_ascii_lowercase()).filter(|e| !e.is_empty() && who.email_verified) else {
        tracing::info!(subject = %who.subject, "SSO log-in without a verified e-mail refused");
        return Ok(SsoLogIn::Refused("Your identity provider did not vouch for an e-mail address; ask your administrator.".into()));
    };
    let settings = AccountSettings::get(conn, account.id).await?;
    let mapping: Vec<_> = rows::mapping(conn, account.id).await?.iter().filter_map(|m| m.group_role()).collect();
    let wanted = mapped(&mapping, &who.groups);
    conn.transaction(async |conn| {
        let user = match User::by_email(conn, &email).await? {
            Some(u) if u.account_id == account.id => u,
            Some(_) => {
                tracing::info!(email = %email, "SSO log-in for a user of another account refused");
                return Ok(SsoLogIn::Refused("There is no Railyard user for you here; ask your administrator.".into()));
            }
            None if settings.sso_create_users => {
                let name = who.name.clone().filter(|n| !n.trim().is_empty()).unwrap_or_else(|| email.clone());
                let user = User::create(conn, account.id, &email, name.trim(), NO_PASSWORD, now).await?;
                audit::append(
                    conn,
                    NewEvent::account(account.id, "system:sso", "user.create", format!("user:{email}"))
                        .with_details(json!({"name": user.name, "via": "sso", "groups": who.groups})),
                    now,
                )
                .await?;
                user
            }
            None => {
                tracing::info!(email = %email, "SSO log-in for an unknown e-mail refused (the account creates no users)");
                return Ok(SsoLogIn::Refused("There is no Railyard user for you here; ask your administrator.".into()));
            }
        };
        let subject = format!("user:{}", user.email);
        if user.disabled_at.is_some() {
            let event = NewEvent::account(account.id, "system:sso", "login.failed", subject.clone())
                .with_details(json!({"reason": "disabled", "via": "sso"}));
            audit::append(conn, event, now).await?;
            return Ok(SsoLogIn::Refused("Your Railyard user is disabled; ask your administrator.".into()));
        }
        // After the first SSO log-in the user is bound to the provider's (issuer, subject): a
        // second identity with a verified copy of the address is not them.
        let bound = rows::identity_of(conn, user.id).await?;
        let taken_by = rows::user_bound_to(conn, account.id, issuer, &who.subject).await?;
        let mismatch = match &bound {
            Some((iss, sub)) => iss != issuer || sub != &who.subject,
            None => taken_by.is_some_and(|other| other != user.id),
        };
        if mismatch {
            let event = NewEvent::account(account.id, "system:sso", "login.failed", subject.clone())
                .with_details(json!({"reason": "another_identity", "via": "sso", "issuer": issuer, "provider_subject": who.subject}));
            audit::append(conn, event, now).await?;
            return Ok(SsoLogIn::Refused(BOUND_ELSEWHERE.into()));
        }
        if bound.is_none() {
            rows::bind_identity(conn, user.id, issuer, &who.subject).await?;
        }
        let current = rows::bindings_of(conn, user.id).await?;
        let flags: Vec<(Binding, bool)> = current.iter().map(|(_, b, from)| (*b, *from)).collect();
        let (add, remove) = reconcile(&flags, &wanted, settings.sso_roles_only_from_provider);
        let is_break_glass = password_allowed(true, &settings.sso_break_glass, &user.email);
        let holds_admin = current.iter().any(|(_, b, _)| b.role == Role::AccountAdmin && b.org.is_none());
        let is_last_admin = holds_admin && user_rows::count_admins(conn, account.id).await? <= 1;
        let remove = protect(remove, is_break_glass, is_last_admin);
        for b in &add {
            rows::add_provider_binding(conn, account.id, user.id, *b, now).await?;
        }
        for b in &remove {
            for (id, _, _) in current.iter().filter(|(_, c, _)| c == b) {
                rows::remove_binding(conn, *id).await?;
            }
        }
        if !add.is_empty() || !remove.is_empty() {
            let shown = |bs: &[Binding]| bs.iter().map(|b| json!({"role": b.role.as_str(), "org_id": b.org})).collect::<Vec<_>>();
            audit::append(
                conn,
                NewEvent::account(account.id, "system:sso", "user.roles_from_provider", subject.clone())
                    .with_details(json!({"added": shown(&add), "removed": shown(&remove), "groups": who.groups})),
                now,
            )
            .await?;
        }
        let (token, _csrf) = user_rows::create_session(conn, &user, now).await?;
        audit::append(
            conn,
            NewEvent::account(account.id, subject.clone(), "login.success", subject)
                .with_details(json!({"via": "sso", "bound_now": bound.is_none()})),
            now,
        )
        .await?;
        Ok(SsoLogIn::Session { token })
    })
    .await
}

/// Log-ins one client may have started and not finished within ten minutes: each start stores a
/// row, so an unthrottled `/login/sso` would let anyone grow the table.
pub const MAX_PENDING_PER_CLIENT: i64 = 20;

/// Records a log-in started at `/login/sso`, unless this client has too many in flight.
pub async fn begin_log_in(conn: &mut AsyncPgConnection, started: rows::StartedLogin<'_>, now: DateTime<Utc>) -> Result<(), OpError> {
    conn.transaction(async |conn| {
        if rows::pending_logins_of(conn, started.client, now).await? >= MAX_PENDING_PER_CLIENT {
            tracing::warn!(client = %started.client, "single sign-on starts throttled for this client");
            return Err(OpError::Throttled { retry_after_seconds: 600 });
        }
        rows::begin_login(conn, started, now).await?;
        Ok(())
    })
    .await
}

/// The account's single sign-on choices (`/admin/settings`).
#[derive(Debug, Clone, Default)]
pub struct SsoSettingsInput {
    pub create_users: bool,
    pub roles_only_from_provider: bool,
    pub required: bool,
    /// E-mails of the admins who may still log in with a password when SSO is required.
    pub break_glass: Vec<String>,
    /// Whether the operator's provider serves this account (`RAILYARD_OIDC_ACCOUNT`): only then
    /// can SSO be required, or nobody could log in.
    pub served_here: bool,
}

pub async fn update_settings(
    conn: &mut AsyncPgConnection,
    actor: &crate::ops::Actor,
    input: &SsoSettingsInput,
    now: DateTime<Utc>,
) -> Result<AccountSettings, OpError> {
    let mut errors = crate::domain::validate::FieldErrors::new();
    let mut glass: Vec<String> = Vec::new();
    for email in input.break_glass.iter().map(|e| e.trim().to_ascii_lowercase()).filter(|e| !e.is_empty()) {
        match User::by_email(conn, &email).await? {
            Some(u) if u.account_id == actor.account_id && u.disabled_at.is_none() => {
                let admin =
                    rows::bindings_of(conn, u.id).await?.iter().any(|(_, b, _)| b.role == crate::domain::policy::Role::AccountAdmin);
                if admin {
                    glass.push(email);
                } else {
                    errors.add("sso_break_glass", format!("{email} is not an account admin"));
                }
            }
            _ => errors.add("sso_break_glass", format!("there is no active user {email:?}")),
        }
    }
    if input.required && !input.served_here {
        errors.add("sso_required", "single sign-on does not serve this account (RAILYARD_OIDC_ACCOUNT names another one, or none)");
    } else if input.required && glass.is_empty() {
        errors.add("sso_break_glass", "name at least one break-glass admin: if the provider fails, they can still log in");
    }
    errors.into_result()?;
    let changes = crate::db::models::accounts::SettingsChanges {
        sso_create_users: Some(input.create_users),
        sso_roles_only_from_provider: Some(input.roles_only_from_provider),
        sso_required: Some(input.required),
        sso_break_glass: Some(glass.clone()),
        updated_at: Some(now),
        ..Default::default()
    };
    conn.transaction(async |conn| {
        let saved = AccountSettings::update(conn, actor.account_id, &changes).await?;
        audit::append(
            conn,
            NewEvent::account(actor.account_id, &actor.label, "settings.sso", format!("account:{}", actor.account_id)).with_details(
                json!({
                    "create_users": input.create_users, "roles_only_from_provider": input.roles_only_from_provider,
                    "required": input.required, "break_glass": glass,
                }),
            ),
            now,
        )
        .await?;
        Ok(saved)
    })
    .await
}

/// One more line of the group mapping: provider group → role (with its org).
pub async fn add_mapping(
    conn: &mut AsyncPgConnection,
    actor: &crate::ops::Actor,
    (group, role, org): (&str, &str, &str),
    now: DateTime<Utc>,
) -> Result<(), OpError> {
    let mut errors = crate::domain::validate::FieldErrors::new();
    let group = group.trim();
    if group.is_empty() || group.len() > 200 {
        errors.add("provider_group", "is required (at most 200 characters)");
    }
    let parsed = crate::ops::users::parse_role(conn, actor.account_id, role, org, &mut errors).await;
    errors.into_result()?;
    let Some((role, org_id)) = parsed else { return Err(OpError::invalid("role", "is required")) };
    conn.transaction(async |conn| {
        rows::add_mapping(conn, actor.account_id, group, Binding { role, org: org_id }, now).await?;
        audit::append(
            conn,
            NewEvent::account(actor.account_id, &actor.label, "sso.mapping_add", format!("account:{}", actor.account_id))
                .with_details(json!({"group": group, "role": role.as_str(), "org_id": org_id})),
            now,
        )
        .await?;
        Ok(())
    })
    .await
}

pub async fn remove_mapping(conn: &mut AsyncPgConnection, actor: &crate::ops::Actor, id: i64, now: DateTime<Utc>) -> Result<(), OpError> {
    conn.transaction(async |conn| {
        let (group, role) = rows::remove_mapping(conn, actor.account_id, id).await?.ok_or(OpError::NotFound)?;
        audit::append(
            conn,
            NewEvent::account(actor.account_id, &actor.label, "sso.mapping_remove", format!("account:{}", actor.account_id))
                .with_details(json!({"group": group, "role": role})),
            now,
        )
        .await?;
        Ok(())
    })
    .await
}
