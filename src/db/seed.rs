//! The large demo set's bulk statements (`seed-demo --scale large`): users, role bindings,
//! release copies with their trees, deployments and audit rows, written in few statements.

use chrono::{DateTime, TimeDelta, Utc};
use diesel::sql_types::{Array, BigInt, Text, Timestamptz};
use diesel::QueryResult;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use crate::domain::audit::ChainEvent;

/// The account's rows in one of the seeded tables.
pub async fn count(conn: &mut AsyncPgConnection, table: &'static str, account_id: i64) -> QueryResult<i64> {
    #[derive(diesel::QueryableByName)]
    struct N {
        #[diesel(sql_type = BigInt)]
        n: i64,
    }
    let sql = format!("SELECT count(*) AS n FROM {table} WHERE account_id = $1");
    let n: N = diesel::sql_query(sql).bind::<BigInt, _>(account_id).get_result(conn).await?;
    Ok(n.n)
}

/// `n` users user0001@… to user{n}@…, all with the same password hash.
pub async fn add_users(conn: &mut AsyncPgConnection, account: i64, password_hash: &str, n: i64, now: DateTime<Utc>) -> QueryResult<usize> {
    diesel::sql_query(
        "INSERT INTO users (account_id, email, name, password_hash, created_at, updated_at) \
         SELECT $1, 'user' || lpad(g::text, 4, '0') || '@large.railyard.dev', 'User ' || g, $2, $3, $3 FROM generate_series(1, $4) g",
    )
    .bind::<BigInt, _>(account)
    .bind::<Text, _>(password_hash)
    .bind::<Timestamptz, _>(now)
    .bind::<BigInt, _>(n)
    .execute(conn)
    .await
}

/// user0001..user0020 manage one org each, user0021..user0040 the whole account, the rest view.
pub async fn bind_roles(conn: &mut AsyncPgConnection, account: i64, orgs: &[i64], now: DateTime<Utc>) -> QueryResult<usize> {
    diesel::sql_query(
        "INSERT INTO role_bindings (account_id, user_id, role, org_id, created_at) \
         SELECT u.account_id, u.id, \
                CASE WHEN n <= 20 THEN 'org_release_manager' WHEN n <= 40 THEN 'account_release_manager' ELSE 'viewer' END, \
                CASE WHEN n <= 20 THEN $2[n] END, $3 \
         FROM (SELECT id, account_id, substring(email from 5 for 4)::int AS n FROM users \
               WHERE account_id = $1 AND starts_with(email, 'user')) u",
    )
    .bind::<BigInt, _>(account)
    .bind::<Array<BigInt>, _>(orgs)
    .bind::<Timestamptz, _>(now)
    .execute(conn)
    .await
}

/// A deployment to QA and PROD1 for each successful release.
pub async fn add_deployments(conn: &mut AsyncPgConnection, account: i64) -> QueryResult<usize> {
    diesel::sql_query(
        "INSERT INTO deployments (account_id, release_id, phase_key, activity_key, service, version, environment, deployed_at, release_name, org_id) \
         SELECT r.account_id, r.id, 'p5', 'a5', 'service-' || lpad((r.id % 40)::text, 2, '0'), \
                '1.' || (r.id / 40 % 100) || '.' || (r.id % 7), env, r.finished_at - interval '10 minutes', r.name, r.org_id \
         FROM releases r CROSS JOIN unnest(ARRAY['QA', 'PROD1']) env \
         WHERE r.account_id = $1 AND r.status IN ('Success', 'PartialSuccess')",
    )
    .bind::<BigInt, _>(account)
    .execute(conn)
    .await
}

/// What autovacuum does after bulk writes (visibility map for index-only scans, statistics).
pub async fn vacuum_analyze(conn: &mut AsyncPgConnection) -> QueryResult<usize> {
    diesel::sql_query("VACUUM ANALYZE").execute(conn).await
}

/// (id, created at) of the account's releases without an audit chain yet.
pub async fn releases_without_history(conn: &mut AsyncPgConnection, account: i64) -> QueryResult<Vec<(i64, DateTime<Utc>)>> {
    #[derive(diesel::QueryableByName)]
    struct Row {
        #[diesel(sql_type = BigInt)]
        id: i64,
        #[diesel(sql_type = Timestamptz)]
        at: DateTime<Utc>,
    }
    let rows: Vec<Row> = diesel::sql_query(
        "SELECT r.id, r.created_at AS at FROM releases r WHERE r.account_id = $1 \
         AND NOT EXISTS (SELECT 1 FROM audit_chain_heads h WHERE h.chain = 'release:' || r.id) ORDER BY r.id",
    )
    .bind::<BigInt, _>(account)
    .load(conn)
    .await?;
    Ok(rows.into_iter().map(|r| (r.id, r.at)).collect())
}

/// Copies each first release 99 times, then spreads all 20,000 over two years ending two months
/// ahead (≈ 830 a month), with the state and status their time gives them, and copies each
/// first release's tree to its copies with matching statuses.
pub async fn copy_releases(
    conn: &mut AsyncPgConnection,
    account: i64,
    (releases, processes): (i64, i64),
    now: DateTime<Utc>,
) -> QueryResult<()> {
    let copies = releases / processes - 1;
    // Which release each copy copies, until their trees are copied too.
    diesel::sql_query("DROP TABLE IF EXISTS seed_copies").execute(conn).await?;
    diesel::sql_query(
        "CREATE TEMP TABLE seed_copies AS SELECT s.original, s.g, nextval('releases_id_seq') AS id FROM \
         (SELECT t.id AS original, g FROM releases t CROSS JOIN generate_series(1, $2) g WHERE t.account_id = $1 ORDER BY g, t.id) s",
    )
    .bind::<BigInt, _>(account)
    .bind::<BigInt, _>(copies)
    .execute(conn)
    .await?;
    diesel::sql_query(
        "INSERT INTO releases (id, account_id, org_id, name, release_type, process_id, process_version, inputs, variables, time_zone, \
                               owner_id, stakeholders, environments, services, state, status, lock_version, created_by, \
                               created_at, updated_at, failing, artifacts) \
         SELECT m.id, t.account_id, t.org_id, t.name || ' #' || m.g, t.release_type, t.process_id, t.process_version, t.inputs, t.variables, \
                t.time_zone, t.owner_id, t.stakeholders, t.environments, t.services, t.state, t.status, t.lock_version, \
                t.created_by, t.created_at, t.updated_at, t.failing, t.artifacts \
         FROM seed_copies m JOIN releases t ON t.id = m.original ORDER BY m.id",
    )
    .execute(conn)
    .await?;
    let first = now - TimeDelta::days(670);
    let step_seconds = (730 * 86_400) / releases;
    // k orders the releases in time; the status follows from where k's window lies.
    diesel::sql_query(
        "WITH n AS (SELECT id, row_number() OVER (ORDER BY id) - 1 AS k FROM releases WHERE account_id = $1), \
         w AS (SELECT id, k, $2 + k * make_interval(secs => $3) AS s FROM n) \
         UPDATE releases r SET \
           schedule_start = w.s, schedule_end = w.s + interval '2 hours', \
           environments = CASE WHEN w.k % 3 = 0 THEN ARRAY['QA', 'PROD1'] WHEN w.k % 3 = 1 THEN ARRAY['UAT', 'PROD2'] ELSE ARRAY['PROD3'] END, \
           services = ARRAY['service-' || lpad((r.id % 40)::text, 2, '0')], \
           release_type = CASE WHEN w.k % 17 = 0 THEN 'hotfix' WHEN w.k % 11 = 0 THEN 'feature' ELSE 'standard' END, \
           state = CASE WHEN w.s < $4 - interval '1 day' THEN (CASE WHEN w.k % 20 = 0 THEN 'archived' ELSE 'active' END) \
                        WHEN w.s < $4 THEN 'active' WHEN w.k % 2 = 0 THEN 'draft' ELSE 'active' END, \
           status = CASE WHEN w.s < $4 - interval '1 day' THEN (CASE w.k % 25 WHEN 0 THEN 'Failed' WHEN 1 THEN 'Aborted' \
                          WHEN 2 THEN 'PartialSuccess' WHEN 3 THEN 'RolledBack' ELSE 'Success' END) \
                         WHEN w.s < $4 THEN (CASE WHEN w.k % 5 = 0 THEN 'OnHold' ELSE 'Running' END) ELSE 'NotStarted' END, \
           activated_at = CASE WHEN w.s < $4 OR w.k % 2 = 1 THEN w.s - interval '3 days' END, \
           started_at = CASE WHEN w.s < $4 THEN w.s END, \
           finished_at = CASE WHEN w.s < $4 - interval '1 day' THEN w.s + interval '95 minutes' END, \
           archived_at = CASE WHEN w.s < $4 - interval '1 day' AND w.k % 20 = 0 THEN w.s + interval '30 days' END, \
           created_at = w.s - interval '7 days', updated_at = LEAST(w.s + interval '95 minutes', $4), next_eval_at = NULL \
         FROM w WHERE r.id = w.id",
    )
    .bind::<BigInt, _>(account)
    .bind::<Timestamptz, _>(first)
    .bind::<BigInt, _>(step_seconds)
    .bind::<Timestamptz, _>(now)
    .execute(conn)
    .await?;
    for table in ["release_phases", "release_activities"] {
        let columns: Vec<String> = {
            #[derive(diesel::QueryableByName)]
            struct Column {
                #[diesel(sql_type = Text)]
                column_name: String,
            }
            diesel::sql_query(
                "SELECT column_name::text AS column_name FROM information_schema.columns \
                 WHERE table_name = $1 AND column_name <> 'release_id' ORDER BY ordinal_position",
            )
            .bind::<Text, _>(table)
            .load::<Column>(conn)
            .await?
            .into_iter()
            .map(|c| c.column_name)
            .collect()
        };
        diesel::sql_query(format!(
            "INSERT INTO {table} (release_id, {cols}) SELECT m.id, {tcols} FROM seed_copies m \
             JOIN {table} t ON t.release_id = m.original",
            cols = columns.join(", "),
            tcols = columns.iter().map(|c| format!("t.{c}")).collect::<Vec<_>>().join(", ")
        ))
        .execute(conn)
        .await?;
    }
    diesel::sql_query("DROP TABLE seed_copies").execute(conn).await?;
    // Statuses of the trees: finished ones ran through (a failure at the last step, an abort
    // after the second phase); running ones are in their second phase.
    let node = "CASE \
        WHEN r.status IN ('Success', 'PartialSuccess', 'RolledBack') THEN 'Success' \
        WHEN r.status = 'Failed' THEN CASE WHEN x.key = 'p5' OR x.pk = 'p5' THEN 'Failed' ELSE 'Success' END \
        WHEN r.status = 'Aborted' THEN CASE WHEN x.ph IN ('p1', 'p2') THEN 'Success' ELSE 'Aborted' END \
        WHEN r.status IN ('Running', 'OnHold') THEN CASE WHEN x.ph = 'p1' THEN 'Success' WHEN x.ph = 'p2' THEN r.status ELSE 'NotStarted' END \
        ELSE 'NotStarted' END";
    for (table, ph, pk) in [("release_phases", "x.key", "''"), ("release_activities", "x.phase_key", "x.phase_key")] {
        let node = node.replace("x.ph", ph).replace("x.pk", pk);
        diesel::sql_query(format!(
            "UPDATE {table} x SET status = {node}, \
               started_at = CASE WHEN r.started_at IS NOT NULL AND ({node}) <> 'NotStarted' THEN r.started_at END, \
               finished_at = CASE WHEN ({node}) IN ('Success', 'Failed', 'Aborted') THEN COALESCE(r.finished_at, r.started_at) END \
             FROM releases r WHERE r.id = x.release_id AND r.account_id = $1"
        ))
        .bind::<BigInt, _>(account)
        .execute(conn)
        .await?;
    }
    Ok(())
}

#[derive(Default)]
pub struct Batch {
    chain: Vec<String>,
    seq: Vec<i64>,
    release_id: Vec<i64>,
    actor: Vec<String>,
    action: Vec<String>,
    subject: Vec<String>,
    at: Vec<DateTime<Utc>>,
    prev_hash: Vec<String>,
    hash: Vec<String>,
    pub heads: Vec<(String, i64, String)>,
}

impl Batch {
    pub fn len(&self) -> usize {
        self.seq.len()
    }

    pub fn is_empty(&self) -> bool {
        self.seq.is_empty()
    }

    pub fn push(&mut self, e: ChainEvent, prev_hash: String, hash: String) {
        self.chain.push(e.chain);
        self.seq.push(e.seq);
        self.release_id.push(e.release_id.unwrap_or_default());
        self.actor.push(e.actor);
        self.action.push(e.action);
        self.subject.push(e.subject);
        self.at.push(e.at);
        self.prev_hash.push(prev_hash);
        self.hash.push(hash);
    }

    pub async fn write(&mut self, conn: &mut AsyncPgConnection, account: i64) -> QueryResult<()> {
        let b = std::mem::take(self);
        if b.seq.is_empty() {
            return Ok(());
        }
        diesel::sql_query(
            "INSERT INTO audit_events (chain, seq, account_id, release_id, actor, action, subject, reason, details, at, prev_hash, hash) \
             SELECT c, s, $1, r, a, act, sub, NULL, '{}'::jsonb, t, p, h \
             FROM unnest($2::text[], $3::int8[], $4::int8[], $5::text[], $6::text[], $7::text[], $8::timestamptz[], $9::text[], $10::text[]) \
                  AS u(c, s, r, a, act, sub, t, p, h)",
        )
        .bind::<BigInt, _>(account)
        .bind::<Array<Text>, _>(&b.chain)
        .bind::<Array<BigInt>, _>(&b.seq)
        .bind::<Array<BigInt>, _>(&b.release_id)
        .bind::<Array<Text>, _>(&b.actor)
        .bind::<Array<Text>, _>(&b.action)
        .bind::<Array<Text>, _>(&b.subject)
        .bind::<Array<Timestamptz>, _>(&b.at)
        .bind::<Array<Text>, _>(&b.prev_hash)
        .bind::<Array<Text>, _>(&b.hash)
        .execute(conn)
        .await?;
        let (chains, (seqs, hashes)): (Vec<String>, (Vec<i64>, Vec<String>)) = b.heads.into_iter().map(|(c, s, h)| (c, (s, h))).unzip();
        diesel::sql_query(
            "INSERT INTO audit_chain_heads (chain, account_id, last_seq, last_hash) SELECT c, $1, s, h FROM unnest($2::text[], $3::int8[], $4::text[]) AS u(c, s, h)",
        )
        .bind::<BigInt, _>(account)
        .bind::<Array<Text>, _>(&chains)
        .bind::<Array<BigInt>, _>(&seqs)
        .bind::<Array<Text>, _>(&hashes)
        .execute(conn)
        .await?;
        Ok(())
    }
}
