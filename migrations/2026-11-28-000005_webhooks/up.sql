-- Engine part 2: webhook attempts with leases, worker heartbeats, artifacts and deployments.

CREATE TABLE workers (
    id TEXT PRIMARY KEY,
    started_at TIMESTAMPTZ NOT NULL,
    heartbeat_at TIMESTAMPTZ NOT NULL
);

CREATE TABLE webhook_attempts (
    id BIGSERIAL PRIMARY KEY,
    account_id BIGINT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    release_id BIGINT NOT NULL REFERENCES releases(id) ON DELETE CASCADE,
    phase_key TEXT NOT NULL,
    activity_key TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    idempotency_key TEXT NOT NULL UNIQUE,
    -- queued → sending (leased) → sent (awaiting a callback) | succeeded | failed; superseded when voided.
    state TEXT NOT NULL CHECK (state IN ('queued', 'sending', 'sent', 'succeeded', 'failed', 'superseded')),
    due_at TIMESTAMPTZ NOT NULL,
    lease_owner TEXT,
    lease_until TIMESTAMPTZ,
    -- The request as recorded (secrets masked).
    request JSONB,
    response_status INTEGER,
    response_body TEXT,
    error TEXT,
    callback_token_hash TEXT UNIQUE,
    callback_used_at TIMESTAMPTZ,
    created_at TIMESTAMPTZ NOT NULL,
    sent_at TIMESTAMPTZ,
    finished_at TIMESTAMPTZ,
    UNIQUE (release_id, phase_key, activity_key, attempt),
    FOREIGN KEY (release_id, phase_key, activity_key) REFERENCES release_activities (release_id, phase_key, key) ON DELETE CASCADE
);
CREATE INDEX webhook_attempts_due ON webhook_attempts (due_at) WHERE state = 'queued';
CREATE INDEX webhook_attempts_leases ON webhook_attempts (lease_until) WHERE state = 'sending';

ALTER TABLE releases ADD COLUMN artifacts JSONB NOT NULL DEFAULT '{}';
-- The attempt number a run of the activity began with (automatic retries count from it).
ALTER TABLE release_activities ADD COLUMN run_first_attempt INTEGER NOT NULL DEFAULT 1;

CREATE TABLE deployments (
    id BIGSERIAL PRIMARY KEY,
    account_id BIGINT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    release_id BIGINT NOT NULL REFERENCES releases(id),
    phase_key TEXT NOT NULL,
    activity_key TEXT NOT NULL,
    service TEXT NOT NULL,
    version TEXT NOT NULL,
    environment TEXT NOT NULL,
    deployed_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX deployments_env ON deployments (account_id, environment, deployed_at DESC);
