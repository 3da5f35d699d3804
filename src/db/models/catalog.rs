//! Environments, services and groups of an account.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde::Serialize;

use crate::db::schema::{environments, group_members, groups, services, users};

#[derive(Debug, Clone, Queryable, Selectable, Serialize)]
#[diesel(table_name = environments)]
pub struct Environment {
    pub id: i64,
    #[serde(skip)]
    pub account_id: i64,
    pub name: String,
    pub position: i32,
    pub production: bool,
    #[serde(skip)]
    pub created_at: DateTime<Utc>,
    /// What it locks while a phase deploys into it (DESIGN §2).
    pub deploy_lock: crate::domain::locks::DeployLock,
}

#[derive(Debug, Clone, AsChangeset, Default)]
#[diesel(table_name = environments)]
pub struct EnvironmentChanges {
    pub name: Option<String>,
    pub position: Option<i32>,
    pub production: Option<bool>,
    pub deploy_lock: Option<crate::domain::locks::DeployLock>,
}

impl Environment {
    /// A new environment goes last unless a position is given.
    pub async fn create(
        conn: &mut AsyncPgConnection,
        account_id: i64,
        name: &str,
        (production, deploy_lock): (bool, crate::domain::locks::DeployLock),
        position: Option<i32>,
        now: DateTime<Utc>,
    ) -> QueryResult<Environment> {
        let position = match position {
            Some(p) => p,
            None => {
                let max: Option<i32> = environments::table
                    .filter(environments::account_id.eq(account_id))
                    .select(diesel::dsl::max(environments::position))
                    .first(conn)
                    .await?;
                max.map_or(1, |m| m + 1)
            }
        };
        diesel::insert_into(environments::table)
            .values((
                environments::account_id.eq(account_id),
                environments::name.eq(name),
                environments::production.eq(production),
                environments::deploy_lock.eq(deploy_lock),
                environments::position.eq(position),
                environments::created_at.eq(now),
            ))
            .returning(Environment::as_returning())
            .get_result(conn)
            .await
    }

    pub async fn list(conn: &mut AsyncPgConnection, account_id: i64) -> QueryResult<Vec<Environment>> {
        environments::table
            .filter(environments::account_id.eq(account_id))
            .order((environments::position, environments::name))
            .select(Environment::as_select())
            .load(conn)
            .await
    }

    pub async fn find(conn: &mut AsyncPgConnection, account_id: i64, id: i64) -> QueryResult<Environment> {
        environments::table
            .filter(environments::account_id.eq(account_id))
            .filter(environments::id.eq(id))
            .select(Environment::as_select())
            .first(conn)
            .await
    }

    pub async fn by_name(conn: &mut AsyncPgConnection, account_id: i64, name: &str) -> QueryResult<Environment> {
        environments::table
            .filter(environments::account_id.eq(account_id))
            .filter(environments::name.eq(name))
            .select(Environment::as_select())
            .first(conn)
            .await
    }

    pub async fn update(conn: &mut AsyncPgConnection, account_id: i64, id: i64, changes: &EnvironmentChanges) -> QueryResult<Environment> {
        if changes.name.is_none() && changes.position.is_none() && changes.production.is_none() {
            return Self::find(conn, account_id, id).await;
        }
        diesel::update(environments::table.filter(environments::account_id.eq(account_id)).filter(environments::id.eq(id)))
            .set(changes)
            .returning(Environment::as_returning())
            .get_result(conn)
            .await
    }

    pub async fn delete(conn: &mut AsyncPgConnection, account_id: i64, id: i64) -> QueryResult<usize> {
        diesel::delete(environments::table.filter(environments::account_id.eq(account_id)).filter(environments::id.eq(id)))
            .execute(conn)
            .await
    }

    /// Swaps this environment with its neighbour in the order (`up` = earlier).
    pub async fn move_one(conn: &mut AsyncPgConnection, account_id: i64, id: i64, up: bool) -> QueryResult<()> {
        let list = Self::list(conn, account_id).await?;
        let Some(index) = list.iter().position(|e| e.id == id) else {
            return Err(diesel::result::Error::NotFound);
        };
        let other = if up { index.checked_sub(1) } else { Some(index + 1).filter(|i| *i < list.len()) };
        let Some(other) = other else { return Ok(()) };
        // Renumber densely so equal positions never make the order ambiguous.
        let mut order: Vec<i64> = list.iter().map(|e| e.id).collect();
        order.swap(index, other);
        for (pos, env_id) in order.iter().enumerate() {
            diesel::update(environments::table.filter(environments::id.eq(env_id)))
                .set(environments::position.eq(pos as i32 + 1))
                .execute(conn)
                .await?;
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Queryable, Selectable, Serialize)]
#[diesel(table_name = services)]
pub struct Service {
    pub id: i64,
    #[serde(skip)]
    pub account_id: i64,
    pub name: String,
    #[serde(skip)]
    pub created_at: DateTime<Utc>,
}

impl Service {
    pub async fn create(conn: &mut AsyncPgConnection, account_id: i64, name: &str, now: DateTime<Utc>) -> QueryResult<Service> {
        diesel::insert_into(services::table)
            .values((services::account_id.eq(account_id), services::name.eq(name), services::created_at.eq(now)))
            .returning(Service::as_returning())
            .get_result(conn)
            .await
    }

    pub async fn list(conn: &mut AsyncPgConnection, account_id: i64) -> QueryResult<Vec<Service>> {
        services::table.filter(services::account_id.eq(account_id)).order(services::name).select(Service::as_select()).load(conn).await
    }

    pub async fn find(conn: &mut AsyncPgConnection, account_id: i64, id: i64) -> QueryResult<Service> {
        services::table
            .filter(services::account_id.eq(account_id))
            .filter(services::id.eq(id))
            .select(Service::as_select())
            .first(conn)
            .await
    }

    pub async fn by_name(conn: &mut AsyncPgConnection, account_id: i64, name: &str) -> QueryResult<Service> {
        services::table
            .filter(services::account_id.eq(account_id))
            .filter(services::name.eq(name))
            .select(Service::as_select())
            .first(conn)
            .await
    }

    pub async fn rename(conn: &mut AsyncPgConnection, account_id: i64, id: i64, name: &str) -> QueryResult<Service> {
        diesel::update(services::table.filter(services::account_id.eq(account_id)).filter(services::id.eq(id)))
            .set(services::name.eq(name))
            .returning(Service::as_returning())
            .get_result(conn)
            .await
    }

    pub async fn delete(conn: &mut AsyncPgConnection, account_id: i64, id: i64) -> QueryResult<usize> {
        diesel::delete(services::table.filter(services::account_id.eq(account_id)).filter(services::id.eq(id))).execute(conn).await
    }
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = groups)]
pub struct Group {
    pub id: i64,
    pub account_id: i64,
    pub name: String,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize)]
pub struct GroupWithMembers {
    pub id: i64,
    pub name: String,
    pub members: Vec<String>,
}

impl Group {
    pub async fn create(conn: &mut AsyncPgConnection, account_id: i64, name: &str, now: DateTime<Utc>) -> QueryResult<Group> {
        diesel::insert_into(groups::table)
            .values((groups::account_id.eq(account_id), groups::name.eq(name), groups::created_at.eq(now)))
            .returning(Group::as_returning())
            .get_result(conn)
            .await
    }

    pub async fn find(conn: &mut AsyncPgConnection, account_id: i64, id: i64) -> QueryResult<Group> {
        groups::table.filter(groups::account_id.eq(account_id)).filter(groups::id.eq(id)).select(Group::as_select()).first(conn).await
    }

    pub async fn by_name(conn: &mut AsyncPgConnection, account_id: i64, name: &str) -> QueryResult<Group> {
        groups::table.filter(groups::account_id.eq(account_id)).filter(groups::name.eq(name)).select(Group::as_select()).first(conn).await
    }

    /// Every group of the account with its members' e-mails, in two statements.
    pub async fn list_with_members(conn: &mut AsyncPgConnection, account_id: i64) -> QueryResult<Vec<GroupWithMembers>> {
        let all: Vec<Group> =
            groups::table.filter(groups::account_id.eq(account_id)).order(groups::name).select(Group::as_select()).load(conn).await?;
        let memberships: Vec<(i64, String)> = group_members::table
            .inner_join(users::table)
            .filter(group_members::account_id.eq(account_id))
            .order(users::email)
            .select((group_members::group_id, users::email))
            .load(conn)
            .await?;
        Ok(all
            .into_iter()
            .map(|g| GroupWithMembers {
                id: g.id,
                members: memberships.iter().filter(|(gid, _)| *gid == g.id).map(|(_, e)| e.clone()).collect(),
                name: g.name,
            })
            .collect())
    }

    pub async fn members(conn: &mut AsyncPgConnection, group_id: i64) -> QueryResult<Vec<(i64, String, String)>> {
        group_members::table
            .inner_join(users::table)
            .filter(group_members::group_id.eq(group_id))
            .order(users::email)
            .select((users::id, users::email, users::name))
            .load(conn)
            .await
    }

    pub async fn with_members(self, conn: &mut AsyncPgConnection) -> QueryResult<GroupWithMembers> {
        let members = Self::members(conn, self.id).await?.into_iter().map(|(_, email, _)| email).collect();
        Ok(GroupWithMembers { id: self.id, name: self.name, members })
    }

    pub async fn rename(conn: &mut AsyncPgConnection, account_id: i64, id: i64, name: &str) -> QueryResult<usize> {
        diesel::update(groups::table.filter(groups::account_id.eq(account_id)).filter(groups::id.eq(id)))
            .set(groups::name.eq(name))
            .execute(conn)
            .await
    }

    /// Replaces the member list with exactly these users (ids already checked to be in the account).
    pub async fn set_members(conn: &mut AsyncPgConnection, account_id: i64, group_id: i64, user_ids: &[i64]) -> QueryResult<()> {
        diesel::delete(group_members::table.filter(group_members::group_id.eq(group_id))).execute(conn).await?;
        Self::add_members(conn, account_id, group_id, user_ids).await
    }

    pub async fn add_members(conn: &mut AsyncPgConnection, account_id: i64, group_id: i64, user_ids: &[i64]) -> QueryResult<()> {
        let rows: Vec<_> = user_ids
            .iter()
            .map(|uid| (group_members::account_id.eq(account_id), group_members::group_id.eq(group_id), group_members::user_id.eq(*uid)))
            .collect();
        if !rows.is_empty() {
            diesel::insert_into(group_members::table).values(rows).on_conflict_do_nothing().execute(conn).await?;
        }
        Ok(())
    }

    pub async fn remove_member(conn: &mut AsyncPgConnection, group_id: i64, user_id: i64) -> QueryResult<usize> {
        diesel::delete(group_members::table.filter(group_members::group_id.eq(group_id)).filter(group_members::user_id.eq(user_id)))
            .execute(conn)
            .await
    }

    pub async fn delete(conn: &mut AsyncPgConnection, account_id: i64, id: i64) -> QueryResult<usize> {
        diesel::delete(groups::table.filter(groups::account_id.eq(account_id)).filter(groups::id.eq(id))).execute(conn).await
    }
}
