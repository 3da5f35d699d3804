//! The report queries of DESIGN §8: what is deployed where, a service's history, releases by
//! period. Archived releases are included; purged ones keep their deployments (name and org are
//! copied onto the deployment row). Each filters by a `Visibility` in SQL.

use crate::domain::release::{ReleaseType, State, Status};
use chrono::{DateTime, Utc};
use diesel::sql_types::{Array, BigInt, Bool, Nullable, Text, Timestamptz};
use diesel::{QueryResult, QueryableByName};
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use crate::domain::policy::Visibility;

/// The filters every report takes; `org: Some(None)` means account-level releases only.
#[derive(Debug, Clone, Default)]
pub struct ReportFilter {
    pub org: Option<Option<i64>>,
    pub environment: Option<String>,
    pub service: Option<String>,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, QueryableByName, PartialEq, Eq, serde::Deserialize)]
pub struct DeploymentRow {
    #[diesel(sql_type = Text)]
    pub service: String,
    #[diesel(sql_type = Text)]
    pub environment: String,
    #[diesel(sql_type = Text)]
    pub version: String,
    #[diesel(sql_type = Nullable<BigInt>)]
    pub release_id: Option<i64>,
    #[diesel(sql_type = Text)]
    pub release_name: String,
    #[diesel(sql_type = Timestamptz)]
    pub deployed_at: DateTime<Utc>,
}

/// The visibility and filter clause over `d` (deployments); binds $1..$10 (`bind_report_filter!`).
const DEPLOYMENT_WHERE: &str = "d.account_id = $1 \
    AND (CASE WHEN d.org_id IS NULL THEN $2 ELSE ($3 OR d.org_id = ANY($4)) END) \
    AND (NOT $5 OR d.org_id IS NOT DISTINCT FROM $6) \
    AND ($7::text IS NULL OR d.environment = $7) AND ($8::text IS NULL OR d.service = $8) \
    AND ($9::timestamptz IS NULL OR d.deployed_at >= $9) AND ($10::timestamptz IS NULL OR d.deployed_at < $10)";

macro_rules! bind_report_filter {
    ($query:expr, $account:expr, $vis:expr, $f:expr) => {
        $query
            .bind::<BigInt, _>($account)
            .bind::<Bool, _>($vis.account_level)
            .bind::<Bool, _>($vis.all_orgs)
            .bind::<Array<BigInt>, _>(&$vis.orgs)
            .bind::<Bool, _>($f.org.is_some())
            .bind::<Nullable<BigInt>, _>($f.org.flatten())
            .bind::<Nullable<Text>, _>(&$f.environment)
            .bind::<Nullable<Text>, _>(&$f.service)
            .bind::<Nullable<Timestamptz>, _>($f.from)
            .bind::<Nullable<Timestamptz>, _>($f.to)
    };
}

/// `/reports/deployed`: the latest successful deployment of each (service, environment) among
/// the releases this viewer may see and the filter admits.
pub async fn deployed(
    conn: &mut AsyncPgConnection,
    account_id: i64,
    vis: &Visibility,
    f: &ReportFilter,
) -> QueryResult<Vec<DeploymentRow>> {
    // A skip scan over `deployments_latest`: walk the distinct (service, environment) pairs
    // through the index, then take each pair's newest admitted row, instead of reading every
    // deployment the account ever made (DISTINCT ON does).
    let sql = format!(
        "WITH RECURSIVE pairs AS ( \
           (SELECT service, environment FROM deployments WHERE account_id = $1 ORDER BY service, environment LIMIT 1) \
           UNION ALL \
           SELECT next.service, next.environment FROM pairs p CROSS JOIN LATERAL \
             (SELECT service, environment FROM deployments \
              WHERE account_id = $1 AND (service, environment) > (p.service, p.environment) \
              ORDER BY service, environment LIMIT 1) next) \
         SELECT newest.* FROM pairs p CROSS JOIN LATERAL \
           (SELECT d.service, d.environment, d.version, d.release_id, d.release_name, d.deployed_at FROM deployments d \
            WHERE d.service = p.service AND d.environment = p.environment AND {DEPLOYMENT_WHERE} \
            ORDER BY d.deployed_at DESC, d.id DESC LIMIT 1) newest \
         ORDER BY newest.service, newest.environment"
    );
    bind_report_filter!(diesel::sql_query(sql), account_id, vis, f).load(conn).await
}

/// What each of these environments runs now of each of these services (as `deployed`, for a
/// release board): one index probe per pair.
pub async fn deployed_of(
    conn: &mut AsyncPgConnection,
    account_id: i64,
    vis: &Visibility,
    (services, environments): (&[String], &[String]),
) -> QueryResult<Vec<DeploymentRow>> {
    let sql = format!(
        "SELECT newest.* FROM unnest($11::text[]) s(service) CROSS JOIN unnest($12::text[]) e(environment) CROSS JOIN LATERAL \
           (SELECT d.service, d.environment, d.version, d.release_id, d.release_name, d.deployed_at FROM deployments d \
            WHERE d.service = s.service AND d.environment = e.environment AND {DEPLOYMENT_WHERE} \
            ORDER BY d.deployed_at DESC, d.id DESC LIMIT 1) newest"
    );
    bind_report_filter!(diesel::sql_query(sql), account_id, vis, ReportFilter::default())
        .bind::<Array<Text>, _>(services)
        .bind::<Array<Text>, _>(environments)
        .load(conn)
        .await
}

/// `/reports/history`: deployments newest first, at most `limit`.
pub async fn history(
    conn: &mut AsyncPgConnection,
    account_id: i64,
    vis: &Visibility,
    f: &ReportFilter,
    limit: i64,
) -> QueryResult<Vec<DeploymentRow>> {
    let sql = format!(
        "SELECT d.service, d.environment, d.version, d.release_id, d.release_name, d.deployed_at \
         FROM deployments d WHERE {DEPLOYMENT_WHERE} ORDER BY d.deployed_at DESC, d.id DESC LIMIT $11"
    );
    bind_report_filter!(diesel::sql_query(sql), account_id, vis, f).bind::<BigInt, _>(limit).load(conn).await
}

#[derive(Debug, Clone, QueryableByName)]
pub struct ReleaseRow {
    #[diesel(sql_type = BigInt)]
    pub id: i64,
    #[diesel(sql_type = Text)]
    pub name: String,
    #[diesel(sql_type = Text)]
    pub release_type: ReleaseType,
    #[diesel(sql_type = Nullable<Text>)]
    pub org: Option<String>,
    #[diesel(sql_type = Text)]
    pub state: State,
    #[diesel(sql_type = Text)]
    pub status: Status,
    #[diesel(sql_type = Nullable<Text>)]
    pub status_reason: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    pub owner: Option<String>,
    #[diesel(sql_type = Array<Text>)]
    pub environments: Vec<String>,
    #[diesel(sql_type = Array<Text>)]
    pub services: Vec<String>,
    #[diesel(sql_type = Timestamptz)]
    pub created_at: DateTime<Utc>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    pub started_at: Option<DateTime<Utc>>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    pub finished_at: Option<DateTime<Utc>>,
}

/// `/reports/releases`: releases whose start (or scheduled start, or creation) falls in the
/// period, newest first, at most `limit`.
pub async fn releases(
    conn: &mut AsyncPgConnection,
    account_id: i64,
    vis: &Visibility,
    f: &ReportFilter,
    limit: i64,
) -> QueryResult<Vec<ReleaseRow>> {
    let query = diesel::sql_query(
        "SELECT r.id, r.name, r.release_type, o.slug AS org, r.state, r.status, r.status_reason, u.email AS owner, \
                r.environments, r.services, r.created_at, r.started_at, r.finished_at \
         FROM releases r LEFT JOIN organizations o ON o.id = r.org_id LEFT JOIN users u ON u.id = r.owner_id \
         WHERE r.account_id = $1 \
           AND (CASE WHEN r.org_id IS NULL THEN $2 ELSE ($3 OR r.org_id = ANY($4)) END) \
           AND (NOT $5 OR r.org_id IS NOT DISTINCT FROM $6) \
           AND ($7::text IS NULL OR $7 = ANY(r.environments)) AND ($8::text IS NULL OR $8 = ANY(r.services)) \
           AND ($9::timestamptz IS NULL OR COALESCE(r.started_at, r.schedule_start, r.created_at) >= $9) \
           AND ($10::timestamptz IS NULL OR COALESCE(r.started_at, r.schedule_start, r.created_at) < $10) \
         ORDER BY COALESCE(r.started_at, r.schedule_start, r.created_at) DESC, r.id DESC LIMIT $11",
    );
    bind_report_filter!(query, account_id, vis, f).bind::<BigInt, _>(limit).load(conn).await
}

#[derive(Debug, Clone, QueryableByName, serde::Deserialize)]
pub struct ApprovalRow {
    #[diesel(sql_type = BigInt)]
    pub release_id: i64,
    #[diesel(sql_type = Text)]
    pub phase: String,
    #[diesel(sql_type = Text)]
    pub activity: String,
    /// Who cast the vote.
    #[diesel(sql_type = Text)]
    pub approver: String,
    /// Whose vote it was, when a delegate cast it.
    #[diesel(sql_type = Nullable<Text>)]
    pub on_behalf_of: Option<String>,
    #[diesel(sql_type = Text)]
    pub decision: String,
    #[diesel(sql_type = Nullable<Text>)]
    pub comment: Option<String>,
    #[diesel(sql_type = Timestamptz)]
    pub at: DateTime<Utc>,
}

/// Every approval vote of these releases, oldest first.
pub async fn approvals(conn: &mut AsyncPgConnection, release_ids: &[i64]) -> QueryResult<Vec<ApprovalRow>> {
    diesel::sql_query(
        "SELECT v.release_id, v.phase_key AS phase, v.activity_key AS activity, c.email AS approver, \
                CASE WHEN v.cast_by <> v.user_id THEN u.email END AS on_behalf_of, v.decision, v.comment, v.at \
         FROM approval_votes v JOIN users u ON u.id = v.user_id JOIN users c ON c.id = v.cast_by \
         WHERE v.release_id = ANY($1) ORDER BY v.at, v.phase_key, v.activity_key",
    )
    .bind::<Array<BigInt>, _>(release_ids)
    .load(conn)
    .await
}

#[derive(Debug, Clone, QueryableByName)]
pub struct FailureRow {
    #[diesel(sql_type = BigInt)]
    pub release_id: i64,
    #[diesel(sql_type = Text)]
    pub phase: String,
    #[diesel(sql_type = Text)]
    pub activity: String,
    #[diesel(sql_type = Text)]
    pub reason: String,
}

/// Why activities of these releases failed (those still failed, or failed and then ignored or
/// fixed: the reason stays recorded on the activity).
pub async fn failures(conn: &mut AsyncPgConnection, release_ids: &[i64]) -> QueryResult<Vec<FailureRow>> {
    diesel::sql_query(
        "SELECT a.release_id, a.phase_key AS phase, a.key AS activity, a.status_reason AS reason FROM release_activities a \
         WHERE a.release_id = ANY($1) AND a.status = 'Failed' AND a.status_reason IS NOT NULL ORDER BY a.release_id, a.position",
    )
    .bind::<Array<BigInt>, _>(release_ids)
    .load(conn)
    .await
}

#[derive(Debug, Clone, QueryableByName)]
pub struct ProductionDeployment {
    #[diesel(sql_type = Text)]
    pub service: String,
    #[diesel(sql_type = Text)]
    pub environment: String,
    #[diesel(sql_type = Nullable<BigInt>)]
    pub release_id: Option<i64>,
    #[diesel(sql_type = Timestamptz)]
    pub deployed_at: DateTime<Utc>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    pub release_created_at: Option<DateTime<Utc>>,
    #[diesel(sql_type = Nullable<diesel::sql_types::Jsonb>)]
    pub artifacts: Option<serde_json::Value>,
}

/// Deployments to production environments from `f.from` on (no upper bound: restores after the
/// period still end a failure inside it), for the insights.
pub async fn production_deployments(
    conn: &mut AsyncPgConnection,
    account_id: i64,
    vis: &Visibility,
    f: &ReportFilter,
) -> QueryResult<Vec<ProductionDeployment>> {
    let open_ended = ReportFilter { to: None, ..f.clone() };
    let sql = format!(
        "SELECT d.service, d.environment, d.release_id, d.deployed_at, r.created_at AS release_created_at, r.artifacts \
         FROM deployments d JOIN environments e ON e.account_id = d.account_id AND e.name = d.environment AND e.production \
         LEFT JOIN releases r ON r.id = d.release_id \
         WHERE {DEPLOYMENT_WHERE} ORDER BY d.deployed_at, d.id"
    );
    bind_report_filter!(diesel::sql_query(sql), account_id, vis, open_ended).load(conn).await
}

#[derive(Debug, Clone, QueryableByName)]
pub struct ProductionRelease {
    #[diesel(sql_type = BigInt)]
    pub id: i64,
    #[diesel(sql_type = Text)]
    pub status: Status,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    pub finished_at: Option<DateTime<Utc>>,
    #[diesel(sql_type = Array<Text>)]
    pub environments: Vec<String>,
    #[diesel(sql_type = Array<Text>)]
    pub services: Vec<String>,
    /// When the first release marked `hotfix_for` this one was created.
    #[diesel(sql_type = Nullable<Timestamptz>)]
    pub hotfix_at: Option<DateTime<Utc>>,
}

/// Releases that count for the change failure rate: those with one of `ids` (they deployed to
/// production in the period), and those that ended Failed or RolledBack in the period while
/// targeting a production environment.
pub async fn production_releases(
    conn: &mut AsyncPgConnection,
    account_id: i64,
    vis: &Visibility,
    f: &ReportFilter,
    ids: &[i64],
) -> QueryResult<Vec<ProductionRelease>> {
    diesel::sql_query(
        "SELECT r.id, r.status, r.finished_at, r.environments, r.services, \
                (SELECT min(h.created_at) FROM release_links l JOIN releases h ON h.id = l.release_id \
                 WHERE l.target_id = r.id AND l.kind = 'hotfix_for') AS hotfix_at \
         FROM releases r \
         WHERE r.account_id = $1 \
           AND (CASE WHEN r.org_id IS NULL THEN $2 ELSE ($3 OR r.org_id = ANY($4)) END) \
           AND (NOT $5 OR r.org_id IS NOT DISTINCT FROM $6) \
           AND (r.id = ANY($7) OR (r.status IN ('Failed', 'RolledBack') \
                AND ($8::timestamptz IS NULL OR r.finished_at >= $8) AND ($9::timestamptz IS NULL OR r.finished_at < $9) \
                AND r.environments && (SELECT coalesce(array_agg(name), '{}') FROM environments WHERE account_id = $1 AND production)))",
    )
    .bind::<BigInt, _>(account_id)
    .bind::<Bool, _>(vis.account_level)
    .bind::<Bool, _>(vis.all_orgs)
    .bind::<Array<BigInt>, _>(&vis.orgs)
    .bind::<Bool, _>(f.org.is_some())
    .bind::<Nullable<BigInt>, _>(f.org.flatten())
    .bind::<Array<BigInt>, _>(ids)
    .bind::<Nullable<Timestamptz>, _>(f.from)
    .bind::<Nullable<Timestamptz>, _>(f.to)
    .load(conn)
    .await
}

/// (deployments, audit events) in the whole database.
pub async fn totals(conn: &mut AsyncPgConnection) -> QueryResult<(i64, i64)> {
    use diesel::QueryDsl;
    let deployments: i64 = crate::db::schema::deployments::table.count().get_result(conn).await?;
    let events: i64 = crate::db::schema::audit_events::table.count().get_result(conn).await?;
    Ok((deployments, events))
}
