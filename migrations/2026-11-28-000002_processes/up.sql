-- Processes (blueprints), their immutable versions, editor working copies and input sets.

CREATE TABLE processes (
    id BIGSERIAL PRIMARY KEY,
    account_id BIGINT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    org_id BIGINT REFERENCES organizations(id),
    name TEXT NOT NULL,
    -- 0 while a process made in the editor has no saved version yet.
    latest_version INTEGER NOT NULL DEFAULT 0 CHECK (latest_version >= 0),
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);
-- Subprocesses name their process, so names are unique in an account.
CREATE UNIQUE INDEX processes_name_unique ON processes (account_id, lower(name));
CREATE INDEX processes_org ON processes (account_id, org_id);

CREATE TABLE process_versions (
    process_id BIGINT NOT NULL REFERENCES processes(id) ON DELETE CASCADE,
    version INTEGER NOT NULL CHECK (version >= 1),
    account_id BIGINT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    definition JSONB NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    created_by TEXT NOT NULL,
    PRIMARY KEY (process_id, version)
);

CREATE FUNCTION process_versions_immutable() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'process versions never change: UPDATE refused' USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER process_versions_no_update BEFORE UPDATE ON process_versions
    FOR EACH ROW EXECUTE FUNCTION process_versions_immutable();

CREATE TABLE process_working_copies (
    process_id BIGINT NOT NULL REFERENCES processes(id) ON DELETE CASCADE,
    user_id BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    account_id BIGINT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    base_version INTEGER NOT NULL,
    definition JSONB NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (process_id, user_id)
);

CREATE TABLE input_sets (
    id BIGSERIAL PRIMARY KEY,
    account_id BIGINT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    process_id BIGINT NOT NULL REFERENCES processes(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    -- Values of secret inputs are stored encrypted: {"$secret": "v1:…"}.
    input_values JSONB NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);
CREATE UNIQUE INDEX input_sets_name_unique ON input_sets (process_id, lower(name));
