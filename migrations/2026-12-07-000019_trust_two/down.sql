ALTER TABLE status_links DROP COLUMN expires_at;
DROP INDEX users_sso_identity;
ALTER TABLE users DROP COLUMN sso_issuer, DROP COLUMN sso_subject;
ALTER TABLE sso_logins DROP COLUMN browser_hash, DROP COLUMN client;
