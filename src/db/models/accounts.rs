use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde::Serialize;

use crate::db::schema::{account_settings, accounts, organizations};

#[derive(Debug, Clone, Queryable, Selectable, Serialize)]
#[diesel(table_name = accounts)]
pub struct Account {
    pub id: i64,
    pub slug: String,
    pub name: String,
    pub time_zone: String,
    pub created_at: DateTime<Utc>,
}

impl Account {
    pub async fn create(conn: &mut AsyncPgConnection, slug: &str, name: &str, now: DateTime<Utc>) -> QueryResult<Account> {
        let account: Account = diesel::insert_into(accounts::table)
            .values((accounts::slug.eq(slug), accounts::name.eq(name), accounts::created_at.eq(now)))
            .returning(Account::as_returning())
            .get_result(conn)
            .await?;
        diesel::insert_into(account_settings::table)
            .values((account_settings::account_id.eq(account.id), account_settings::updated_at.eq(now)))
            .execute(conn)
            .await?;
        Ok(account)
    }

    pub async fn by_slug(conn: &mut AsyncPgConnection, slug: &str) -> QueryResult<Option<Account>> {
        accounts::table.filter(accounts::slug.eq(slug)).select(Account::as_select()).first(conn).await.optional()
    }

    pub async fn find(conn: &mut AsyncPgConnection, id: i64) -> QueryResult<Account> {
        accounts::table.find(id).select(Account::as_select()).first(conn).await
    }
}

/// An account's slug (operator settings name accounts by slug).
pub async fn slug_of(conn: &mut AsyncPgConnection, id: i64) -> QueryResult<String> {
    accounts::table.find(id).select(accounts::slug).first(conn).await
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = account_settings)]
pub struct AccountSettings {
    pub account_id: i64,
    pub release_level: String,
    pub webhook_allow_list: Vec<String>,
    pub reminder_interval_minutes: i32,
    pub chat_webhook_url: Option<String>,
    pub updated_at: DateTime<Utc>,
    /// SSO: create an unknown (verified) user at their first log-in.
    pub sso_create_users: bool,
    /// SSO: roles come only from the provider's groups (hand-given ones are removed at log-in).
    pub sso_roles_only_from_provider: bool,
    /// SSO: password log-in is refused except for the break-glass admins.
    pub sso_required: bool,
    pub sso_break_glass: Vec<String>,
}

#[derive(Debug, Clone, AsChangeset, Default)]
#[diesel(table_name = account_settings)]
pub struct SettingsChanges {
    pub release_level: Option<String>,
    pub webhook_allow_list: Option<Vec<String>>,
    pub reminder_interval_minutes: Option<i32>,
    pub chat_webhook_url: Option<Option<String>>,
    pub updated_at: Option<DateTime<Utc>>,
    pub sso_create_users: Option<bool>,
    pub sso_roles_only_from_provider: Option<bool>,
    pub sso_required: Option<bool>,
    pub sso_break_glass: Option<Vec<String>>,
}

impl AccountSettings {
    pub async fn get(conn: &mut AsyncPgConnection, account_id: i64) -> QueryResult<AccountSettings> {
        account_settings::table.find(account_id).select(AccountSettings::as_select()).first(conn).await
    }

    pub async fn update(conn: &mut AsyncPgConnection, account_id: i64, changes: &SettingsChanges) -> QueryResult<AccountSettings> {
        diesel::update(account_settings::table.find(account_id))
            .set(changes)
            .returning(AccountSettings::as_returning())
            .get_result(conn)
            .await
    }
}

pub async fn set_account_time_zone(conn: &mut AsyncPgConnection, account_id: i64, zone: &str) -> QueryResult<usize> {
    diesel::update(accounts::table.find(account_id)).set(accounts::time_zone.eq(zone)).execute(conn).await
}

#[derive(Debug, Clone, Queryable, Selectable, Serialize)]
#[diesel(table_name = organizations)]
pub struct Organization {
    pub id: i64,
    #[serde(skip)]
    pub account_id: i64,
    pub slug: String,
    pub name: String,
    pub created_at: DateTime<Utc>,
}

impl Organization {
    pub async fn create(
        conn: &mut AsyncPgConnection,
        account_id: i64,
        slug: &str,
        name: &str,
        now: DateTime<Utc>,
    ) -> QueryResult<Organization> {
        diesel::insert_into(organizations::table)
            .values((
                organizations::account_id.eq(account_id),
                organizations::slug.eq(slug),
                organizations::name.eq(name),
                organizations::created_at.eq(now),
            ))
            .returning(Organization::as_returning())
            .get_result(conn)
            .await
    }

    pub async fn list(conn: &mut AsyncPgConnection, account_id: i64) -> QueryResult<Vec<Organization>> {
        organizations::table
            .filter(organizations::account_id.eq(account_id))
            .order(organizations::slug)
            .select(Organization::as_select())
            .load(conn)
            .await
    }

    pub async fn find(conn: &mut AsyncPgConnection, account_id: i64, id: i64) -> QueryResult<Organization> {
        organizations::table
            .filter(organizations::account_id.eq(account_id))
            .filter(organizations::id.eq(id))
            .select(Organization::as_select())
            .first(conn)
            .await
    }

    pub async fn by_slug(conn: &mut AsyncPgConnection, account_id: i64, slug: &str) -> QueryResult<Organization> {
        organizations::table
            .filter(organizations::account_id.eq(account_id))
            .filter(organizations::slug.eq(slug))
            .select(Organization::as_select())
            .first(conn)
            .await
    }

    pub async fn rename(conn: &mut AsyncPgConnection, account_id: i64, id: i64, name: &str) -> QueryResult<Organization> {
        diesel::update(organizations::table.filter(organizations::account_id.eq(account_id)).filter(organizations::id.eq(id)))
            .set(organizations::name.eq(name))
            .returning(Organization::as_returning())
            .get_result(conn)
            .await
    }

    pub async fn delete(conn: &mut AsyncPgConnection, account_id: i64, id: i64) -> QueryResult<usize> {
        diesel::delete(organizations::table.filter(organizations::account_id.eq(account_id)).filter(organizations::id.eq(id)))
            .execute(conn)
            .await
    }
}
