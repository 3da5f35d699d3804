-- Per-user secret iCalendar feed URLs (one live token per user; a new one replaces it).
CREATE TABLE calendar_feeds (
    token_hash TEXT PRIMARY KEY,
    account_id BIGINT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    user_id BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at TIMESTAMPTZ NOT NULL,
    revoked_at TIMESTAMPTZ
);
CREATE INDEX calendar_feeds_user ON calendar_feeds (user_id);

-- Freeze windows: one-off (starts_at..ends_at) or recurring (RRULE from a local DTSTART, for a
-- duration), in an explicit time zone, on environments.
CREATE TABLE freeze_windows (
    id BIGSERIAL PRIMARY KEY,
    account_id BIGINT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    reason TEXT NOT NULL,
    environments TEXT[] NOT NULL,
    time_zone TEXT NOT NULL,
    starts_at TIMESTAMPTZ,
    ends_at TIMESTAMPTZ,
    rrule TEXT,
    dtstart TIMESTAMP,
    duration_minutes INTEGER,
    created_at TIMESTAMPTZ NOT NULL,
    CHECK ((starts_at IS NOT NULL AND ends_at IS NOT NULL AND ends_at > starts_at) OR (rrule IS NOT NULL AND dtstart IS NOT NULL AND duration_minutes > 0))
);

-- A hotfix may pass a freeze with an override (reason kept; audited).
CREATE TABLE freeze_overrides (
    release_id BIGINT PRIMARY KEY REFERENCES releases(id) ON DELETE CASCADE,
    reason TEXT NOT NULL,
    granted_by TEXT NOT NULL,
    granted_at TIMESTAMPTZ NOT NULL
);
