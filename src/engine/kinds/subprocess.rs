//! A subprocess: its child release is created from the named process and activated; the
//! activity ends when the child does (`ops::outcomes::child_finished`).

use chrono::{DateTime, Utc};
use diesel_async::AsyncPgConnection;

use crate::db::engine as rows;
use crate::db::models::releases::{Release, ReleaseActivity};
use crate::domain::engine::Node;
use crate::domain::process::definition::ActivityDef;
use crate::ops::context::{self, Secrets};
use crate::ops::outcomes::{self, Ending, Then};
use crate::ops::OpError;

/// After the start is written: the child release runs, or the attempt fails with why it could
/// not (`Some` status then).
pub async fn run(
    conn: &mut AsyncPgConnection,
    r: &Release,
    row: &ReleaseActivity,
    def: &ActivityDef,
    now: DateTime<Utc>,
) -> Result<Option<Node>, OpError> {
    let started = ReleaseActivity {
        attempts: row.attempts + 1,
        run_first_attempt: row.attempts + 1,
        status: Node::Running,
        started_at: Some(now),
        ..row.clone()
    };
    match start_child(conn, r, &started, def, now).await {
        Ok(child) => {
            rows::set_child(conn, r.id, (&row.phase_key, &row.key), child).await?;
            Ok(None)
        }
        Err(why) => {
            let ending = Ending::Failed { message: why.to_string(), permanent: true };
            let parent = crate::ops::releases::pinned_definition(conn, r).await?;
            outcomes::end(conn, (r, &parent), &started, ending, "system:engine", Then::Engine, now).await?;
            Ok(Some(rows::activity_status(conn, r.id, (&row.phase_key, &row.key)).await?))
        }
    }
}

/// Creates and activates the child release of a subprocess activity; `Err` says why it could not.
async fn start_child(
    conn: &mut AsyncPgConnection,
    r: &Release,
    row: &ReleaseActivity,
    def: &ActivityDef,
    now: DateTime<Utc>,
) -> Result<i64, ChildNotStarted> {
    use crate::db::models::processes::Process;
    use crate::ops::releases::{self as releases_ops, ReleaseInput};
    let wanted = def.process.clone().unwrap_or_default();
    let processes = Process::list(conn, r.account_id).await?;
    let Some(child_process) = processes.iter().find(|p| p.process.name.eq_ignore_ascii_case(&wanted)) else {
        return Err(ChildNotStarted::NoProcess(wanted));
    };
    let parent_def = crate::ops::releases::pinned_definition(conn, r).await?;
    let at = (row.phase_key.as_str(), row.key.as_str());
    let lookup = context::lookup(conn, r, &parent_def, at, Secrets::Masked, None).await?;
    let mut inputs = serde_json::Map::new();
    for (name, template) in &def.inputs {
        let value = crate::domain::process::template::render(template, &lookup)
            .map_err(|message| ChildNotStarted::Input { name: name.clone(), message })?;
        inputs.insert(name.clone(), value);
    }
    let owner = match r.owner_id {
        Some(id) => Some(format!("user:{}", crate::db::models::users::User::find(conn, r.account_id, id).await?.email)),
        None => None,
    };
    let org = match r.org_id {
        Some(id) => Some(crate::db::models::accounts::Organization::find(conn, r.account_id, id).await?.slug),
        None => None,
    };
    let input = ReleaseInput {
        process_id: Some(child_process.process.id),
        name: Some(format!("{} / {}", r.name, def.name)),
        release_type: Some(r.release_type.as_str().to_owned()),
        org: Some(org),
        inputs: Some(inputs),
        owner,
        ..Default::default()
    };
    let actor = crate::ops::Actor::system(r.account_id, "engine");
    // The engine holds no key here; see the decisions note on subprocess secrets.
    let secrets = crate::security::SecretBox::derive(b"unused");
    let mut prepared =
        releases_ops::prepare(conn, &actor, &r.time_zone, &secrets, &input, None, false).await.map_err(ChildNotStarted::Refused)?;
    prepared.links.push((crate::domain::release::LinkKind::SubprocessOf, r.id));
    let saved = releases_ops::create(conn, &actor, prepared, true, now).await.map_err(ChildNotStarted::Refused)?;
    Ok(saved.release.id)
}

/// Why a subprocess's child release could not start (the activity's reason says it).
#[derive(Debug, thiserror::Error)]
enum ChildNotStarted {
    #[error("there is no process {0:?} to run as a subprocess")]
    NoProcess(String),
    #[error("input {name}: {message}")]
    Input { name: String, message: String },
    #[error("{}", describe(.0))]
    Refused(#[source] OpError),
    #[error(transparent)]
    Op(#[from] OpError),
    #[error(transparent)]
    Db(#[from] diesel::result::Error),
}

fn describe(e: &OpError) -> String {
    match e {
        OpError::Invalid(errors) => errors.0.iter().map(|(f, m)| format!("{f} {m}")).collect::<Vec<_>>().join("; "),
        other => format!("the child release could not start: {other}"),
    }
}
