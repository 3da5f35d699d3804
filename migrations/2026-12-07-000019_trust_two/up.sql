-- Security review II. Expand only: a server of the previous commit keeps working.
-- An SSO log-in is bound to the browser that started it: the hash of a value kept in its session.
ALTER TABLE sso_logins ADD COLUMN browser_hash TEXT, ADD COLUMN client TEXT;
CREATE INDEX sso_logins_client ON sso_logins (client, created_at);

-- After the first SSO log-in a user is bound to the provider's (issuer, subject).
ALTER TABLE users ADD COLUMN sso_issuer TEXT, ADD COLUMN sso_subject TEXT;
CREATE UNIQUE INDEX users_sso_identity ON users (account_id, sso_issuer, sso_subject) WHERE sso_subject IS NOT NULL;

-- Status links expire (30 days unless chosen at creation). Links made before, or by a server of
-- the previous commit during an upgrade, end 30 days after their creation.
ALTER TABLE status_links ADD COLUMN expires_at TIMESTAMPTZ;
UPDATE status_links SET expires_at = created_at + interval '30 days' WHERE expires_at IS NULL;
