-- A comment thread per activity (who, when, text); each comment is also on the release's audit chain.
CREATE TABLE activity_comments (
    id BIGSERIAL PRIMARY KEY,
    account_id BIGINT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    release_id BIGINT NOT NULL REFERENCES releases(id) ON DELETE CASCADE,
    phase_key TEXT NOT NULL,
    activity_key TEXT NOT NULL,
    author TEXT NOT NULL,
    body TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX activity_comments_release ON activity_comments (release_id, created_at);
