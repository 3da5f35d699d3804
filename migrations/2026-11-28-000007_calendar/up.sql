-- Release groups (recurring cadence): each occurrence becomes one release, exactly once.

CREATE TABLE release_groups (
    id BIGSERIAL PRIMARY KEY,
    account_id BIGINT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    org_id BIGINT REFERENCES organizations(id),
    name TEXT NOT NULL,
    process_id BIGINT NOT NULL REFERENCES processes(id),
    input_set_id BIGINT REFERENCES input_sets(id) ON DELETE SET NULL,
    rrule TEXT NOT NULL,
    -- DTSTART as local wall-clock time in `time_zone`.
    dtstart TIMESTAMP NOT NULL,
    time_zone TEXT NOT NULL,
    duration_minutes INTEGER NOT NULL CHECK (duration_minutes > 0),
    name_template TEXT NOT NULL,
    horizon_days INTEGER NOT NULL CHECK (horizon_days BETWEEN 1 AND 366),
    paused BOOLEAN NOT NULL DEFAULT FALSE,
    require_previous_finished BOOLEAN NOT NULL DEFAULT FALSE,
    owner_id BIGINT REFERENCES users(id),
    created_at TIMESTAMPTZ NOT NULL,
    UNIQUE (account_id, name)
);

CREATE TABLE release_group_skips (
    group_id BIGINT NOT NULL REFERENCES release_groups(id) ON DELETE CASCADE,
    occurrence TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (group_id, occurrence)
);

ALTER TABLE releases
    ADD COLUMN release_group_id BIGINT REFERENCES release_groups(id),
    ADD COLUMN occurrence TIMESTAMPTZ;
-- Several servers may sweep at once: each occurrence is created exactly once.
CREATE UNIQUE INDEX releases_group_occurrence ON releases (release_group_id, occurrence) WHERE release_group_id IS NOT NULL;
