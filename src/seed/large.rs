//! `seed-demo --scale large`: a large company's whole history in one account (DESIGN §11's
//! benchmark set): 20 orgs, 2,000 users, 200 processes of 5 phases × 5 activities, 20,000
//! releases over two years in every state and status, their deployments, and 2,000,000 audit
//! events whose chains verify. The structure goes through `ops` (one of each kind of thing, as a
//! user would make it); the volume is copied from those in bulk statements, and the audit rows
//! are hashed here and written in batches.

use std::time::Instant;

use chrono::{DateTime, TimeDelta, Utc};
use diesel::sql_types::{Array, BigInt, Text, Timestamptz};
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use crate::db::models::accounts::Account;
use crate::domain::audit::{chain_for, ChainEvent, GENESIS_HASH};
use crate::ops::catalog::{self, EnvironmentInput};
use crate::ops::users::{self, NewUserInput};
use crate::ops::{processes, releases, Actor};

pub const LARGE_ACCOUNT: &str = "large";
pub const LARGE_ADMIN: &str = "admin@large.railyard.dev";
/// Every user of the large set has this password (one hash, computed once).
pub const LARGE_PASSWORD: &str = "large-demo-pass";

const ORGS: usize = 20;
const USERS: i64 = 2_000;
const PROCESSES: usize = 200;
const RELEASES: i64 = 20_000;
const AUDIT_EVENTS: i64 = 2_000_000;
const SERVICES: usize = 40;
const ENVIRONMENTS: &[(&str, bool)] = &[("DEV", false), ("QA", false), ("UAT", false), ("PROD1", true), ("PROD2", true), ("PROD3", true)];

/// What was made, and how long each step took.
#[derive(Debug, Default)]
pub struct LargeReport {
    pub steps: Vec<(&'static str, f64)>,
    pub counts: Vec<(&'static str, i64)>,
}

fn process_yaml(i: usize) -> String {
    let phases: Vec<String> = (1..=5)
        .map(|p| {
            let acts: Vec<String> = (1..=5)
                .map(|a| {
                    let dep = if a > 1 { format!(", depends_on: [a{}]", a - 1) } else { String::new() };
                    format!("{{key: a{a}, name: Step {p}.{a}, kind: manual{dep}}}")
                })
                .collect();
            let dep = if p > 1 { format!(", depends_on: [p{}]", p - 1) } else { String::new() };
            format!("{{key: p{p}, name: Phase {p}{dep}, activities: [{}]}}", acts.join(", "))
        })
        .collect();
    format!("name: Service {i:03} release\nphases: [{}]\n", phases.join(", "))
}

async fn count(conn: &mut AsyncPgConnection, sql: &str, account_id: i64) -> anyhow::Result<i64> {
    #[derive(diesel::QueryableByName)]
    struct N {
        #[diesel(sql_type = BigInt)]
        n: i64,
    }
    let n: N = diesel::sql_query(sql).bind::<BigInt, _>(account_id).get_result(conn).await?;
    Ok(n.n)
}

/// Seeds the large account unless it exists (`None` then).
pub async fn seed_large(conn: &mut AsyncPgConnection, now: DateTime<Utc>) -> anyhow::Result<Option<LargeReport>> {
    if Account::by_slug(conn, LARGE_ACCOUNT).await?.is_some() {
        return Ok(None);
    }
    let mut report = LargeReport::default();
    let mut clock = Instant::now();
    let mut step = |report: &mut LargeReport, name: &'static str| {
        report.steps.push((name, clock.elapsed().as_secs_f64()));
        clock = Instant::now();
    };
    let account = crate::ops::accounts::create_account(conn, LARGE_ACCOUNT, "Large Co", now).await?.id;
    let system = Actor::system(account, "seed-demo --scale large");
    let fail = |what: &'static str| move |e: crate::ops::OpError| anyhow::anyhow!("{what}: {e}: {:?}", e.field_errors());
    let mut orgs = Vec::new();
    for o in 1..=ORGS {
        orgs.push(
            catalog::create_org(conn, &system, &format!("org-{o:02}"), &format!("Organization {o:02}"), now).await.map_err(fail("org"))?.id,
        );
    }
    for (name, production) in ENVIRONMENTS {
        let input = EnvironmentInput { name: Some(name.to_string()), production: Some(*production), position: None };
        catalog::create_environment(conn, &system, &input, now).await.map_err(fail("environment"))?;
    }
    for s in 0..SERVICES {
        catalog::create_service(conn, &system, &format!("service-{s:02}"), now).await.map_err(fail("service"))?;
    }
    let admin_input = NewUserInput {
        email: LARGE_ADMIN.into(),
        name: "Large Admin".into(),
        password: LARGE_PASSWORD.into(),
        role: "account_admin".into(),
        org: String::new(),
    };
    let admin = users::create_user(conn, &system, &admin_input, now).await.map_err(fail("admin"))?;
    let hash = crate::security::hash_password(LARGE_PASSWORD.into()).await.map_err(|e| anyhow::anyhow!("hashing: {e}"))?;
    // user0001..user0020 manage one org each, user0021..user0040 the whole account, the rest view.
    diesel::sql_query(
        "INSERT INTO users (account_id, email, name, password_hash, created_at, updated_at) \
         SELECT $1, 'user' || lpad(g::text, 4, '0') || '@large.railyard.dev', 'User ' || g, $2, $3, $3 FROM generate_series(1, $4) g",
    )
    .bind::<BigInt, _>(account)
    .bind::<Text, _>(&hash)
    .bind::<Timestamptz, _>(now)
    .bind::<BigInt, _>(USERS - 1)
    .execute(conn)
    .await?;
    diesel::sql_query(
        "INSERT INTO role_bindings (account_id, user_id, role, org_id, created_at) \
         SELECT u.account_id, u.id, \
                CASE WHEN n <= 20 THEN 'org_release_manager' WHEN n <= 40 THEN 'account_release_manager' ELSE 'viewer' END, \
                CASE WHEN n <= 20 THEN $2[n] END, $3 \
         FROM (SELECT id, account_id, substring(email from 5 for 4)::int AS n FROM users WHERE account_id = $1 AND email LIKE 'user%') u",
    )
    .bind::<BigInt, _>(account)
    .bind::<Array<BigInt>, _>(&orgs)
    .bind::<Timestamptz, _>(now)
    .execute(conn)
    .await?;
    step(&mut report, "account, orgs, catalog and 2,000 users");

    // A large company runs releases per organization: each org has its processes and releases.
    let level = crate::ops::settings::SettingsInput { release_level: Some("organization".into()), ..Default::default() };
    crate::ops::settings::update_settings(conn, &system, &level, now).await.map_err(fail("settings"))?;
    let rm = Actor::user(admin.id, account, &admin.email);
    for i in 0..PROCESSES {
        let org_index = Some(i % ORGS);
        let org = org_index.map(|o| orgs[o]);
        let process =
            processes::create(conn, &system, org, processes::Source::Yaml(process_yaml(i)), now).await.map_err(fail("process"))?;
        let input = releases::ReleaseInput {
            process_id: Some(process.process.id),
            name: Some(format!("Service {i:03} release")),
            org: Some(org_index.map(|o| format!("org-{:02}", o + 1))),
            ..Default::default()
        };
        let secrets = crate::security::SecretBox::derive(b"large-seed-has-no-secret-inputs");
        let prepared = releases::prepare(conn, &rm, "UTC", &secrets, &input, None, false).await.map_err(fail("release"))?;
        releases::create(conn, &rm, prepared, false, now).await.map_err(fail("release"))?;
    }
    step(&mut report, "200 processes, each with a first release through ops");

    copy_releases(conn, account, now).await?;
    step(&mut report, "20,000 releases with their phases and activities (bulk copies)");

    diesel::sql_query(
        "INSERT INTO deployments (account_id, release_id, phase_key, activity_key, service, version, environment, deployed_at, release_name, org_id) \
         SELECT r.account_id, r.id, 'p5', 'a5', 'service-' || lpad((r.id % 40)::text, 2, '0'), \
                '1.' || (r.id / 40 % 100) || '.' || (r.id % 7), env, r.finished_at - interval '10 minutes', r.name, r.org_id \
         FROM releases r CROSS JOIN unnest(ARRAY['QA', 'PROD1']) env \
         WHERE r.account_id = $1 AND r.status IN ('Success', 'PartialSuccess')",
    )
    .bind::<BigInt, _>(account)
    .execute(conn)
    .await?;
    step(&mut report, "deployments");

    let existing = count(conn, "SELECT count(*) AS n FROM audit_events WHERE account_id = $1", account).await?;
    write_histories(conn, account, AUDIT_EVENTS - existing).await?;
    step(&mut report, "2,000,000 audit events, hashed into their chains");
    // What autovacuum does after bulk writes (visibility map for index-only scans, statistics).
    diesel::sql_query("VACUUM ANALYZE").execute(conn).await?;
    step(&mut report, "VACUUM ANALYZE");

    for (name, sql) in [
        ("organizations", "SELECT count(*) AS n FROM organizations WHERE account_id = $1"),
        ("users", "SELECT count(*) AS n FROM users WHERE account_id = $1"),
        ("processes", "SELECT count(*) AS n FROM processes WHERE account_id = $1"),
        ("releases", "SELECT count(*) AS n FROM releases WHERE account_id = $1"),
        ("release activities", "SELECT count(*) AS n FROM release_activities WHERE account_id = $1"),
        ("deployments", "SELECT count(*) AS n FROM deployments WHERE account_id = $1"),
        ("audit events", "SELECT count(*) AS n FROM audit_events WHERE account_id = $1"),
    ] {
        report.counts.push((name, count(conn, sql, account).await?));
    }
    Ok(Some(report))
}

/// Copies each first release 99 times, then spreads all 20,000 over two years ending two months
/// ahead (≈ 830 a month), with the state and status their time gives them, and copies each
/// first release's tree to its copies with matching statuses.
async fn copy_releases(conn: &mut AsyncPgConnection, account: i64, now: DateTime<Utc>) -> anyhow::Result<()> {
    let copies = RELEASES / PROCESSES as i64 - 1;
    // The copy remembers its original in status_reason until its tree is copied.
    diesel::sql_query(
        "INSERT INTO releases (account_id, org_id, name, release_type, process_id, process_version, inputs, variables, time_zone, \
                               owner_id, stakeholders, environments, services, state, status, status_reason, lock_version, created_by, \
                               created_at, updated_at, failing, artifacts) \
         SELECT t.account_id, t.org_id, t.name || ' #' || g, t.release_type, t.process_id, t.process_version, t.inputs, t.variables, \
                t.time_zone, t.owner_id, t.stakeholders, t.environments, t.services, t.state, t.status, 'copy-of:' || t.id, t.lock_version, \
                t.created_by, t.created_at, t.updated_at, t.failing, t.artifacts \
         FROM releases t CROSS JOIN generate_series(1, $2) g WHERE t.account_id = $1 ORDER BY g, t.id",
    )
    .bind::<BigInt, _>(account)
    .bind::<BigInt, _>(copies)
    .execute(conn)
    .await?;
    let first = now - TimeDelta::days(670);
    let step_seconds = (730 * 86_400) / RELEASES;
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
            "INSERT INTO {table} (release_id, {cols}) SELECT c.id, {tcols} FROM releases c \
             JOIN {table} t ON t.release_id = substring(c.status_reason from 9)::int8 \
             WHERE c.account_id = $1 AND c.status_reason LIKE 'copy-of:%'",
            cols = columns.join(", "),
            tcols = columns.iter().map(|c| format!("t.{c}")).collect::<Vec<_>>().join(", ")
        ))
        .bind::<BigInt, _>(account)
        .execute(conn)
        .await?;
    }
    diesel::sql_query("UPDATE releases SET status_reason = NULL WHERE account_id = $1 AND status_reason LIKE 'copy-of:%'")
        .bind::<BigInt, _>(account)
        .execute(conn)
        .await?;
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

/// Appends `total` events to the copied releases' chains (each chain from its genesis), hashed
/// here exactly as `db::audit::append` would, written 50,000 rows per statement.
async fn write_histories(conn: &mut AsyncPgConnection, account: i64, total: i64) -> anyhow::Result<()> {
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
    if rows.is_empty() {
        return Ok(());
    }
    let per_release = (total + rows.len() as i64 - 1) / rows.len() as i64;
    let mut left = total;
    let mut batch = Batch::default();
    for row in &rows {
        let n = per_release.min(left);
        if n <= 0 {
            break;
        }
        left -= n;
        let chain = chain_for(Some(account), Some(row.id));
        let mut previous = GENESIS_HASH.to_string();
        for seq in 1..=n {
            let (actor, action, subject) = match seq {
                1 => ("user:admin@large.railyard.dev".to_string(), "release.create".to_string(), format!("release:{}", row.id)),
                2 => ("user:admin@large.railyard.dev".to_string(), "release.activate".to_string(), format!("release:{}", row.id)),
                _ => {
                    let step = (seq - 3) / 2;
                    let (phase, activity) = (step / 5 % 5 + 1, step % 5 + 1);
                    let action = if seq % 2 == 1 { "activity.running" } else { "activity.success" };
                    ("system:engine".to_string(), action.to_string(), format!("activity:p{phase}.a{activity}"))
                }
            };
            let event = ChainEvent {
                chain: chain.clone(),
                seq,
                account_id: Some(account),
                release_id: Some(row.id),
                actor,
                action,
                subject,
                reason: None,
                details: serde_json::json!({}),
                at: crate::clock::to_micros(row.at + TimeDelta::seconds(seq * 37)),
            };
            let hash = event.hash(&previous);
            batch.push(event, std::mem::replace(&mut previous, hash.clone()), hash.clone());
        }
        batch.heads.push((chain, n, previous));
        if batch.len() >= 50_000 {
            batch.write(conn, account).await?;
        }
    }
    batch.write(conn, account).await?;
    Ok(())
}

#[derive(Default)]
struct Batch {
    chain: Vec<String>,
    seq: Vec<i64>,
    release_id: Vec<i64>,
    actor: Vec<String>,
    action: Vec<String>,
    subject: Vec<String>,
    at: Vec<DateTime<Utc>>,
    prev_hash: Vec<String>,
    hash: Vec<String>,
    heads: Vec<(String, i64, String)>,
}

impl Batch {
    fn len(&self) -> usize {
        self.seq.len()
    }

    fn push(&mut self, e: ChainEvent, prev_hash: String, hash: String) {
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

    async fn write(&mut self, conn: &mut AsyncPgConnection, account: i64) -> anyhow::Result<()> {
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
