//! Deploy locks as people and CI see them (DESIGN §2, §10): every lock with a holder or a
//! queue, releases the reader may not see shown as "a release you cannot see".

use chrono::{DateTime, Utc};
use diesel_async::AsyncPgConnection;
use serde::Serialize;

use crate::db::locks::LockShown;
use crate::db::models::catalog::Environment;
use crate::domain::policy::{Action, Binding, Visibility};
use crate::ops::OpError;

/// What a reader is shown of a release's claim on a lock.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ClaimView {
    /// Null for a release the reader may not see.
    pub release_id: Option<i64>,
    pub name: String,
    pub phase: Option<String>,
    pub since: DateTime<Utc>,
    #[serde(skip)]
    pub hotfix: bool,
}

/// One lock with its holder (null while free) and its queue in order.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct LockView {
    pub environment: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    pub held_by: Option<ClaimView>,
    /// Since when it is held (null while free).
    pub since: Option<DateTime<Utc>>,
    pub waiting: Vec<ClaimView>,
}

pub const HIDDEN_RELEASE: &str = "a release you cannot see";

fn claim(shown: &LockShown, visibility: &Visibility) -> ClaimView {
    let visible = visibility.sees(shown.org_id);
    ClaimView {
        release_id: visible.then_some(shown.row.release_id),
        name: if visible { shown.release_name.clone() } else { HIDDEN_RELEASE.to_string() },
        phase: visible.then(|| shown.phase_name.clone()),
        since: shown.row.since,
        hotfix: shown.row.hotfix,
    }
}

/// Every lock of the account that has a holder or a queue, by environment position, then
/// service.
pub async fn list(conn: &mut AsyncPgConnection, account_id: i64, bindings: &[Binding]) -> Result<Vec<LockView>, OpError> {
    let visibility = Visibility::of(bindings, Action::ViewRelease);
    let rows = crate::db::locks::list(conn, account_id).await?;
    let positions: std::collections::HashMap<String, i32> =
        Environment::list(conn, account_id).await?.into_iter().map(|e| (e.name, e.position)).collect();
    let mut out: Vec<LockView> = Vec::new();
    for shown in &rows {
        let service = Some(shown.row.service.clone()).filter(|s| !s.is_empty());
        let at = match out.iter().position(|l| l.environment == shown.row.environment && l.service == service) {
            Some(i) => i,
            None => {
                out.push(LockView { environment: shown.row.environment.clone(), service, held_by: None, since: None, waiting: Vec::new() });
                out.len() - 1
            }
        };
        let view = claim(shown, &visibility);
        if shown.row.held {
            out[at].since = Some(view.since);
            out[at].held_by = Some(view);
        } else {
            out[at].waiting.push(view);
        }
    }
    out.sort_by(|a, b| {
        let pos = |l: &LockView| positions.get(&l.environment).copied().unwrap_or(i32::MAX);
        (pos(a), &a.environment, &a.service).cmp(&(pos(b), &b.environment, &b.service))
    });
    Ok(out)
}
