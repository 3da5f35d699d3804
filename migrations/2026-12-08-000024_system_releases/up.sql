-- Fan-out (DESIGN §3): each instance of an activity with `for_each` is a row of its own,
-- keyed `activity[item]`, pointing at its activity (`fan_of`). Expand only.
ALTER TABLE release_activities
    ADD COLUMN fan_of TEXT,
    ADD COLUMN item TEXT,
    ADD COLUMN item_value JSONB,
    -- A fan-out activity once its instances exist: people act on the instances, not on it.
    ADD COLUMN fanned BOOLEAN NOT NULL DEFAULT false,
    -- A deploying activity that waits for a deploy lock: {environment, service?, held_by, since}.
    ADD COLUMN waiting_for JSONB;
CREATE INDEX release_activities_instances ON release_activities (release_id, phase_key, fan_of) WHERE fan_of IS NOT NULL;

-- Deploy locks (DESIGN §2): stored per environment; production environments lock per service.
ALTER TABLE environments
    ADD COLUMN deploy_lock TEXT NOT NULL DEFAULT 'none' CHECK (deploy_lock IN ('none', 'service', 'environment'));
UPDATE environments SET deploy_lock = 'service' WHERE production;

-- A phase holding or waiting for a lock on (environment, service); service '' is the whole
-- environment. One holder per lock; waiters queue hotfixes first, then by arrival.
CREATE TABLE deploy_locks (
    id BIGSERIAL PRIMARY KEY,
    account_id BIGINT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    environment TEXT NOT NULL,
    service TEXT NOT NULL DEFAULT '',
    release_id BIGINT NOT NULL REFERENCES releases (id) ON DELETE CASCADE,
    phase_key TEXT NOT NULL,
    held BOOLEAN NOT NULL,
    hotfix BOOLEAN NOT NULL,
    since TIMESTAMPTZ NOT NULL,
    UNIQUE (release_id, environment, service)
);
CREATE UNIQUE INDEX deploy_locks_one_holder ON deploy_locks (account_id, environment, service) WHERE held;
CREATE INDEX deploy_locks_queue ON deploy_locks (account_id, environment, service, hotfix DESC, since, id) WHERE NOT held;
