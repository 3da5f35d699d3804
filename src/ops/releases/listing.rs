//! The release list page's reading: one page of releases, the total and the organizations,
//! shared per database snapshot by everyone with the same roles (`ops::read_cache`).

use std::sync::Arc;

use diesel_async::AsyncPgConnection;

use crate::db::models::accounts::Organization;
use crate::db::models::releases::{self as rows, Release};
use crate::domain::policy::{self, Action, Binding, Visibility};
use crate::ops::read_cache::{ReadCache, Reading};
use crate::ops::OpError;

use super::{filter_from, ListQuery};

/// What one list page depends on besides the data: who reads (their roles) and the query.
#[derive(Debug, PartialEq)]
pub struct ListKey {
    account_id: i64,
    bindings: Vec<Binding>,
    query: ListQuery,
    /// The reader's time zone: a `from`/`to` date is a day there.
    zone: chrono_tz::Tz,
}

pub struct ListPage {
    /// The page's releases the reader may see, newest window first.
    pub releases: Vec<Release>,
    pub total: i64,
    pub orgs: Vec<Organization>,
}

pub async fn list_page(
    conn: &mut AsyncPgConnection,
    (cache, reading): (&ReadCache<ListKey, ListPage>, Reading<'_>),
    account_id: i64,
    bindings: &[Binding],
    (query, zone): (&ListQuery, chrono_tz::Tz),
) -> Result<Arc<ListPage>, OpError> {
    let key = ListKey { account_id, bindings: bindings.to_vec(), query: query.clone(), zone };
    cache
        .get_or_load(key, reading, || async {
            let mut filter = filter_from(conn, account_id, query, zone).await?;
            filter.visible_to = Some(Visibility::of(bindings, Action::ViewRelease));
            let (found, total) = rows::list(conn, account_id, &filter, query.page.unwrap_or(0).max(0)).await?;
            let releases = found.into_iter().filter(|r| policy::allows(bindings, Action::ViewRelease, r.scope())).collect();
            let orgs = Organization::list(conn, account_id).await?;
            Ok(ListPage { releases, total, orgs })
        })
        .await
}
