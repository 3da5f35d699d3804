-- Single sign-on (DESIGN §10): the account's choices, its group → role mapping, which roles the
-- mapping gave (re-applied at each log-in), and the short-lived state of a log-in in flight.
ALTER TABLE account_settings
    ADD COLUMN sso_create_users BOOLEAN NOT NULL DEFAULT false,
    ADD COLUMN sso_roles_only_from_provider BOOLEAN NOT NULL DEFAULT false,
    ADD COLUMN sso_required BOOLEAN NOT NULL DEFAULT false,
    ADD COLUMN sso_break_glass TEXT[] NOT NULL DEFAULT '{}';

CREATE TABLE sso_group_roles (
    id BIGSERIAL PRIMARY KEY,
    account_id BIGINT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    provider_group TEXT NOT NULL,
    role TEXT NOT NULL,
    org_id BIGINT REFERENCES organizations(id) ON DELETE CASCADE,
    created_at TIMESTAMPTZ NOT NULL
);
CREATE UNIQUE INDEX sso_group_roles_unique ON sso_group_roles (account_id, provider_group, role, COALESCE(org_id, 0));

ALTER TABLE role_bindings ADD COLUMN from_provider BOOLEAN NOT NULL DEFAULT false;

-- One row per log-in started at /login/sso: found by the hash of its state, used once.
CREATE TABLE sso_logins (
    state_hash TEXT PRIMARY KEY,
    nonce TEXT NOT NULL,
    pkce_verifier TEXT NOT NULL,
    next TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX sso_logins_created ON sso_logins (created_at);
