//! Deployments recorded by activities that `deploys`.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use crate::db::schema::deployments;

#[derive(Debug, Clone, Queryable)]
pub struct Deployment {
    pub service: String,
    pub version: String,
    pub environment: String,
    pub release_id: Option<i64>,
    pub deployed_at: DateTime<Utc>,
}

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

    /// The newest `limit` deployments of the account, optionally of one environment or service.
    pub async fn latest(
        conn: &mut AsyncPgConnection,
        account_id: i64,
        environment: Option<String>,
        service: Option<String>,
        limit: i64,
    ) -> QueryResult<Vec<Deployment>> {
        let mut q = deployments::table.filter(deployments::account_id.eq(account_id)).into_boxed();
        if let Some(e) = environment {
            q = q.filter(deployments::environment.eq(e));
        }
        if let Some(s) = service {
            q = q.filter(deployments::service.eq(s));
        }
        q.order((deployments::deployed_at.desc(), deployments::id.desc()))
            .limit(limit)
            .select((
                deployments::service,
                deployments::version,
                deployments::environment,
                deployments::release_id,
                deployments::deployed_at,
            ))
            .load(conn)
            .await
    }
}
