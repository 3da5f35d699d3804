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
    pub release_id: i64,
    pub deployed_at: DateTime<Utc>,
}

impl Deployment {
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
