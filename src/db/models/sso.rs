//! Single sign-on's rows: the account's group → role mapping, the roles a user holds (with
//! whether the mapping gave them), and the state of log-ins in flight.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use crate::db::schema::{organizations, role_bindings, sso_group_roles, sso_logins, users};
use crate::domain::policy::{Binding, Role};
use crate::domain::sso::GroupRole;

/// One mapping line with its org's slug, for the settings page.
#[derive(Debug, Clone)]
pub struct MappingRow {
    pub id: i64,
    pub group: String,
    pub role: String,
    pub org_slug: Option<String>,
    pub org_id: Option<i64>,
}

impl MappingRow {
    pub fn group_role(&self) -> Option<GroupRole> {
        Role::parse(&self.role).map(|role| GroupRole { group: self.group.clone(), binding: Binding { role, org: self.org_id } })
    }
}

/// (id, group, role, org id, org slug)
type MappingColumns = (i64, String, String, Option<i64>, Option<String>);

pub async fn mapping(conn: &mut AsyncPgConnection, account_id: i64) -> QueryResult<Vec<MappingRow>> {
    let rows: Vec<MappingColumns> = sso_group_roles::table
        .left_join(organizations::table.on(organizations::id.nullable().eq(sso_group_roles::org_id)))
        .filter(sso_group_roles::account_id.eq(account_id))
        .order((sso_group_roles::provider_group, sso_group_roles::role))
        .select((
            sso_group_roles::id,
            sso_group_roles::provider_group,
            sso_group_roles::role,
            sso_group_roles::org_id,
            organizations::slug.nullable(),
        ))
        .load(conn)
        .await?;
    Ok(rows.into_iter().map(|(id, group, role, org_id, org_slug)| MappingRow { id, group, role, org_id, org_slug }).collect())
}

pub async fn add_mapping(
    conn: &mut AsyncPgConnection,
    account_id: i64,
    group: &str,
    binding: Binding,
    now: DateTime<Utc>,
) -> QueryResult<usize> {
    diesel::insert_into(sso_group_roles::table)
        .values((
            sso_group_roles::account_id.eq(account_id),
            sso_group_roles::provider_group.eq(group),
            sso_group_roles::role.eq(binding.role.as_str()),
            sso_group_roles::org_id.eq(binding.org),
            sso_group_roles::created_at.eq(now),
        ))
        .on_conflict_do_nothing()
        .execute(conn)
        .await
}

pub async fn remove_mapping(conn: &mut AsyncPgConnection, account_id: i64, id: i64) -> QueryResult<Option<(String, String)>> {
    diesel::delete(sso_group_roles::table.filter(sso_group_roles::account_id.eq(account_id)).filter(sso_group_roles::id.eq(id)))
        .returning((sso_group_roles::provider_group, sso_group_roles::role))
        .get_result(conn)
        .await
        .optional()
}

/// A user's role bindings: (binding id, binding, given by the mapping).
pub async fn bindings_of(conn: &mut AsyncPgConnection, user_id: i64) -> QueryResult<Vec<(i64, Binding, bool)>> {
    let rows: Vec<(i64, String, Option<i64>, bool)> = role_bindings::table
        .filter(role_bindings::user_id.eq(user_id))
        .select((role_bindings::id, role_bindings::role, role_bindings::org_id, role_bindings::from_provider))
        .load(conn)
        .await?;
    Ok(rows.into_iter().filter_map(|(id, role, org, from)| Role::parse(&role).map(|role| (id, Binding { role, org }, from))).collect())
}

pub async fn add_provider_binding(
    conn: &mut AsyncPgConnection,
    account_id: i64,
    user_id: i64,
    b: Binding,
    now: DateTime<Utc>,
) -> QueryResult<usize> {
    diesel::insert_into(role_bindings::table)
        .values((
            role_bindings::account_id.eq(account_id),
            role_bindings::user_id.eq(user_id),
            role_bindings::role.eq(b.role.as_str()),
            role_bindings::org_id.eq(b.org),
            role_bindings::created_at.eq(now),
            role_bindings::from_provider.eq(true),
        ))
        .on_conflict_do_nothing()
        .execute(conn)
        .await
}

pub async fn remove_binding(conn: &mut AsyncPgConnection, binding_id: i64) -> QueryResult<usize> {
    diesel::delete(role_bindings::table.find(binding_id)).execute(conn).await
}

/// The provider identity (issuer, subject) a user is bound to, if any yet.
pub async fn identity_of(conn: &mut AsyncPgConnection, user_id: i64) -> QueryResult<Option<(String, String)>> {
    let (issuer, subject): (Option<String>, Option<String>) =
        users::table.find(user_id).select((users::sso_issuer, users::sso_subject)).first(conn).await?;
    Ok(issuer.zip(subject))
}

/// The user of the account bound to this provider identity.
pub async fn user_bound_to(conn: &mut AsyncPgConnection, account_id: i64, issuer: &str, subject: &str) -> QueryResult<Option<i64>> {
    users::table
        .filter(users::account_id.eq(account_id))
        .filter(users::sso_issuer.eq(issuer))
        .filter(users::sso_subject.eq(subject))
        .select(users::id)
        .first(conn)
        .await
        .optional()
}

pub async fn bind_identity(conn: &mut AsyncPgConnection, user_id: i64, issuer: &str, subject: &str) -> QueryResult<usize> {
    diesel::update(users::table.find(user_id)).set((users::sso_issuer.eq(issuer), users::sso_subject.eq(subject))).execute(conn).await
}

/// A log-in started at `/login/sso`, kept until its callback (or for ten minutes); bound to the
/// browser that started it by the hash of a value kept in its session.
pub struct StartedLogin<'a> {
    pub client: &'a str,
    pub state_hash: &'a str,
    pub browser_hash: &'a str,
    pub nonce: &'a str,
    pub pkce_verifier: &'a str,
    pub next: &'a str,
}

pub async fn begin_login(conn: &mut AsyncPgConnection, started: StartedLogin<'_>, now: DateTime<Utc>) -> QueryResult<usize> {
    let StartedLogin { client, state_hash, browser_hash, nonce, pkce_verifier, next } = started;
    diesel::delete(sso_logins::table.filter(sso_logins::created_at.lt(now - chrono::TimeDelta::minutes(10)))).execute(conn).await?;
    diesel::insert_into(sso_logins::table)
        .values((
            sso_logins::state_hash.eq(state_hash),
            sso_logins::nonce.eq(nonce),
            sso_logins::pkce_verifier.eq(pkce_verifier),
            sso_logins::next.eq(next),
            sso_logins::created_at.eq(now),
            sso_logins::browser_hash.eq(browser_hash),
            sso_logins::client.eq(client),
        ))
        .execute(conn)
        .await
}

/// How many log-ins this client started in the last ten minutes and did not finish.
pub async fn pending_logins_of(conn: &mut AsyncPgConnection, client: &str, now: DateTime<Utc>) -> QueryResult<i64> {
    sso_logins::table
        .filter(sso_logins::client.eq(client))
        .filter(sso_logins::created_at.ge(now - chrono::TimeDelta::minutes(10)))
        .count()
        .get_result(conn)
        .await
}

/// The log-in a callback's state names, taken (it works once) when the callback arrives in the
/// browser that started it: (nonce, PKCE verifier, next).
pub async fn take_login(
    conn: &mut AsyncPgConnection,
    state_hash: &str,
    browser_hash: &str,
    now: DateTime<Utc>,
) -> QueryResult<Option<(String, String, String)>> {
    diesel::delete(
        sso_logins::table
            .filter(sso_logins::state_hash.eq(state_hash))
            .filter(sso_logins::browser_hash.eq(browser_hash))
            .filter(sso_logins::created_at.ge(now - chrono::TimeDelta::minutes(10))),
    )
    .returning((sso_logins::nonce, sso_logins::pkce_verifier, sso_logins::next))
    .get_result(conn)
    .await
    .optional()
}
