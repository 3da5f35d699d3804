//! Deployments recorded by activities that `deploys`.

use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

/// The deployments table's own queries (the reports read it in `db::reports`).
pub struct Deployment;

#[derive(Debug, QueryableByName)]
struct Cell {
    #[diesel(sql_type = diesel::sql_types::Text)]
    service: String,
    #[diesel(sql_type = diesel::sql_types::Text)]
    environment: String,
}

impl Deployment {
    /// The (service, environment) cells whose latest deployment came from this release.
    pub async fn current_of(conn: &mut AsyncPgConnection, account_id: i64, release_id: i64) -> QueryResult<Vec<(String, String)>> {
        let cells: Vec<Cell> = diesel::sql_query(
            "SELECT service, environment FROM ( \
                 SELECT DISTINCT ON (service, environment) service, environment, release_id FROM deployments \
                 WHERE account_id = $1 AND (service, environment) IN (SELECT service, environment FROM deployments WHERE release_id = $2) \
                 ORDER BY service, environment, deployed_at DESC, id DESC) latest \
             WHERE release_id = $2 ORDER BY service, environment",
        )
        .bind::<diesel::sql_types::BigInt, _>(account_id)
        .bind::<diesel::sql_types::BigInt, _>(release_id)
        .load(conn)
        .await?;
        Ok(cells.into_iter().map(|c| (c.service, c.environment)).collect())
    }
}
