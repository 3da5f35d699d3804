//! The release board (DESIGN §8): for a release with a manifest (`service_versions`), a row per
//! service with its planned version, what each target environment runs now, and this release's
//! status deploying it there.

use diesel_async::AsyncPgConnection;
use serde::Serialize;
use serde_json::Value;
use std::collections::HashMap;

use crate::db::models::catalog::Environment;
use crate::db::models::releases::ReleaseActivity;
use crate::domain::engine::Node;
use crate::domain::policy::{Action, Binding, Visibility};
use crate::domain::process::definition::InputType;
use crate::domain::process::template::{render, to_text};
use crate::ops::context::{lookup_in, with_item, Secrets};
use crate::ops::releases::ReleaseView;
use crate::ops::OpError;

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Board {
    /// The release's target environments, in the account's order.
    pub environments: Vec<String>,
    pub rows: Vec<BoardRow>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct BoardRow {
    pub service: String,
    pub version: String,
    pub cells: Vec<BoardCell>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct BoardCell {
    pub environment: String,
    /// What the environment runs now (the latest successful deployment the reader may see).
    pub deployed_version: Option<String>,
    /// The status of this release's instance (or activity) deploying the service there.
    #[schema(value_type = Option<String>)]
    pub status: Option<Node>,
    /// The environment does not run the planned version yet.
    pub changed: bool,
}

/// The manifest of a release: its first `service_versions` input, in service order.
fn manifest(view: &ReleaseView) -> Option<Vec<(String, String)>> {
    let input = view.definition.inputs.iter().find(|i| i.kind == InputType::ServiceVersions)?;
    let map = view.release.inputs.get(&input.name)?.as_object()?;
    Some(map.iter().map(|(s, v)| (s.clone(), to_text(v))).collect())
}

fn names(v: Option<Value>) -> Vec<String> {
    match v {
        Some(Value::Array(items)) => items.iter().map(to_text).collect(),
        Some(v) => vec![to_text(&v)],
        None => Vec::new(),
    }
}

/// (environment, service) → the status of what deploys it in this release, first deploy first.
fn statuses(view: &ReleaseView) -> HashMap<(String, String), Node> {
    let r = &view.release;
    let def = &view.definition;
    let mut out: HashMap<(String, String), Node> = HashMap::new();
    // What a deploy targets comes from inputs and variables (and, rarely, an earlier phase's
    // outputs): the instances' own outputs are left out, which keeps a 300-instance board cheap.
    let activities: Vec<ReleaseActivity> = view.activities.iter().filter(|a| !a.is_instance()).cloned().collect();
    let mut put = |env: &str, service: &str, status: Node| {
        let slot = out.entry((env.to_string(), service.to_string())).or_insert(status);
        // A later deploy (a rollback) shows once it has started.
        if !matches!(status, Node::NotStarted | Node::Skipped) {
            *slot = status;
        }
    };
    for a in view.activities.iter().filter(|a| !a.is_instance()) {
        let Some(adef) = def.activity(&a.phase_key, &a.key) else { continue };
        let Some(d) = &adef.deploys else { continue };
        let lookup = lookup_in(r, &activities, def, (&a.phase_key, &a.key), Secrets::Masked, None);
        let resolve =
            |t: &Option<String>, l: &crate::ops::context::Lookup| t.as_ref().and_then(|t| render(&Value::String(t.clone()), l).ok());
        let mut environments = names(resolve(&d.environment, &lookup));
        if environments.is_empty() {
            environments = r.environments.clone();
        }
        if adef.for_each.is_none() {
            for e in &environments {
                for s in names(resolve(&d.service, &lookup)) {
                    put(e, &s, a.status);
                }
            }
            continue;
        }
        let instances = view.activities.iter().filter(|i| i.phase_key == a.phase_key && i.fan_of.as_deref() == Some(a.key.as_str()));
        for i in instances {
            let Some(item) = &i.item else { continue };
            let services = match d.service.as_deref() {
                // The usual manifest fan-out names the item itself: no rendering per instance.
                Some("${item}" | "${item.key}" | "${item.service}") => vec![item.clone()],
                _ => {
                    let mut l = lookup.clone();
                    with_item(&mut l, item, i.item_value.as_ref());
                    names(resolve(&d.service, &l))
                }
            };
            for e in &environments {
                for s in &services {
                    put(e, s, i.status);
                }
            }
        }
        // Not fanned out yet: its services are planned, not started.
        if a.status == Node::NotStarted {
            if let Some(m) = manifest(view) {
                for e in &environments {
                    for (s, _) in &m {
                        put(e, s, Node::NotStarted);
                    }
                }
            }
        }
    }
    out
}

/// The board of a release with a manifest (None without one), as the reader may see it.
pub async fn board(conn: &mut AsyncPgConnection, view: &ReleaseView, bindings: &[Binding]) -> Result<Option<Board>, OpError> {
    let Some(manifest) = manifest(view) else { return Ok(None) };
    let r = &view.release;
    let mut environments: Vec<(i32, String)> = Environment::list(conn, r.account_id)
        .await?
        .into_iter()
        .filter(|e| r.environments.contains(&e.name))
        .map(|e| (e.position, e.name))
        .collect();
    environments.sort();
    let environments: Vec<String> = environments.into_iter().map(|(_, n)| n).collect();
    let services: Vec<String> = manifest.iter().map(|(s, _)| s.clone()).collect();
    let visibility = Visibility::of(bindings, Action::ViewRelease);
    let deployed = crate::db::reports::deployed_of(conn, r.account_id, &visibility, (&services, &environments)).await?;
    let running: HashMap<(&str, &str), &str> =
        deployed.iter().map(|d| ((d.service.as_str(), d.environment.as_str()), d.version.as_str())).collect();
    let statuses = statuses(view);
    let rows = manifest
        .into_iter()
        .map(|(service, version)| BoardRow {
            cells: environments
                .iter()
                .map(|e| {
                    let deployed_version = running.get(&(service.as_str(), e.as_str())).map(|v| v.to_string());
                    BoardCell {
                        environment: e.clone(),
                        changed: deployed_version.as_deref() != Some(version.as_str()),
                        deployed_version,
                        status: statuses.get(&(e.clone(), service.clone())).copied(),
                    }
                })
                .collect(),
            service,
            version,
        })
        .collect();
    Ok(Some(Board { environments, rows }))
}

/// Counts of a fan-out activity's instances by status, in the order statuses are shown.
pub fn instance_counts(instances: &[&ReleaseActivity]) -> Vec<(Node, usize)> {
    Node::ALL.iter().map(|s| (*s, instances.iter().filter(|i| i.status == *s).count())).filter(|(_, n)| *n > 0).collect()
}
