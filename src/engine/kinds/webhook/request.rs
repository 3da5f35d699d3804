//! Claiming a due attempt and rendering its request: the attempt is committed as `sending`
//! with a lease, its idempotency key and what is shown of its request, before anything is sent.

use chrono::{DateTime, TimeDelta, Utc};
use diesel_async::{AsyncConnection, AsyncPgConnection};
use serde_json::{json, Value};
use std::time::Duration;

use super::{timeout_of, MAX_REQUEST_SECONDS};
use crate::db::models::accounts::AccountSettings;
use crate::db::models::processes::DefinitionCache;
use crate::db::models::webhook_attempts::{self as attempts, ClaimedRow};
use crate::domain::process::definition::Completion;
use crate::domain::process::template::{render, to_text};
use crate::ops::context::{self, Secrets};
use crate::ops::OpError;
use crate::security::{random_token, sha256_hex, SecretBox};

/// A worker whose heartbeat is older than this is considered dead; its leases may be taken over.
pub const HEARTBEAT_STALE_SECONDS: i64 = 15;

/// An attempt leased to this worker: its request, or why it could not be rendered.
#[derive(Debug, Clone)]
pub struct Claimed {
    pub attempt_id: i64,
    pub release_id: i64,
    pub account_id: i64,
    pub key: String,
    /// `Err`: a template could not be resolved; the attempt fails without a request.
    pub request: Result<Request, String>,
    /// The clear values of the release's secret inputs: masked in whatever the receiver answers.
    pub secrets: Vec<String>,
}

/// A rendered request, as the transport sends it.
#[derive(Debug, Clone)]
pub struct Request {
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
}

/// What a claim needs besides the connection: the key of secret inputs, the base URL of
/// callbacks, and the parsed definitions.
pub type Senders<'a> = (&'a SecretBox, &'a str, &'a DefinitionCache);

/// Claims one due attempt, or one left `sending` by a worker whose heartbeat is stale (it died
/// mid-send) or whose lease ran out (the send is over, by its timeout, but its result was never
/// committed, e.g. PostgreSQL restarted meanwhile): the request is repeated with the same key.
pub async fn claim(
    conn: &mut AsyncPgConnection,
    worker: &str,
    senders: Senders<'_>,
    busy_accounts: &[i64],
    now: DateTime<Utc>,
) -> Result<Option<Claimed>, OpError> {
    conn.transaction(async |conn| {
        let stale_before = now - TimeDelta::seconds(HEARTBEAT_STALE_SECONDS);
        let Some(row) = attempts::claim_due(conn, now, stale_before, busy_accounts).await? else { return Ok(None) };
        lease(conn, worker, senders, row, now).await.map(Some)
    })
    .await
}

/// Inside the transaction that just recorded a send's result: the account's oldest due attempt,
/// leased to this worker at once, so the task that sent for this account goes on with it without
/// a claim transaction of its own. Oldest first, as `claim` takes them, so a burst's first
/// requests are not overtaken by the successors of those sent before them; within the same
/// account, so the per-account bound still counts this task once.
pub async fn claim_next_of_account(
    conn: &mut AsyncPgConnection,
    worker: &str,
    senders: Senders<'_>,
    account_id: i64,
    now: DateTime<Utc>,
) -> Result<Option<Claimed>, OpError> {
    let Some(row) = attempts::claim_next_of_account(conn, account_id, now).await? else { return Ok(None) };
    lease(conn, worker, senders, row, now).await.map(Some)
}

/// (url, headers, body) of a rendered request.
type Rendered = (String, Vec<(String, String)>, Option<Value>);

/// Renders a locked attempt's request and commits it (with the caller's transaction) as
/// `sending`, leased to `worker`.
async fn lease(
    conn: &mut AsyncPgConnection,
    worker: &str,
    (secrets, base_url, defs): Senders<'_>,
    row: ClaimedRow,
    now: DateTime<Utc>,
) -> Result<Claimed, OpError> {
    let ClaimedRow { id, release_id, phase_key: phase, activity_key: activity, idempotency_key: key } = row;
    let r = crate::db::engine::release(conn, release_id).await?;
    let def = defs.pinned(conn, &r).await?;
    let adef = def.activity(&phase, &activity).cloned().ok_or(OpError::NotFound)?;
    let cfg = adef.config.clone().ok_or(OpError::NotFound)?;
    let token = (cfg.completion == Some(Completion::Callback)).then(|| random_token(32));
    let callback_url = token.as_ref().map(|t| format!("{base_url}/api/v1/callbacks/{t}"));
    let at = (phase.as_str(), activity.as_str());
    let (_, activities) = crate::db::models::releases::tree(conn, r.id).await?;
    let clear = context::lookup_in(&r, &activities, &def, at, Secrets::Revealed(secrets), callback_url.as_deref());
    let shown = context::lookup_in(&r, &activities, &def, at, Secrets::Masked, callback_url.as_deref().map(|_| "<callback url>"));
    let build = |lookup: &context::Lookup| -> Result<Rendered, String> {
        let url = to_text(&render(&Value::String(cfg.url.clone()), lookup)?);
        let mut headers = Vec::new();
        for (k, v) in &cfg.headers {
            headers.push((k.clone(), to_text(&render(&Value::String(v.clone()), lookup)?)));
        }
        let body = cfg.body.as_ref().map(|b| render(b, lookup)).transpose()?;
        Ok((url, headers, body))
    };
    let method = cfg.method.clone().unwrap_or_else(|| "POST".into()).to_uppercase();
    // What is recorded (and shown in the attempt list) is what is sent: the engine's own headers
    // too, the callback's token masked, so people can match a request to the receiver's log.
    let recorded = build(&shown).ok().map(|(url, mut headers, body)| {
        headers.push(("Idempotency-Key".into(), key.clone()));
        if callback_url.is_some() {
            headers.push(("Railyard-Callback-Url".into(), format!("{base_url}/api/v1/callbacks/{}", crate::domain::masking::MASK)));
        }
        (url, headers, body)
    });
    let seconds = MAX_REQUEST_SECONDS.min(timeout_of(&adef).num_seconds());
    let shown_request = recorded.as_ref().map(|(url, headers, body)| {
        json!({"method": method, "url": url, "headers": headers.iter().map(|(k, v)| json!([k, v])).collect::<Vec<_>>(), "body": body, "idempotency_key": key})
    });
    attempts::lease(conn, id, worker, now + TimeDelta::seconds(seconds + 30), token.as_deref().map(sha256_hex), shown_request).await?;
    let request = match build(&clear) {
        Ok((url, mut headers, body)) => {
            headers.push(("Idempotency-Key".into(), key.clone()));
            if let Some(cb) = &callback_url {
                headers.push(("Railyard-Callback-Url".into(), cb.clone()));
            }
            Ok(Request {
                method,
                url,
                shown_url: recorded.map(|(u, _, _)| u).unwrap_or_default(),
                headers,
                body,
                timeout: Duration::from_secs(seconds.max(1).unsigned_abs()),
                allow_list: AccountSettings::get(conn, r.account_id).await?.webhook_allow_list,
                account_slug: crate::db::models::accounts::slug_of(conn, r.account_id).await?,
            })
        }
        // A template that cannot be resolved is a failure of this attempt, not a send.
        Err(message) => Err(format!("unresolvable: {message}")),
    };
    tracing::debug!(attempt_id = id, release_id = r.id, key = %key, "webhook attempt claimed");
    Ok(Claimed {
        attempt_id: id,
        release_id: r.id,
        account_id: r.account_id,
        key,
        secrets: if request.is_ok() { crate::ops::processes::secret_values(&def, secrets, &r.inputs) } else { Vec::new() },
        request,
    })
}
