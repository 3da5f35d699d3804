//! Organizations, environments, services and groups (manage_catalog).

use crate::domain::locks::DeployLock;
use chrono::{DateTime, Utc};
use diesel_async::{AsyncConnection, AsyncPgConnection};
use serde_json::json;

use super::{duplicate, Actor, OpError};
use crate::db::audit::{self, NewEvent};
use crate::db::models::accounts::Organization;
use crate::db::models::catalog::{Environment, EnvironmentChanges, Group, GroupWithMembers, Service};
use crate::db::models::users::User;
use crate::domain::rule::RuleCode;
use crate::domain::validate::{self, FieldErrors};

fn event(actor: &Actor, action: &str, subject: String) -> NewEvent {
    NewEvent::account(actor.account_id, &actor.label, action, subject)
}

pub async fn create_org(
    conn: &mut AsyncPgConnection,
    actor: &Actor,
    slug: &str,
    name: &str,
    now: DateTime<Utc>,
) -> Result<Organization, OpError> {
    let mut errors = FieldErrors::new();
    let slug = errors.check("slug", validate::slug(slug));
    let name = errors.check("name", validate::name(name));
    let (Some(slug), Some(name)) = (slug, name) else { return Err(errors.into()) };
    conn.transaction(async |conn| {
        let org = Organization::create(conn, actor.account_id, &slug, &name, now)
            .await
            .map_err(|e| duplicate(e, "slug", || format!("an organization {slug:?} already exists")))?;
        audit::append(conn, event(actor, "org.create", format!("org:{slug}")).with_details(json!({"name": name})), now).await?;
        Ok(org)
    })
    .await
}

pub async fn rename_org(
    conn: &mut AsyncPgConnection,
    actor: &Actor,
    id: i64,
    name: &str,
    now: DateTime<Utc>,
) -> Result<Organization, OpError> {
    let name = validate::name(name).map_err(|m| OpError::invalid("name", m))?;
    conn.transaction(async |conn| {
        let org = Organization::rename(conn, actor.account_id, id, &name).await?;
        audit::append(conn, event(actor, "org.update", format!("org:{}", org.slug)).with_details(json!({"name": name})), now).await?;
        Ok(org)
    })
    .await
}

pub async fn delete_org(conn: &mut AsyncPgConnection, actor: &Actor, id: i64, now: DateTime<Utc>) -> Result<(), OpError> {
    conn.transaction(async |conn| {
        let org = Organization::find(conn, actor.account_id, id).await?;
        Organization::delete(conn, actor.account_id, id).await.map_err(|e| in_use(e, "organization", &org.slug))?;
        audit::append(conn, event(actor, "org.delete", format!("org:{}", org.slug)), now).await?;
        Ok(())
    })
    .await
}

/// A foreign key still pointing at the row: say so instead of failing.
fn in_use(e: diesel::result::Error, what: &str, name: &str) -> OpError {
    match e {
        diesel::result::Error::DatabaseError(diesel::result::DatabaseErrorKind::ForeignKeyViolation, _) => OpError::Rule {
            code: RuleCode::DeleteRefused,
            message: format!("The {what} {name:?} is still in use and cannot be deleted."),
            field: None,
        },
        other => other.into(),
    }
}

#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(default)]
pub struct EnvironmentInput {
    pub name: Option<String>,
    pub production: Option<bool>,
    pub position: Option<i32>,
    /// `none`, `service` or `environment`; a new environment without it takes `service` when
    /// it is a production one, else `none`.
    pub deploy_lock: Option<String>,
}

fn deploy_lock_of(input: &EnvironmentInput) -> Result<Option<DeployLock>, OpError> {
    match input.deploy_lock.as_deref().map(str::trim) {
        None | Some("") => Ok(None),
        Some(text) => DeployLock::parse(text)
            .map(Some)
            .ok_or_else(|| OpError::invalid("deploy_lock", format!("{text:?} is not none, service or environment"))),
    }
}

pub async fn create_environment(
    conn: &mut AsyncPgConnection,
    actor: &Actor,
    input: &EnvironmentInput,
    now: DateTime<Utc>,
) -> Result<Environment, OpError> {
    let name = validate::catalog_name(input.name.as_deref().unwrap_or("")).map_err(|m| OpError::invalid("name", m))?;
    if input.position.is_some_and(|p| p < 0) {
        return Err(OpError::invalid("position", "must be zero or more"));
    }
    let production = input.production.unwrap_or(false);
    let lock = deploy_lock_of(input)?.unwrap_or(DeployLock::default_for(production));
    conn.transaction(async |conn| {
        let env = Environment::create(conn, actor.account_id, &name, (production, lock), input.position, now)
            .await
            .map_err(|e| duplicate(e, "name", || format!("an environment {name:?} already exists")))?;
        audit::append(
            conn,
            event(actor, "environment.create", format!("environment:{name}"))
                .with_details(json!({"production": env.production, "position": env.position, "deploy_lock": env.deploy_lock})),
            now,
        )
        .await?;
        Ok(env)
    })
    .await
}

pub async fn update_environment(
    conn: &mut AsyncPgConnection,
    actor: &Actor,
    id: i64,
    input: &EnvironmentInput,
    now: DateTime<Utc>,
) -> Result<Environment, OpError> {
    let name = match &input.name {
        Some(n) => Some(validate::catalog_name(n).map_err(|m| OpError::invalid("name", m))?),
        None => None,
    };
    if input.position.is_some_and(|p| p < 0) {
        return Err(OpError::invalid("position", "must be zero or more"));
    }
    let changes = EnvironmentChanges {
        name: name.clone(),
        position: input.position,
        production: input.production,
        deploy_lock: deploy_lock_of(input)?,
    };
    conn.transaction(async |conn| {
        let before = Environment::find(conn, actor.account_id, id).await?;
        let env = Environment::update(conn, actor.account_id, id, &changes)
            .await
            .map_err(|e| duplicate(e, "name", || format!("an environment {:?} already exists", name.clone().unwrap_or_default())))?;
        audit::append(
            conn,
            event(actor, "environment.update", format!("environment:{}", before.name)).with_details(
                json!({"name": env.name, "production": env.production, "position": env.position, "deploy_lock": env.deploy_lock}),
            ),
            now,
        )
        .await?;
        Ok(env)
    })
    .await
}

pub async fn move_environment(conn: &mut AsyncPgConnection, actor: &Actor, id: i64, up: bool, now: DateTime<Utc>) -> Result<(), OpError> {
    conn.transaction(async |conn| {
        let env = Environment::find(conn, actor.account_id, id).await?;
        Environment::move_one(conn, actor.account_id, id, up).await?;
        audit::append(conn, event(actor, "environment.reorder", format!("environment:{}", env.name)).with_details(json!({"up": up})), now)
            .await?;
        Ok(())
    })
    .await
}

pub async fn delete_environment(conn: &mut AsyncPgConnection, actor: &Actor, id: i64, now: DateTime<Utc>) -> Result<(), OpError> {
    conn.transaction(async |conn| {
        let env = Environment::find(conn, actor.account_id, id).await?;
        Environment::delete(conn, actor.account_id, id).await.map_err(|e| in_use(e, "environment", &env.name))?;
        audit::append(conn, event(actor, "environment.delete", format!("environment:{}", env.name)), now).await?;
        Ok(())
    })
    .await
}

pub async fn create_service(conn: &mut AsyncPgConnection, actor: &Actor, name: &str, now: DateTime<Utc>) -> Result<Service, OpError> {
    let name = validate::catalog_name(name).map_err(|m| OpError::invalid("name", m))?;
    conn.transaction(async |conn| {
        let service = Service::create(conn, actor.account_id, &name, now)
            .await
            .map_err(|e| duplicate(e, "name", || format!("a service {name:?} already exists")))?;
        audit::append(conn, event(actor, "service.create", format!("service:{name}")), now).await?;
        Ok(service)
    })
    .await
}

pub async fn rename_service(
    conn: &mut AsyncPgConnection,
    actor: &Actor,
    id: i64,
    name: &str,
    now: DateTime<Utc>,
) -> Result<Service, OpError> {
    let name = validate::catalog_name(name).map_err(|m| OpError::invalid("name", m))?;
    conn.transaction(async |conn| {
        let before = Service::find(conn, actor.account_id, id).await?;
        let service = Service::rename(conn, actor.account_id, id, &name)
            .await
            .map_err(|e| duplicate(e, "name", || format!("a service {name:?} already exists")))?;
        audit::append(conn, event(actor, "service.update", format!("service:{}", before.name)).with_details(json!({"name": name})), now)
            .await?;
        Ok(service)
    })
    .await
}

pub async fn delete_service(conn: &mut AsyncPgConnection, actor: &Actor, id: i64, now: DateTime<Utc>) -> Result<(), OpError> {
    conn.transaction(async |conn| {
        let service = Service::find(conn, actor.account_id, id).await?;
        Service::delete(conn, actor.account_id, id).await.map_err(|e| in_use(e, "service", &service.name))?;
        audit::append(conn, event(actor, "service.delete", format!("service:{}", service.name)), now).await?;
        Ok(())
    })
    .await
}

/// Resolves member e-mails to users of this account, naming the ones that are not.
async fn member_ids(conn: &mut AsyncPgConnection, account_id: i64, members: &[String]) -> Result<Vec<i64>, OpError> {
    let mut errors = FieldErrors::new();
    for m in members {
        if let Err(msg) = validate::email(m) {
            errors.add("members", msg);
        }
    }
    errors.into_result()?;
    let (ids, missing) = User::ids_by_emails(conn, account_id, members).await?;
    if !missing.is_empty() {
        return Err(OpError::invalid("members", format!("no user with e-mail {}", missing.join(", "))));
    }
    Ok(ids)
}

pub async fn create_group(
    conn: &mut AsyncPgConnection,
    actor: &Actor,
    name: &str,
    members: &[String],
    now: DateTime<Utc>,
) -> Result<GroupWithMembers, OpError> {
    let name = validate::catalog_name(name).map_err(|m| OpError::invalid("name", m))?;
    conn.transaction(async |conn| {
        let ids = member_ids(conn, actor.account_id, members).await?;
        let group = Group::create(conn, actor.account_id, &name, now)
            .await
            .map_err(|e| duplicate(e, "name", || format!("a group {name:?} already exists")))?;
        Group::add_members(conn, actor.account_id, group.id, &ids).await?;
        let full = group.with_members(conn).await?;
        audit::append(conn, event(actor, "group.create", format!("group:{name}")).with_details(json!({"members": full.members})), now)
            .await?;
        Ok(full)
    })
    .await
}

/// Renames and/or replaces the member list (`None` leaves that part unchanged).
pub async fn update_group(
    conn: &mut AsyncPgConnection,
    actor: &Actor,
    id: i64,
    name: Option<&str>,
    members: Option<&[String]>,
    now: DateTime<Utc>,
) -> Result<GroupWithMembers, OpError> {
    let name = match name {
        Some(n) => Some(validate::catalog_name(n).map_err(|m| OpError::invalid("name", m))?),
        None => None,
    };
    conn.transaction(async |conn| {
        let group = Group::find(conn, actor.account_id, id).await?;
        if let Some(name) = &name {
            Group::rename(conn, actor.account_id, id, name)
                .await
                .map_err(|e| duplicate(e, "name", || format!("a group {name:?} already exists")))?;
        }
        if let Some(members) = members {
            let ids = member_ids(conn, actor.account_id, members).await?;
            Group::set_members(conn, actor.account_id, id, &ids).await?;
        }
        let full = Group::find(conn, actor.account_id, id).await?.with_members(conn).await?;
        audit::append(
            conn,
            event(actor, "group.update", format!("group:{}", group.name)).with_details(json!({"name": full.name, "members": full.members})),
            now,
        )
        .await?;
        Ok(full)
    })
    .await
}

pub async fn add_group_member(
    conn: &mut AsyncPgConnection,
    actor: &Actor,
    id: i64,
    email: &str,
    now: DateTime<Utc>,
) -> Result<(), OpError> {
    let email = validate::email(email).map_err(|m| OpError::invalid("email", m))?;
    conn.transaction(async |conn| {
        let group = Group::find(conn, actor.account_id, id).await?;
        let (ids, missing) = User::ids_by_emails(conn, actor.account_id, std::slice::from_ref(&email)).await?;
        if !missing.is_empty() {
            return Err(OpError::invalid("email", format!("no user with e-mail {email}")));
        }
        Group::add_members(conn, actor.account_id, group.id, &ids).await?;
        audit::append(conn, event(actor, "group.member_add", format!("group:{}", group.name)).with_details(json!({"member": email})), now)
            .await?;
        Ok(())
    })
    .await
}

pub async fn remove_group_member(
    conn: &mut AsyncPgConnection,
    actor: &Actor,
    id: i64,
    user_id: i64,
    now: DateTime<Utc>,
) -> Result<(), OpError> {
    conn.transaction(async |conn| {
        let group = Group::find(conn, actor.account_id, id).await?;
        let user = User::find(conn, actor.account_id, user_id).await?;
        Group::remove_member(conn, group.id, user.id).await?;
        audit::append(
            conn,
            event(actor, "group.member_remove", format!("group:{}", group.name)).with_details(json!({"member": user.email})),
            now,
        )
        .await?;
        Ok(())
    })
    .await
}

pub async fn delete_group(conn: &mut AsyncPgConnection, actor: &Actor, id: i64, now: DateTime<Utc>) -> Result<(), OpError> {
    conn.transaction(async |conn| {
        let group = Group::find(conn, actor.account_id, id).await?;
        Group::delete(conn, actor.account_id, id).await.map_err(|e| in_use(e, "group", &group.name))?;
        audit::append(conn, event(actor, "group.delete", format!("group:{}", group.name)), now).await?;
        Ok(())
    })
    .await
}
