//! What a successful activity leaves behind: artifacts (`records`) and deployments (`deploys`).

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde_json::Value;

use crate::db::models::releases::Release;
use crate::db::schema::{deployments, releases};
use crate::domain::process::template::{render, to_text};
use crate::domain::process::Definition;
use crate::ops::context::{lookup, Secrets};
use crate::ops::OpError;

/// Artifacts (`records`) and deployments (`deploys`) of an activity that just succeeded; the
/// release's targets are kept current.
pub async fn record_results(conn: &mut AsyncPgConnection, r: &Release, phase: &str, key: &str, now: DateTime<Utc>) -> Result<(), OpError> {
    let def = crate::ops::releases::pinned_definition(conn, r).await?;
    record_results_of(conn, r, &def, (phase, key), now).await
}

/// `record_results` with the release's definition at hand.
pub async fn record_results_of(
    conn: &mut AsyncPgConnection,
    r: &Release,
    def: &Definition,
    (phase, key): (&str, &str),
    now: DateTime<Utc>,
) -> Result<(), OpError> {
    let Some(adef) = def.activity(phase, key).cloned() else { return Ok(()) };
    if adef.for_each.is_some() && crate::domain::process::template::split_instance(key).1.is_none() {
        // A fan-out activity records per instance.
        return Ok(());
    }
    if adef.records.is_empty() && adef.deploys.is_none() {
        return Ok(());
    }
    let lookup = lookup(conn, r, def, (phase, key), Secrets::Masked, None).await?;
    if !adef.records.is_empty() {
        let mut artifacts = r.artifacts.as_object().cloned().unwrap_or_default();
        for name in &adef.records {
            if let Some(v) = lookup.get(&format!("phases.{phase}.activities.{key}.outputs.{name}")) {
                artifacts.insert(format!("{phase}.{key}.{name}"), v.clone());
            }
        }
        diesel::update(releases::table.find(r.id)).set(releases::artifacts.eq(Value::Object(artifacts))).execute(conn).await?;
    }
    if let Some(d) = &adef.deploys {
        let resolve = |t: &Option<String>| t.as_ref().and_then(|t| render(&Value::String(t.clone()), &lookup).ok());
        let services: Vec<String> = match resolve(&d.service) {
            Some(Value::Array(items)) => items.iter().map(to_text).collect(),
            Some(v) => vec![to_text(&v)],
            None => Vec::new(),
        };
        let version = resolve(&d.version).map(|v| to_text(&v)).unwrap_or_default();
        let environments: Vec<String> = match resolve(&d.environment) {
            Some(Value::Array(items)) => items.iter().map(to_text).collect(),
            Some(v) => vec![to_text(&v)],
            None => r.environments.clone(),
        };
        let mut envs = r.environments.clone();
        let mut svcs = r.services.clone();
        for env in environments.iter().filter(|e| !e.is_empty()) {
            for service in services.iter().filter(|s| !s.is_empty()) {
                diesel::insert_into(deployments::table)
                    .values((
                        deployments::account_id.eq(r.account_id),
                        deployments::release_id.eq(r.id),
                        deployments::release_name.eq(&r.name),
                        deployments::org_id.eq(r.org_id),
                        deployments::phase_key.eq(phase),
                        deployments::activity_key.eq(key),
                        deployments::service.eq(service),
                        deployments::version.eq(&version),
                        deployments::environment.eq(env),
                        deployments::deployed_at.eq(now),
                    ))
                    .execute(conn)
                    .await?;
                if !svcs.contains(service) {
                    svcs.push(service.clone());
                }
            }
            if !envs.contains(env) {
                envs.push(env.clone());
            }
        }
        diesel::update(releases::table.find(r.id))
            .set((releases::environments.eq(envs), releases::services.eq(svcs)))
            .execute(conn)
            .await?;
    }
    Ok(())
}
