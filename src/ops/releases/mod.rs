//! Releases: create, edit drafts (optimistic locking), activate (and the auto-activation sweep),
//! run now, abort, restart, delete/purge, retention.

mod activation;
mod delete;
mod edit;
mod input;
mod lifecycle;
mod listing;
mod prepare;
mod view;

pub use activation::*;
pub use delete::*;
pub use edit::*;
pub use input::*;
pub use lifecycle::*;
pub use listing::*;
pub use prepare::*;
pub use view::*;

use diesel_async::AsyncPgConnection;

use crate::db::models::processes::ProcessVersion;
use crate::db::models::releases::Release;
use crate::domain::process::Definition;
use crate::ops::OpError;

/// The definition of the process version a release is pinned to, in one statement (the engine
/// reads it on every step; versions are immutable, so the process row itself is not needed).
pub async fn pinned_definition(conn: &mut AsyncPgConnection, release: &Release) -> Result<Definition, OpError> {
    let row = ProcessVersion::find(conn, release.account_id, release.process_id, release.process_version).await?;
    crate::ops::processes::stored_definition(row.definition)
}
