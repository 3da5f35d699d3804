//! What templates see when an activity starts: inputs, variables (global → phase → activity,
//! with the release's overrides), `release.*`, earlier outputs, `callback.url`.

use diesel_async::AsyncPgConnection;
use serde_json::{json, Value};
use std::collections::BTreeMap;

use crate::db::models::releases::{self as rows, Release, ReleaseActivity};
use crate::domain::process::overrides::ScopeAt;
use crate::domain::process::template::render;
use crate::domain::process::{Definition, VariableDef};
use crate::domain::release::with_defaults;
use crate::ops::processes::{masked, revealed};
use crate::ops::OpError;
use crate::security::SecretBox;

pub type Lookup = BTreeMap<String, Value>;

/// How secret inputs appear: in clear (for sending) or masked (for recording and showing).
#[derive(Clone, Copy)]
pub enum Secrets<'a> {
    Revealed(&'a SecretBox),
    Masked,
}

/// What templates of activity `at` = (phase, activity) see.
pub async fn lookup(
    conn: &mut AsyncPgConnection,
    r: &Release,
    def: &Definition,
    at: (&str, &str),
    secrets: Secrets<'_>,
    callback_url: Option<&str>,
) -> Result<Lookup, OpError> {
    let (_, activities) = rows::tree(conn, r.id).await?;
    Ok(lookup_in(r, &activities, def, at, secrets, callback_url))
}

/// What `${item…}` names inside one fan-out instance: the item, and for a map item its key and
/// value (a manifest's service and version).
pub fn with_item(map: &mut Lookup, item: &str, value: Option<&Value>) {
    map.insert("item".into(), json!(item));
    if let Some(value) = value {
        for field in ["key", "service"] {
            map.insert(format!("item.{field}"), json!(item));
        }
        for field in ["value", "version"] {
            map.insert(format!("item.{field}"), value.clone());
        }
    }
}

/// `lookup` over activities the caller has read already (their outputs are referenced).
pub fn lookup_in(
    r: &Release,
    activities: &[ReleaseActivity],
    def: &Definition,
    (phase, activity): (&str, &str),
    secrets: Secrets<'_>,
    callback_url: Option<&str>,
) -> Lookup {
    let mut map = Lookup::new();
    let inputs = match secrets {
        Secrets::Revealed(key) => revealed(key, &r.inputs),
        Secrets::Masked => masked(def, &r.inputs),
    };
    for (k, v) in with_defaults(def, &inputs) {
        map.insert(format!("inputs.{k}"), v);
    }
    map.insert("release.name".into(), json!(r.name));
    map.insert("release.id".into(), json!(r.id));
    map.insert("release.type".into(), json!(r.release_type));
    map.insert("release.start".into(), json!(r.start().to_rfc3339()));
    if let Some(url) = callback_url {
        map.insert("callback.url".into(), json!(url));
    }
    for a in activities {
        if let Some(outputs) = a.outputs.as_object() {
            for (k, v) in outputs {
                map.insert(format!("phases.{}.activities.{}.outputs.{k}", a.phase_key, a.key), v.clone());
                // A fan-out activity's output is a map item → value over its instances.
                if let (Some(of), Some(item)) = (&a.fan_of, &a.item) {
                    let whole = map.entry(format!("phases.{}.activities.{of}.outputs.{k}", a.phase_key)).or_insert_with(|| json!({}));
                    if let Some(whole) = whole.as_object_mut() {
                        whole.insert(item.clone(), v.clone());
                    }
                }
            }
        }
    }
    let instance = activities.iter().find(|a| a.phase_key == phase && a.key == activity).filter(|a| a.is_instance());
    if let Some(item) = instance.and_then(|a| a.item.as_ref()) {
        with_item(&mut map, item, instance.and_then(|a| a.item_value.as_ref()));
    }
    let activity = crate::domain::process::template::split_instance(activity).0;
    // Scopes from outer to inner: an inner variable of the same name wins.
    let mut scopes: Vec<(ScopeAt<'_>, &[VariableDef])> = vec![(ScopeAt::GLOBAL, &def.variables)];
    if let Some(p) = def.phase(phase) {
        scopes.push((ScopeAt::phase(&p.key), &p.variables));
        if let Some(a) = p.activities.iter().find(|a| a.key == activity) {
            scopes.push((ScopeAt::activity(&p.key, &a.key), &a.variables));
        }
    }
    let overrides = r.variables.as_object().cloned().unwrap_or_default();
    for (at, vars) in scopes {
        // Validation refused cycles, so a few passes resolve references among a scope's variables.
        for _ in 0..=vars.len() {
            for v in vars {
                if let Ok(resolved) = render(at.value(v, &overrides), &map) {
                    map.insert(format!("vars.{}", v.name), resolved);
                }
            }
        }
    }
    map
}
