//! The release page's reads, few and fixed in number (DESIGN §11: six statements besides the
//! session lookup): the release with its names and pinned definition; the reader's groups and
//! delegations; its links, deployments, approvals, comments and webhook attempts; and its change
//! marker for the live page.

use crate::db::prepared::prepared;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Jsonb};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde_json::Value;

use super::models::releases::{Release, ReleaseLink};
use super::reports::{ApprovalRow, DeploymentRow};
use super::schema::{audit_chain_heads, organizations, process_versions, processes, releases, users};

/// A release with what its page names: its organization's slug, its owner's e-mail, its
/// process's name and newest version, and the stored definition of the version it runs.
pub struct Head {
    pub release: Release,
    pub marker: Marker,
    pub org_slug: Option<String>,
    pub owner_email: Option<String>,
    pub process_name: String,
    pub latest_version: i32,
    pub definition: Option<Value>,
}

/// What changes whenever anything the release page shows changes: every change to a release is
/// recorded on its own audit chain, every change to people, groups and roles on the account's,
/// and a new process version raises `latest_version`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Queryable)]
pub struct Marker {
    pub org_id: Option<i64>,
    pub release_seq: Option<i64>,
    pub account_seq: Option<i64>,
    pub latest_version: i32,
}

/// The last sequence number of an audit chain, as a subquery (NULL while the chain is empty).
macro_rules! chain_seq {
    ($chain:expr) => {
        audit_chain_heads::table.filter(audit_chain_heads::chain.eq($chain)).select(audit_chain_heads::last_seq).single_value()
    };
}

/// The live page's question "did anything change?", in one statement.
pub async fn marker(conn: &mut AsyncPgConnection, account_id: i64, release_id: i64) -> QueryResult<Option<Marker>> {
    let (release_chain, account_chain) = chains(account_id, release_id);
    releases::table
        .inner_join(processes::table)
        .filter(releases::account_id.eq(account_id))
        .filter(releases::id.eq(release_id))
        .select((releases::org_id, chain_seq!(release_chain), chain_seq!(account_chain), processes::latest_version))
        .first(conn)
        .await
        .optional()
}

fn chains(account_id: i64, release_id: i64) -> (String, String) {
    (crate::domain::audit::chain_for(Some(account_id), Some(release_id)), crate::domain::audit::chain_for(Some(account_id), None))
}

pub async fn head(conn: &mut AsyncPgConnection, account_id: i64, release_id: i64) -> QueryResult<Head> {
    let (release_chain, account_chain) = chains(account_id, release_id);
    let owner_email = users::table.filter(users::id.nullable().eq(releases::owner_id)).select(users::email).single_value();
    let definition = process_versions::table
        .filter(process_versions::process_id.eq(releases::process_id))
        .filter(process_versions::version.eq(releases::process_version))
        .select(process_versions::definition)
        .single_value();
    let (release, org_slug, owner_email, process_name, latest_version, definition, release_seq, account_seq) = releases::table
        .inner_join(processes::table)
        .left_join(organizations::table.on(organizations::id.nullable().eq(releases::org_id)))
        .filter(releases::account_id.eq(account_id))
        .filter(releases::id.eq(release_id))
        .select((
            Release::as_select(),
            organizations::slug.nullable(),
            owner_email,
            processes::name,
            processes::latest_version,
            definition,
            chain_seq!(release_chain),
            chain_seq!(account_chain),
        ))
        .first(conn)
        .await?;
    let marker = Marker { org_id: release.org_id, release_seq, account_seq, latest_version };
    Ok(Head { release, marker, org_slug, owner_email, process_name, latest_version, definition })
}

/// What points from and to a release, where it deployed and who voted on it.
#[derive(Debug, Default)]
pub struct Related {
    pub links: Vec<ReleaseLink>,
    /// (release id, name, kind) of the releases linking to this one.
    pub linked_by: Vec<(i64, String, String)>,
    /// (release id, org id) of every release linked either way: who may see each.
    pub link_orgs: Vec<(i64, Option<i64>)>,
    pub deployments: Vec<DeploymentRow>,
    pub approvals: Vec<ApprovalRow>,
    pub comments: Vec<CommentRow>,
    pub attempts: Vec<AttemptRow>,
}

/// One webhook attempt as sent (its recorded request has secret inputs masked already).
#[derive(Debug, Clone, serde::Deserialize)]
pub struct AttemptRow {
    pub phase: String,
    pub activity: String,
    pub attempt: i32,
    pub state: String,
    pub request: Option<Value>,
    pub status: Option<i32>,
    /// The start of the response body.
    pub body: Option<String>,
    pub error: Option<String>,
    pub duration_ms: Option<i32>,
    pub due_at: chrono::DateTime<chrono::Utc>,
    pub sent_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// One comment of an activity's thread.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct CommentRow {
    pub phase: String,
    pub activity: String,
    pub author: String,
    pub text: String,
    pub at: chrono::DateTime<chrono::Utc>,
}

#[derive(QueryableByName)]
struct RelatedJson {
    #[diesel(sql_type = Jsonb)]
    links: Value,
    #[diesel(sql_type = Jsonb)]
    linked_by: Value,
    #[diesel(sql_type = Jsonb)]
    link_orgs: Value,
    #[diesel(sql_type = Jsonb)]
    deployments: Value,
    #[diesel(sql_type = Jsonb)]
    approvals: Value,
    #[diesel(sql_type = Jsonb)]
    comments: Value,
    #[diesel(sql_type = Jsonb)]
    attempts: Value,
}

fn parsed<T: serde::de::DeserializeOwned>(what: &'static str, v: Value) -> QueryResult<T> {
    serde_json::from_value(v).map_err(|e| diesel::result::Error::DeserializationError(format!("release page {what}: {e}").into()))
}

/// One statement: each part is aggregated to JSON in PostgreSQL, in the order the page shows it.
pub async fn related(conn: &mut AsyncPgConnection, release_id: i64) -> QueryResult<Related> {
    let row: RelatedJson = prepared(diesel::sql_query(
        "SELECT \
           COALESCE((SELECT jsonb_agg(jsonb_build_object('account_id', l.account_id, 'release_id', l.release_id, 'kind', l.kind, 'target_id', l.target_id)) \
                     FROM release_links l WHERE l.release_id = $1), '[]') AS links, \
           COALESCE((SELECT jsonb_agg(jsonb_build_array(l.release_id, r.name, l.kind)) \
                     FROM release_links l JOIN releases r ON r.id = l.release_id WHERE l.target_id = $1), '[]') AS linked_by, \
           COALESCE((SELECT jsonb_agg(jsonb_build_array(r.id, r.org_id)) FROM releases r \
                     WHERE r.id IN (SELECT l.target_id FROM release_links l WHERE l.release_id = $1 \
                                    UNION SELECT l.release_id FROM release_links l WHERE l.target_id = $1)), '[]') AS link_orgs, \
           COALESCE((SELECT jsonb_agg(jsonb_build_object('service', d.service, 'environment', d.environment, 'version', d.version, \
                            'release_id', d.release_id, 'release_name', d.release_name, 'deployed_at', d.deployed_at) ORDER BY d.deployed_at, d.id) \
                     FROM deployments d WHERE d.release_id = $1), '[]') AS deployments, \
           COALESCE((SELECT jsonb_agg(jsonb_build_object('release_id', v.release_id, 'phase', v.phase_key, 'activity', v.activity_key, \
                            'approver', c.email, 'on_behalf_of', CASE WHEN v.cast_by <> v.user_id THEN u.email END, \
                            'decision', v.decision, 'comment', v.comment, 'at', v.at) ORDER BY v.at, v.phase_key, v.activity_key) \
                     FROM approval_votes v JOIN users u ON u.id = v.user_id JOIN users c ON c.id = v.cast_by WHERE v.release_id = $1), '[]') AS approvals, \
           COALESCE((SELECT jsonb_agg(jsonb_build_object('phase', c.phase_key, 'activity', c.activity_key, 'author', c.author, \
                            'text', c.body, 'at', c.created_at) ORDER BY c.created_at, c.id) \
                     FROM activity_comments c WHERE c.release_id = $1), '[]') AS comments, \
           COALESCE((SELECT jsonb_agg(jsonb_build_object('phase', w.phase_key, 'activity', w.activity_key, 'attempt', w.attempt, \
                            'state', w.state, 'request', w.request, 'status', w.response_status, 'body', left(w.response_body, 500), \
                            'error', w.error, 'duration_ms', w.duration_ms, 'due_at', w.due_at, 'sent_at', w.sent_at) ORDER BY w.id) \
                     FROM webhook_attempts w WHERE w.release_id = $1), '[]') AS attempts",
    )
    .bind::<BigInt, _>(release_id))
    .get_result(conn)
    .await?;
    Ok(Related {
        links: parsed("links", row.links)?,
        linked_by: parsed("linked_by", row.linked_by)?,
        link_orgs: parsed("link_orgs", row.link_orgs)?,
        deployments: parsed("deployments", row.deployments)?,
        approvals: parsed("approvals", row.approvals)?,
        comments: parsed("comments", row.comments)?,
        attempts: parsed("attempts", row.attempts)?,
    })
}
