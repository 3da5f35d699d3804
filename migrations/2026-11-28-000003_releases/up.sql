-- Releases: one run of a pinned process version, its links, and per-release phase/activity copies.

CREATE TABLE releases (
    id BIGSERIAL PRIMARY KEY,
    account_id BIGINT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    -- NULL: an account-level release; else the org of an org-level release.
    org_id BIGINT REFERENCES organizations(id),
    name TEXT NOT NULL,
    release_type TEXT NOT NULL CHECK (release_type IN ('standard', 'hotfix', 'feature', 'system')),
    process_id BIGINT NOT NULL REFERENCES processes(id),
    process_version INTEGER NOT NULL,
    -- Input values; secret ones sealed as {"$secret": "v1:…"}.
    inputs JSONB NOT NULL DEFAULT '{}',
    variables JSONB NOT NULL DEFAULT '{}',
    schedule_start TIMESTAMPTZ,
    schedule_end TIMESTAMPTZ,
    time_zone TEXT NOT NULL,
    owner_id BIGINT REFERENCES users(id),
    stakeholders TEXT[] NOT NULL DEFAULT '{}',
    environments TEXT[] NOT NULL DEFAULT '{}',
    services TEXT[] NOT NULL DEFAULT '{}',
    state TEXT NOT NULL DEFAULT 'draft' CHECK (state IN ('draft', 'active', 'archived')),
    status TEXT NOT NULL DEFAULT 'NotStarted'
        CHECK (status IN ('NotStarted', 'Running', 'OnHold', 'Success', 'PartialSuccess', 'Failed', 'RolledBack', 'Aborted')),
    -- Why a scheduled draft did not auto-activate (what is missing), or why it is on hold.
    status_reason TEXT,
    lock_version INTEGER NOT NULL DEFAULT 1,
    created_by BIGINT REFERENCES users(id),
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    activated_at TIMESTAMPTZ,
    started_at TIMESTAMPTZ,
    finished_at TIMESTAMPTZ,
    archived_at TIMESTAMPTZ,
    CHECK (schedule_end IS NULL OR schedule_start IS NULL OR schedule_end > schedule_start)
);
CREATE INDEX releases_account ON releases (account_id, state, id DESC);
CREATE INDEX releases_due ON releases (schedule_start) WHERE state = 'draft' AND schedule_start IS NOT NULL;
CREATE INDEX releases_finished ON releases (finished_at) WHERE state = 'active' AND finished_at IS NOT NULL;

CREATE TABLE release_links (
    account_id BIGINT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    release_id BIGINT NOT NULL REFERENCES releases(id) ON DELETE CASCADE,
    kind TEXT NOT NULL CHECK (kind IN ('depends_on', 'hotfix_for', 'subprocess_of', 'restarted_from')),
    target_id BIGINT NOT NULL REFERENCES releases(id),
    PRIMARY KEY (release_id, kind, target_id),
    CHECK (release_id <> target_id)
);
CREATE INDEX release_links_target ON release_links (target_id);

CREATE TABLE release_phases (
    release_id BIGINT NOT NULL REFERENCES releases(id) ON DELETE CASCADE,
    key TEXT NOT NULL,
    account_id BIGINT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    position INTEGER NOT NULL,
    name TEXT NOT NULL,
    owner TEXT NOT NULL,
    depends_on TEXT[] NOT NULL DEFAULT '{}',
    rollback BOOLEAN NOT NULL DEFAULT FALSE,
    status TEXT NOT NULL DEFAULT 'NotStarted'
        CHECK (status IN ('NotStarted', 'Waiting', 'Running', 'OnHold', 'Success', 'Failed', 'Ignored', 'Skipped', 'Aborted')),
    started_at TIMESTAMPTZ,
    finished_at TIMESTAMPTZ,
    PRIMARY KEY (release_id, key)
);

CREATE TABLE release_activities (
    release_id BIGINT NOT NULL REFERENCES releases(id) ON DELETE CASCADE,
    phase_key TEXT NOT NULL,
    key TEXT NOT NULL,
    account_id BIGINT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    position INTEGER NOT NULL,
    name TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('manual', 'approval', 'webhook', 'subprocess', 'wait')),
    owner TEXT NOT NULL,
    depends_on TEXT[] NOT NULL DEFAULT '{}',
    critical BOOLEAN NOT NULL DEFAULT TRUE,
    status TEXT NOT NULL DEFAULT 'NotStarted'
        CHECK (status IN ('NotStarted', 'Waiting', 'Running', 'OnHold', 'Success', 'Failed', 'Ignored', 'Skipped', 'Aborted')),
    attempts INTEGER NOT NULL DEFAULT 0,
    outputs JSONB NOT NULL DEFAULT '{}',
    started_at TIMESTAMPTZ,
    finished_at TIMESTAMPTZ,
    PRIMARY KEY (release_id, phase_key, key),
    FOREIGN KEY (release_id, phase_key) REFERENCES release_phases (release_id, key) ON DELETE CASCADE
);

-- Singleton jobs (retention) remember when they last ran; claimed under an advisory xact lock.
CREATE TABLE sweep_runs (
    name TEXT PRIMARY KEY,
    last_run_at TIMESTAMPTZ NOT NULL
);
