//! Processes, their immutable versions, per-user editor working copies, input sets.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde_json::Value;

use crate::db::schema::{input_sets, organizations, process_versions, process_working_copies, processes};
use crate::domain::policy::Scope;
use crate::domain::process::definition::{parse_value, Definition};

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = processes)]
pub struct Process {
    pub id: i64,
    pub account_id: i64,
    pub org_id: Option<i64>,
    pub name: String,
    pub latest_version: i32,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Hidden from new releases while set.
    pub archived_at: Option<DateTime<Utc>>,
}

/// A process with its org's slug, for lists and API answers.
#[derive(Debug, Clone)]
pub struct ProcessSummary {
    pub process: Process,
    pub org_slug: Option<String>,
}

impl Process {
    pub fn scope(&self) -> Scope {
        self.org_id.map_or(Scope::Account, Scope::Org)
    }

    pub async fn create(
        conn: &mut AsyncPgConnection,
        account_id: i64,
        org_id: Option<i64>,
        name: &str,
        now: DateTime<Utc>,
    ) -> QueryResult<Process> {
        diesel::insert_into(processes::table)
            .values((
                processes::account_id.eq(account_id),
                processes::org_id.eq(org_id),
                processes::name.eq(name),
                processes::created_at.eq(now),
                processes::updated_at.eq(now),
            ))
            .returning(Process::as_returning())
            .get_result(conn)
            .await
    }

    pub async fn find(conn: &mut AsyncPgConnection, account_id: i64, id: i64) -> QueryResult<Process> {
        processes::table
            .filter(processes::account_id.eq(account_id))
            .filter(processes::id.eq(id))
            .select(Process::as_select())
            .first(conn)
            .await
    }

    /// The row locked for a save, so concurrent saves get consecutive versions.
    pub async fn lock(conn: &mut AsyncPgConnection, account_id: i64, id: i64) -> QueryResult<Process> {
        processes::table
            .filter(processes::account_id.eq(account_id))
            .filter(processes::id.eq(id))
            .select(Process::as_select())
            .for_update()
            .first(conn)
            .await
    }

    pub async fn list(conn: &mut AsyncPgConnection, account_id: i64) -> QueryResult<Vec<ProcessSummary>> {
        let rows: Vec<(Process, Option<String>)> = processes::table
            .left_join(organizations::table)
            .filter(processes::account_id.eq(account_id))
            .order((processes::org_id.nullable().asc().nulls_first(), processes::name))
            .select((Process::as_select(), organizations::slug.nullable()))
            .load(conn)
            .await?;
        Ok(rows.into_iter().map(|(process, org_slug)| ProcessSummary { process, org_slug }).collect())
    }

    pub async fn set_latest(conn: &mut AsyncPgConnection, id: i64, version: i32, name: &str, now: DateTime<Utc>) -> QueryResult<usize> {
        diesel::update(processes::table.find(id))
            .set((processes::latest_version.eq(version), processes::name.eq(name), processes::updated_at.eq(now)))
            .execute(conn)
            .await
    }
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = process_versions)]
pub struct ProcessVersion {
    pub process_id: i64,
    pub version: i32,
    pub account_id: i64,
    pub definition: Value,
    pub created_at: DateTime<Utc>,
    pub created_by: String,
}

impl ProcessVersion {
    pub async fn insert(
        conn: &mut AsyncPgConnection,
        process: &Process,
        version: i32,
        definition: &Value,
        by: &str,
        now: DateTime<Utc>,
    ) -> QueryResult<ProcessVersion> {
        diesel::insert_into(process_versions::table)
            .values((
                process_versions::process_id.eq(process.id),
                process_versions::version.eq(version),
                process_versions::account_id.eq(process.account_id),
                process_versions::definition.eq(definition),
                process_versions::created_at.eq(now),
                process_versions::created_by.eq(by),
            ))
            .returning(ProcessVersion::as_returning())
            .get_result(conn)
            .await
    }

    pub async fn find(conn: &mut AsyncPgConnection, account_id: i64, process_id: i64, version: i32) -> QueryResult<ProcessVersion> {
        process_versions::table
            .filter(process_versions::account_id.eq(account_id))
            .filter(process_versions::process_id.eq(process_id))
            .filter(process_versions::version.eq(version))
            .select(ProcessVersion::as_select())
            .first(conn)
            .await
    }

    /// (version, created_at, created_by), newest first.
    pub async fn history(conn: &mut AsyncPgConnection, account_id: i64, process_id: i64) -> QueryResult<Vec<(i32, DateTime<Utc>, String)>> {
        process_versions::table
            .filter(process_versions::account_id.eq(account_id))
            .filter(process_versions::process_id.eq(process_id))
            .order(process_versions::version.desc())
            .select((process_versions::version, process_versions::created_at, process_versions::created_by))
            .load(conn)
            .await
    }
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = process_working_copies)]
pub struct WorkingCopy {
    pub process_id: i64,
    pub user_id: i64,
    pub account_id: i64,
    pub base_version: i32,
    pub definition: Value,
    pub updated_at: DateTime<Utc>,
}

impl WorkingCopy {
    pub async fn find(conn: &mut AsyncPgConnection, process_id: i64, user_id: i64) -> QueryResult<Option<WorkingCopy>> {
        process_working_copies::table
            .filter(process_working_copies::process_id.eq(process_id))
            .filter(process_working_copies::user_id.eq(user_id))
            .select(WorkingCopy::as_select())
            .first(conn)
            .await
            .optional()
    }

    pub async fn upsert(
        conn: &mut AsyncPgConnection,
        process: &Process,
        user_id: i64,
        base_version: i32,
        definition: &Value,
        now: DateTime<Utc>,
    ) -> QueryResult<usize> {
        diesel::insert_into(process_working_copies::table)
            .values((
                process_working_copies::process_id.eq(process.id),
                process_working_copies::user_id.eq(user_id),
                process_working_copies::account_id.eq(process.account_id),
                process_working_copies::base_version.eq(base_version),
                process_working_copies::definition.eq(definition),
                process_working_copies::updated_at.eq(now),
            ))
            .on_conflict((process_working_copies::process_id, process_working_copies::user_id))
            .do_update()
            .set((process_working_copies::definition.eq(definition), process_working_copies::updated_at.eq(now)))
            .execute(conn)
            .await
    }

    pub async fn discard(conn: &mut AsyncPgConnection, process_id: i64, user_id: i64) -> QueryResult<usize> {
        diesel::delete(
            process_working_copies::table
                .filter(process_working_copies::process_id.eq(process_id))
                .filter(process_working_copies::user_id.eq(user_id)),
        )
        .execute(conn)
        .await
    }
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = input_sets)]
pub struct InputSet {
    pub id: i64,
    pub account_id: i64,
    pub process_id: i64,
    pub name: String,
    pub input_values: Value,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl InputSet {
    pub async fn create(
        conn: &mut AsyncPgConnection,
        process: &Process,
        name: &str,
        values: &Value,
        now: DateTime<Utc>,
    ) -> QueryResult<InputSet> {
        diesel::insert_into(input_sets::table)
            .values((
                input_sets::account_id.eq(process.account_id),
                input_sets::process_id.eq(process.id),
                input_sets::name.eq(name),
                input_sets::input_values.eq(values),
                input_sets::created_at.eq(now),
                input_sets::updated_at.eq(now),
            ))
            .returning(InputSet::as_returning())
            .get_result(conn)
            .await
    }

    pub async fn list(conn: &mut AsyncPgConnection, account_id: i64, process_id: i64) -> QueryResult<Vec<InputSet>> {
        input_sets::table
            .filter(input_sets::account_id.eq(account_id))
            .filter(input_sets::process_id.eq(process_id))
            .order(input_sets::name)
            .select(InputSet::as_select())
            .load(conn)
            .await
    }

    pub async fn find(conn: &mut AsyncPgConnection, account_id: i64, process_id: i64, id: i64) -> QueryResult<InputSet> {
        input_sets::table
            .filter(input_sets::account_id.eq(account_id))
            .filter(input_sets::process_id.eq(process_id))
            .filter(input_sets::id.eq(id))
            .select(InputSet::as_select())
            .first(conn)
            .await
    }

    pub async fn by_name(conn: &mut AsyncPgConnection, account_id: i64, process_id: i64, name: &str) -> QueryResult<InputSet> {
        input_sets::table
            .filter(input_sets::account_id.eq(account_id))
            .filter(input_sets::process_id.eq(process_id))
            .filter(input_sets::name.eq(name))
            .select(InputSet::as_select())
            .first(conn)
            .await
    }

    pub async fn update(conn: &mut AsyncPgConnection, id: i64, name: &str, values: &Value, now: DateTime<Utc>) -> QueryResult<InputSet> {
        diesel::update(input_sets::table.find(id))
            .set((input_sets::name.eq(name), input_sets::input_values.eq(values), input_sets::updated_at.eq(now)))
            .returning(InputSet::as_returning())
            .get_result(conn)
            .await
    }

    pub async fn delete(conn: &mut AsyncPgConnection, id: i64) -> QueryResult<usize> {
        diesel::delete(input_sets::table.find(id)).execute(conn).await
    }
}

/// Parsed definitions of process versions, which never change once saved, so the engine reads
/// and parses each one once per server instead of at every step. One cache per database (it
/// lives in `Services`): ids repeat across databases.
#[derive(Default)]
pub struct DefinitionCache(std::sync::Mutex<std::collections::HashMap<(i64, i64, i32), std::sync::Arc<Definition>>>);

impl DefinitionCache {
    /// Bounds the memory: past this many versions the cache starts again.
    const CAPACITY: usize = 2048;

    /// The definition of the process version a release is pinned to.
    pub async fn pinned(
        &self,
        conn: &mut AsyncPgConnection,
        release: &super::releases::Release,
    ) -> QueryResult<std::sync::Arc<Definition>> {
        self.get(conn, (release.account_id, release.process_id, release.process_version)).await
    }

    pub async fn get(
        &self,
        conn: &mut AsyncPgConnection,
        (account_id, process_id, version): (i64, i64, i32),
    ) -> QueryResult<std::sync::Arc<Definition>> {
        let key = (account_id, process_id, version);
        if let Some(found) = self.0.lock().ok().and_then(|cached| cached.get(&key).cloned()) {
            return Ok(found);
        }
        let row = ProcessVersion::find(conn, account_id, process_id, version).await?;
        let def = std::sync::Arc::new(parse_value(row.definition).map_err(|e| diesel::result::Error::DeserializationError(Box::new(e)))?);
        if let Ok(mut cached) = self.0.lock() {
            if cached.len() >= Self::CAPACITY {
                cached.clear();
            }
            cached.insert(key, def.clone());
        }
        Ok(def)
    }
}
