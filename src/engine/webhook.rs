//! Webhooks exactly as DESIGN §9: the attempt is committed as `sending` with a lease and its
//! idempotency key, the request is sent outside any transaction, then the result is committed.

use anyhow::Context;
use chrono::{DateTime, TimeDelta, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use serde_json::{json, Map, Value};
use std::time::Duration;

use crate::db::audit::{self, NewEvent};
use crate::db::models::accounts::AccountSettings;
use crate::db::models::processes::DefinitionCache;
use crate::db::models::releases::activity_by_key;
use crate::db::models::releases::{Release, ReleaseActivity};
use crate::db::prepared::prepared;
use crate::db::schema::{release_activities, releases, webhook_attempts};
use crate::domain::engine::Node;
use crate::domain::network::PrivateAllow;
use crate::domain::process::definition::{ActivityDef, Completion, WebhookConfig, DEFAULT_WEBHOOK_TIMEOUT};
use crate::domain::process::template::{render, to_text};
use crate::domain::process::time::parse_duration;
use crate::ops::context::{self, Secrets};
use crate::ops::OpError;
use crate::outbound::Blocked;
use crate::security::{random_token, sha256_hex, SecretBox};
use crate::state::Services;

pub const MAX_RESPONSE_BYTES: usize = 1024 * 1024;
/// A `completion: response` request gets at most this long (or its `timeout`, if shorter).
pub const MAX_REQUEST_SECONDS: i64 = 60;
/// A worker whose heartbeat is older than this is considered dead; its leases may be taken over.
pub const HEARTBEAT_STALE_SECONDS: i64 = 15;

pub use crate::db::models::webhook_attempts::idempotency_key;

/// (url, headers, body) of a rendered request.
type BuiltRequest = (String, Vec<(String, String)>, Option<Value>);

#[derive(Debug, Clone)]
pub struct Claimed {
    pub attempt_id: i64,
    pub release_id: i64,
    pub account_id: i64,
    pub key: String,
    pub method: String,
    pub url: String,
    /// The URL with secret inputs masked: the only form that goes into messages (they reach
    /// the release page and the append-only audit).
    pub shown_url: String,
    pub headers: Vec<(String, String)>,
    pub body: Option<Value>,
    pub timeout: Duration,
    pub allow_list: Vec<String>,
    /// The account's slug: operator private-allow entries may be limited to one account.
    pub account_slug: String,
    /// The clear values of the release's secret inputs: masked in whatever the receiver answers.
    pub secrets: Vec<String>,
}

fn config(def: &ActivityDef) -> Option<&WebhookConfig> {
    def.config.as_ref()
}

fn timeout_of(def: &ActivityDef) -> TimeDelta {
    config(def)
        .and_then(|c| c.timeout.as_deref())
        .and_then(|t| parse_duration(t).ok())
        .unwrap_or_else(|| parse_duration(DEFAULT_WEBHOOK_TIMEOUT).unwrap_or(TimeDelta::hours(1)))
}

/// Claims one due attempt, or one left `sending` by a worker whose heartbeat is stale (it died
/// mid-send) or whose lease ran out (the send is over, by its timeout, but its result was never
/// committed, e.g. PostgreSQL restarted meanwhile): the request is repeated with the same key.
/// Commits it as `sending`.
pub async fn claim(
    conn: &mut AsyncPgConnection,
    worker: &str,
    senders: Senders<'_>,
    busy_accounts: &[i64],
    now: DateTime<Utc>,
) -> Result<Option<Claimed>, OpError> {
    conn.transaction(async |conn| {
        let stale_before = now - TimeDelta::seconds(HEARTBEAT_STALE_SECONDS);
        let row = prepared(
            diesel::sql_query(
                "SELECT a.id, a.release_id, a.phase_key, a.activity_key, a.idempotency_key FROM webhook_attempts a \
             WHERE ((a.state = 'queued' AND a.due_at <= $1) \
                OR (a.state = 'sending' AND (a.lease_until < $1 OR NOT EXISTS \
                    (SELECT 1 FROM workers w WHERE w.id = a.lease_owner AND w.heartbeat_at >= $2)))) \
               AND a.account_id <> ALL($3) \
             ORDER BY a.due_at LIMIT 1 FOR UPDATE OF a SKIP LOCKED",
            )
            .bind::<diesel::sql_types::Timestamptz, _>(now)
            .bind::<diesel::sql_types::Timestamptz, _>(stale_before)
            .bind::<diesel::sql_types::Array<diesel::sql_types::BigInt>, _>(busy_accounts),
        )
        .get_result::<AttemptRow>(conn)
        .await
        .optional()?;
        let Some(row) = row else { return Ok(None) };
        lease(conn, worker, senders, row, now).await.map(Some)
    })
    .await
}

/// What a claim needs besides the connection: the key of secret inputs, the base URL of
/// callbacks, and the parsed definitions.
pub type Senders<'a> = (&'a SecretBox, &'a str, &'a DefinitionCache);

fn senders(services: &Services) -> Senders<'_> {
    (&services.secrets, &services.settings.base_url, &services.definitions)
}

/// Inside the transaction that just recorded a send's result: the account's oldest due attempt,
/// leased to this worker at once, so the task that sent for this account goes on with it without
/// a claim transaction of its own. Oldest first, as `claim` takes them, so a burst's first
/// requests are not overtaken by the successors of those sent before them; within the same
/// account, so the per-account bound still counts this task once. It is committed `sending` with
/// its key before anything is sent, like any claim.
async fn claim_next_of_account(
    conn: &mut AsyncPgConnection,
    worker: &str,
    senders: Senders<'_>,
    account_id: i64,
    now: DateTime<Utc>,
) -> Result<Option<Claimed>, OpError> {
    let row = prepared(
        diesel::sql_query(
            "SELECT a.id, a.release_id, a.phase_key, a.activity_key, a.idempotency_key FROM webhook_attempts a \
         WHERE a.account_id = $1 AND a.state = 'queued' AND a.due_at <= $2 \
         ORDER BY a.due_at LIMIT 1 FOR UPDATE OF a SKIP LOCKED",
        )
        .bind::<diesel::sql_types::BigInt, _>(account_id)
        .bind::<diesel::sql_types::Timestamptz, _>(now),
    )
    .get_result::<AttemptRow>(conn)
    .await
    .optional()?;
    let Some(row) = row else { return Ok(None) };
    lease(conn, worker, senders, row, now).await.map(Some)
}

/// Renders a locked attempt's request and commits it (with the caller's transaction) as
/// `sending`, leased to `worker`.
async fn lease(
    conn: &mut AsyncPgConnection,
    worker: &str,
    (secrets, base_url, defs): Senders<'_>,
    row: AttemptRow,
    now: DateTime<Utc>,
) -> Result<Claimed, OpError> {
    let AttemptRow { id, release_id, phase_key: phase, activity_key: activity, idempotency_key: key } = row;
    let r: Release = releases::table.find(release_id).select(Release::as_select()).first(conn).await?;
    let def = defs.pinned(conn, &r).await?;
    let Some(adef) = def.phase(&phase).and_then(|p| p.activities.iter().find(|a| a.key == activity)).cloned() else {
        return Err(OpError::NotFound);
    };
    let Some(cfg) = config(&adef).cloned() else { return Err(OpError::NotFound) };
    let callback = cfg.completion == Some(Completion::Callback);
    let token = callback.then(|| random_token(32));
    let callback_url = token.as_ref().map(|t| format!("{base_url}/api/v1/callbacks/{t}"));
    let at = (phase.as_str(), activity.as_str());
    let (_, activities) = crate::db::models::releases::tree(conn, r.id).await?;
    let clear = context::lookup_in(&r, &activities, &def, at, Secrets::Revealed(secrets), callback_url.as_deref());
    let shown = context::lookup_in(&r, &activities, &def, at, Secrets::Masked, callback_url.as_deref().map(|_| "<callback url>"));
    let build = |lookup: &context::Lookup| -> Result<BuiltRequest, String> {
        let url = to_text(&render(&Value::String(cfg.url.clone()), lookup)?);
        let mut headers = Vec::new();
        for (k, v) in &cfg.headers {
            headers.push((k.clone(), to_text(&render(&Value::String(v.clone()), lookup)?)));
        }
        let body = match &cfg.body {
            Some(b) => Some(render(b, lookup)?),
            None => None,
        };
        Ok((url, headers, body))
    };
    // What is recorded (and shown in the attempt list) is what is sent: the engine's own headers
    // too, the callback's token masked, so people can match a request to the receiver's log.
    let recorded = build(&shown).ok().map(|(url, mut headers, body)| {
        headers.push(("Idempotency-Key".into(), key.clone()));
        if callback_url.is_some() {
            headers.push(("Railyard-Callback-Url".into(), format!("{base_url}/api/v1/callbacks/{}", crate::domain::masking::MASK)));
        }
        (url, headers, body)
    });
    let settings = AccountSettings::get(conn, r.account_id).await?;
    let account_slug = crate::db::models::accounts::slug_of(conn, r.account_id).await?;
    let lease_until = now + TimeDelta::seconds(MAX_REQUEST_SECONDS.min(timeout_of(&adef).num_seconds()) + 30);
    diesel::update(webhook_attempts::table.find(id))
            .set((
                webhook_attempts::state.eq("sending"),
                webhook_attempts::lease_owner.eq(worker),
                webhook_attempts::lease_until.eq(lease_until),
                webhook_attempts::callback_token_hash.eq(token.as_ref().map(|t| sha256_hex(t))),
                webhook_attempts::request.eq(recorded.as_ref().map(|(url, headers, body)| {
                    json!({"method": cfg.method.clone().unwrap_or_else(|| "POST".into()), "url": url, "headers": headers.iter().map(|(k, v)| json!([k, v])).collect::<Vec<_>>(), "body": body, "idempotency_key": key})
                })),
            ))
            .execute(conn)
            .await?;
    match build(&clear) {
        Ok((url, mut headers, body)) => {
            headers.push(("Idempotency-Key".into(), key.clone()));
            if let Some(cb) = &callback_url {
                headers.push(("Railyard-Callback-Url".into(), cb.clone()));
            }
            tracing::debug!(attempt_id = id, release_id = r.id, key = %key, "webhook attempt claimed");
            Ok(Claimed {
                attempt_id: id,
                release_id: r.id,
                account_id: r.account_id,
                key,
                method: cfg.method.clone().unwrap_or_else(|| "POST".into()).to_uppercase(),
                url,
                shown_url: recorded.as_ref().map(|(u, _, _)| u.clone()).unwrap_or_default(),
                headers,
                body,
                timeout: Duration::from_secs(MAX_REQUEST_SECONDS.min(timeout_of(&adef).num_seconds()).max(1) as u64),
                allow_list: settings.webhook_allow_list,
                account_slug,
                secrets: crate::ops::processes::secret_values(&def, secrets, &r.inputs),
            })
        }
        // A template that cannot be resolved is a failure of this attempt, not a send.
        Err(message) => Ok(Claimed {
            attempt_id: id,
            release_id: r.id,
            account_id: r.account_id,
            key,
            method: String::new(),
            url: format!("unresolvable: {message}"),
            shown_url: String::new(),
            headers: vec![],
            body: None,
            timeout: Duration::from_secs(1),
            allow_list: vec![],
            account_slug,
            secrets: vec![],
        }),
    }
}

#[derive(diesel::QueryableByName)]
struct AttemptRow {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    id: i64,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    release_id: i64,
    #[diesel(sql_type = diesel::sql_types::Text)]
    phase_key: String,
    #[diesel(sql_type = diesel::sql_types::Text)]
    activity_key: String,
    #[diesel(sql_type = diesel::sql_types::Text)]
    idempotency_key: String,
}

#[derive(Debug, Clone)]
pub struct Outcome {
    /// `Some` when a response arrived.
    pub status: Option<u16>,
    pub body: Option<String>,
    pub error: Option<String>,
    /// A refusal (allow-list): no retries.
    pub permanent: bool,
    /// How long the request took, for the release page's attempt list.
    pub duration_ms: Option<i32>,
    /// A JSON object answer, read before masking and masked inside its strings.
    pub outputs: Option<Map<String, Value>>,
}

impl Outcome {
    fn refused(message: String) -> Outcome {
        Outcome { status: None, body: None, error: Some(message), permanent: true, duration_ms: None, outputs: None }
    }

    /// Reads the outputs of a JSON answer, then masks every secret value in them, in the body
    /// and in the error (DESIGN §9: a receiver may echo what it was sent).
    fn mask(&mut self, secrets: &[String]) {
        let mut outputs: Option<Map<String, Value>> =
            self.body.as_deref().and_then(|b| serde_json::from_str::<Value>(b).ok()).and_then(|v| v.as_object().cloned());
        if !secrets.is_empty() {
            if let Some(map) = outputs.as_mut() {
                for value in map.values_mut() {
                    crate::domain::masking::mask_value(value, secrets);
                }
            }
            self.body = self.body.as_deref().map(|b| crate::domain::masking::mask_text(b, secrets));
            self.error = self.error.as_deref().map(|e| crate::domain::masking::mask_text(e, secrets));
        }
        self.outputs = outputs;
    }
}

/// Whether `host`/`port` is on the allow-list (`host` or `host:port`, case-insensitive).
pub fn allowed(allow_list: &[String], host: &str, port: u16) -> bool {
    let host = host.trim_matches(['[', ']']).to_lowercase();
    allow_list.iter().any(|entry| {
        let (h, p) = match entry.strip_prefix('[') {
            Some(rest) => match rest.split_once(']') {
                Some((inner, after)) => (inner, after.strip_prefix(':')),
                None => return false,
            },
            None => match entry.rsplit_once(':') {
                Some((h, p)) if p.parse::<u16>().is_ok() => (h, Some(p)),
                _ => (entry.as_str(), None),
            },
        };
        h == host && p.is_none_or(|p| p.parse::<u16>().ok() == Some(port))
    })
}

/// Sends a claimed request. The host must be on the account's allow-list, and every address
/// it resolves to must be public or opened by the operator (`private_allow`); the request then
/// goes to exactly the checked address, and redirects are followed only to the same scheme,
/// host and port. Messages name the masked URL only.
pub async fn send(claimed: &Claimed, private_allow: &[PrivateAllow]) -> Outcome {
    let started = std::time::Instant::now();
    let mut outcome = send_once(claimed, private_allow).await;
    outcome.duration_ms = Some(i32::try_from(started.elapsed().as_millis()).unwrap_or(i32::MAX));
    outcome.mask(&claimed.secrets);
    outcome
}

async fn send_once(claimed: &Claimed, private_allow: &[PrivateAllow]) -> Outcome {
    if claimed.method.is_empty() {
        return Outcome::refused(claimed.url.clone());
    }
    let shown = reqwest::Url::parse(&claimed.shown_url).ok();
    let shown_host = shown.as_ref().and_then(|u| u.host_str().map(str::to_string)).unwrap_or_else(|| "the host".into());
    let url = match reqwest::Url::parse(&claimed.url) {
        Ok(u) if u.scheme() == "http" || u.scheme() == "https" => u,
        _ => return Outcome::refused(format!("{:?} is not an http(s) URL", claimed.shown_url)),
    };
    let Some(host) = url.host_str().map(str::to_string) else { return Outcome::refused("the URL has no host".into()) };
    let port = url.port_or_known_default().unwrap_or(443);
    if !allowed(&claimed.allow_list, &host, port) {
        return Outcome::refused(format!("host {shown_host}:{port} is not on the account's webhook allow-list; no request was made"));
    }
    let client = match crate::outbound::checked_client(&url, &shown_host, private_allow, &claimed.account_slug, claimed.timeout).await {
        Ok(c) => c,
        Err(Blocked::Refused(why)) => return Outcome::refused(why),
        Err(Blocked::Unresolved(why)) => {
            return Outcome { status: None, body: None, error: Some(why), permanent: false, duration_ms: None, outputs: None }
        }
    };
    let method = reqwest::Method::from_bytes(claimed.method.as_bytes()).unwrap_or(reqwest::Method::POST);
    let mut request = client.request(method, url);
    for (k, v) in &claimed.headers {
        request = request.header(k.as_str(), v.as_str());
    }
    if let Some(body) = &claimed.body {
        request = request.json(body);
    }
    match request.send().await {
        Err(e) => Outcome {
            status: None,
            body: None,
            error: Some(format!("request to {shown_host} failed: {}", e.without_url())),
            permanent: false,
            duration_ms: None,
            outputs: None,
        },
        Ok(mut res) => {
            let status = res.status().as_u16();
            let mut body: Vec<u8> = Vec::new();
            loop {
                match res.chunk().await {
                    Ok(Some(chunk)) => {
                        if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
                            return Outcome {
                                status: Some(status),
                                body: None,
                                error: Some(format!("response larger than {MAX_RESPONSE_BYTES} bytes")),
                                permanent: false,
                                duration_ms: None,
                                outputs: None,
                            };
                        }
                        body.extend_from_slice(&chunk);
                    }
                    Ok(None) => break,
                    Err(e) => {
                        return Outcome {
                            status: Some(status),
                            body: None,
                            error: Some(format!("reading the response: {}", e.without_url())),
                            permanent: false,
                            duration_ms: None,
                            outputs: None,
                        }
                    }
                }
            }
            let text = String::from_utf8_lossy(&body).to_string();
            let error = (!(200..300).contains(&status)).then(|| format!("HTTP {status}"));
            Outcome { status: Some(status), body: Some(text), error, permanent: false, duration_ms: None, outputs: None }
        }
    }
}

fn is_success(o: &Outcome) -> bool {
    o.status.is_some_and(|s| (200..300).contains(&s)) && o.error.is_none()
}

/// Commits a send's result: success (outputs, or waiting for the callback), or a failure that
/// retries with backoff up to `max_attempts` and then follows `on_failure`. With `take_next`, in
/// the same transaction, the account's next due attempt is leased to this worker and comes back for the
/// caller to send next (see `claim_next_of_account`).
pub async fn complete(
    conn: &mut AsyncPgConnection,
    senders: Senders<'_>,
    attempt_id: i64,
    worker: &str,
    outcome: Outcome,
    take_next: bool,
    now: DateTime<Utc>,
) -> Result<Option<Claimed>, OpError> {
    conn.transaction(async |conn| {
        let account_id = record(conn, senders.2, attempt_id, worker, outcome, now).await?;
        if !take_next {
            return Ok(None);
        }
        // In a savepoint: a next attempt that cannot be leased must not undo this result (it
        // would be sent again); the claim loop meets it on its own later.
        match conn.transaction(async |conn| claim_next_of_account(conn, worker, senders, account_id, now).await).await {
            Ok(next) => Ok(next),
            Err(e) => {
                tracing::warn!(error = ?e, account_id, "taking the account's next webhook attempt failed; the claim loop will");
                Ok(None)
            }
        }
    })
    .await
}

/// Records a send's result in the caller's transaction; returns the attempt's account.
async fn record(
    conn: &mut AsyncPgConnection,
    defs: &DefinitionCache,
    attempt_id: i64,
    worker: &str,
    outcome: Outcome,
    now: DateTime<Utc>,
) -> Result<i64, OpError> {
    // One lock order with callbacks: the release first, then the attempt (read again under its
    // lock, so a callback that came first is seen and its outcome stands).
    let release_id: i64 = webhook_attempts::table.find(attempt_id).select(webhook_attempts::release_id).first(conn).await?;
    let r: Release = releases::table.find(release_id).select(Release::as_select()).for_update().first(conn).await?;
    let (phase, activity, state, owner, has_callback): (String, String, String, Option<String>, bool) = webhook_attempts::table
        .find(attempt_id)
        .select((
            webhook_attempts::phase_key,
            webhook_attempts::activity_key,
            webhook_attempts::state,
            webhook_attempts::lease_owner,
            webhook_attempts::callback_token_hash.is_not_null(),
        ))
        .for_update()
        .first(conn)
        .await?;
    if state != "sending" || owner.as_deref() != Some(worker) {
        // Taken over by another worker, voided meanwhile, or already decided by its callback
        // (a receiver may call back before it answers): its result is not ours to record.
        return Ok(r.account_id);
    }
    let ok = is_success(&outcome);
    // `claim` gave the attempt a callback token exactly when its activity completes by callback.
    let callback = ok && has_callback;
    let new_state = if !ok {
        "failed"
    } else if callback {
        "sent"
    } else {
        "succeeded"
    };
    let body = outcome.body.as_ref().map(|b| b.chars().take(10_000).collect::<String>());
    diesel::update(webhook_attempts::table.find(attempt_id))
        .set((
            webhook_attempts::state.eq(new_state),
            webhook_attempts::response_status.eq(outcome.status.map(i32::from)),
            webhook_attempts::response_body.eq(&body),
            webhook_attempts::error.eq(&outcome.error),
            webhook_attempts::duration_ms.eq(outcome.duration_ms),
            webhook_attempts::sent_at.eq(now),
            webhook_attempts::finished_at.eq((!callback).then_some(now)),
            webhook_attempts::lease_until.eq(None::<DateTime<Utc>>),
        ))
        .execute(conn)
        .await?;
    if !crate::domain::release::in_flight(r.state(), r.status()) {
        return Ok(r.account_id);
    }
    let row: ReleaseActivity = activity_by_key(r.id, &phase, &activity).select(ReleaseActivity::as_select()).first(conn).await?;
    if row.node() != Node::Running {
        return Ok(r.account_id);
    }
    audit::append(
        conn,
        NewEvent {
            reason: outcome.error.clone(),
            ..NewEvent::release(&r, format!("system:worker:{worker}"), format!("webhook.{new_state}"))
                .with_subject(format!("activity:{phase}.{activity}"))
                .with_details(json!({"attempt": row.attempts, "status": outcome.status}))
        },
        now,
    )
    .await?;
    if ok && callback {
        let def = defs.pinned(conn, &r).await?;
        let adef = def.phase(&phase).and_then(|p| p.activities.iter().find(|a| a.key == activity)).cloned().ok_or(OpError::NotFound)?;
        let deadline = now + timeout_of(&adef);
        diesel::update(activity_by_key(r.id, &phase, &activity))
            .set((release_activities::wake_at.eq(deadline), release_activities::status_reason.eq("waiting for the callback")))
            .execute(conn)
            .await?;
        let next = r.next_eval_at.map_or(deadline, |t| t.min(deadline));
        diesel::update(releases::table.find(r.id)).set(releases::next_eval_at.eq(next)).execute(conn).await?;
        return Ok(r.account_id);
    }
    if ok {
        let outputs: Map<String, Value> = outcome.outputs.clone().unwrap_or_default();
        // The release is locked already: move it on here, so the next activity starts in
        // this transaction instead of waiting for an engine pass. In a savepoint: if that
        // fails, the success stays recorded (no re-send) and the engine pass retries.
        let def = defs.pinned(conn, &r).await?;
        crate::ops::outcomes::record_success(conn, &r, &def, &row, outputs, &format!("system:worker:{worker}"), now).await?;
        let (release_id, account_id) = (r.id, r.account_id);
        if let Err(e) = conn.transaction(async |conn| crate::engine::advance(conn, defs, r, now).await).await {
            tracing::warn!(error = ?e, release_id, "advancing after a webhook success failed; the engine will retry");
            crate::db::wake::schedule_now(conn, release_id, now).await?;
        }
        return Ok(account_id);
    }
    let message = outcome.error.clone().unwrap_or_else(|| "failed".into());
    crate::ops::outcomes::attempt_failed(conn, &r, &row, &message, outcome.permanent, now).await?;
    Ok(r.account_id)
}

/// Claims and sends due attempts until none are left (or `limit`); returns how many were sent.
/// Sends at most this many requests at once per worker, and per account within that, so one
/// tenant's slow endpoint never holds up the others (DESIGN §9).
pub const SENDS_PER_WORKER: usize = 32;
pub const SENDS_PER_ACCOUNT: usize = 16;

/// Claims and sends due attempts concurrently (bounded per worker and per account); each send
/// commits its own result as soon as it arrives, on its own connection, so one release's result
/// never waits for another's. Claiming is unchanged (one attempt per claim, leased to this
/// worker), so the exactly-once and crash rules stay as they were.
pub async fn send_due(services: &Services, worker: &str, limit: usize) -> anyhow::Result<usize> {
    sends(services, worker, Some(limit)).await
}

/// The worker's send loop, beside the engine loop (which never waits for a send): claims
/// whenever a slot is free and something is due, woken by the engine (`send_wake`) or at the
/// latest every `SEND_POLL`, while slow sends go on. Returns only on an error.
pub async fn send_continuously(services: &Services, worker: &str) -> anyhow::Result<usize> {
    sends(services, worker, None).await
}

/// How often the send loop looks for due attempts when nothing wakes it.
const SEND_POLL: Duration = Duration::from_millis(200);

/// `limit`: stop after about this many sends (a test's tick); `None`: go on for ever.
async fn sends(services: &Services, worker: &str, limit: Option<usize>) -> anyhow::Result<usize> {
    use futures_util::stream::{FuturesUnordered, StreamExt};
    use std::sync::atomic::{AtomicIsize, Ordering};
    use tracing::Instrument;
    let continuous = limit.is_none();
    let limit = limit.unwrap_or(usize::MAX / 2);
    let mut in_flight = FuturesUnordered::new();
    let mut per_account: std::collections::HashMap<i64, usize> = std::collections::HashMap::new();
    let mut sent = 0;
    // Claims left in this round, shared with the tasks that take their account's next attempt,
    // so a round ends after about `limit` sends and the worker goes back to starting what is due.
    let left = std::sync::Arc::new(AtomicIsize::new(isize::try_from(limit).unwrap_or(isize::MAX)));
    let mut first_error: Option<anyhow::Error> = None;
    loop {
        // Fill up to the bounds; after each result, try again (an account may have room now).
        // After an error nothing new is claimed, but what is in flight still commits: a
        // result dropped half-way would only be sent again.
        // While a round starts what is due, the loop claims nothing new: a burst's starts come
        // before its sends (in-flight sends go on).
        let starting = continuous && std::sync::atomic::AtomicUsize::load(&services.starting, Ordering::SeqCst) > 0;
        while !starting && first_error.is_none() && in_flight.len() < SENDS_PER_WORKER && AtomicIsize::load(&left, Ordering::SeqCst) > 0 {
            let busy: Vec<i64> = per_account.iter().filter(|(_, n)| **n >= SENDS_PER_ACCOUNT).map(|(a, _)| *a).collect();
            let claimed = async {
                let mut conn = services.pool.get().await?;
                claim(&mut conn, worker, senders(services), &busy, services.clock.now()).await.context("claim")
            }
            .await;
            let claimed = match claimed {
                Ok(Some(claimed)) => claimed,
                Ok(None) => break,
                Err(e) => {
                    first_error = Some(e);
                    break;
                }
            };
            left.fetch_sub(1, Ordering::SeqCst);
            *per_account.entry(claimed.account_id).or_default() += 1;
            // A task of its own: it makes progress (and gives its connection back) while this
            // loop waits for a connection to claim the next one.
            let (services, worker, account_id, left) = (services.clone(), worker.to_string(), claimed.account_id, left.clone());
            // The task goes on with what its account has due next, in the same slot.
            let task = tokio::spawn(async move {
                let (mut claimed, mut sent) = (claimed, 0);
                loop {
                    let span = tracing::debug_span!("send", attempt_id = claimed.attempt_id, release_id = claimed.release_id);
                    let next = async {
                        let outcome = send(&claimed, &services.private_allow).await;
                        tracing::debug!(status = ?outcome.status, error = ?outcome.error, duration_ms = ?outcome.duration_ms, "webhook sent");
                        let mut conn = services.pool.get().await?;
                        let take_next = left.fetch_sub(1, Ordering::SeqCst) > 0;
                        let next =
                            complete(&mut conn, senders(&services), claimed.attempt_id, &worker, outcome, take_next, services.clock.now())
                                .await
                                .context("complete")?;
                        tracing::debug!("webhook result recorded");
                        // Recording may have started successors (of any account): look again.
                        services.send_wake.notify_one();
                        Ok::<_, anyhow::Error>(next)
                    }
                    .instrument(span)
                    .await?;
                    sent += 1;
                    match next {
                        Some(next) => claimed = next,
                        None => {
                            left.fetch_add(1, Ordering::SeqCst);
                            return Ok::<usize, anyhow::Error>(sent);
                        }
                    }
                }
            });
            in_flight.push(async move { (account_id, task.await.map_err(anyhow::Error::from).and_then(|committed| committed)) });
        }
        let finished = if continuous {
            // Sends in flight must not keep newly due attempts (another tenant's) waiting.
            tokio::select! {
                finished = in_flight.next() => finished,
                _ = services.send_wake.notified() => continue,
                _ = tokio::time::sleep(SEND_POLL) => continue,
            }
        } else {
            in_flight.next().await
        };
        let Some((account_id, committed)) = finished else {
            if continuous && first_error.is_none() {
                tokio::select! {
                    _ = services.send_wake.notified() => {}
                    _ = tokio::time::sleep(SEND_POLL) => {}
                }
                continue;
            }
            break;
        };
        if let Some(n) = per_account.get_mut(&account_id) {
            *n = n.saturating_sub(1);
        }
        match committed {
            Ok(n) => sent += n,
            Err(e) if first_error.is_none() => first_error = Some(e),
            Err(e) => tracing::warn!(error = ?e, "committing a webhook result failed; its lease will run out and it is sent again"),
        }
    }
    match first_error {
        Some(e) => Err(e),
        None => Ok(sent),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn allow_list_matches_host_and_port() {
        let list = vec!["ci.example.com".to_string(), "127.0.0.1:8443".to_string()];
        assert!(super::allowed(&list, "CI.example.com", 443));
        assert!(super::allowed(&list, "127.0.0.1", 8443));
        assert!(!super::allowed(&list, "127.0.0.1", 80));
        assert!(!super::allowed(&list, "localhost", 8443), "a name is not its address");
        let v6 = vec!["[::1]:8443".to_string(), "[fd00::5]".to_string()];
        assert!(super::allowed(&v6, "[::1]", 8443) && !super::allowed(&v6, "[::1]", 80));
        assert!(super::allowed(&v6, "[fd00::5]", 9999));
        assert_eq!(super::idempotency_key(7, "build", "compile", 2), "7/build/compile/2");
    }
}
