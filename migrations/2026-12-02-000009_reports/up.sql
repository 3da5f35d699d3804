-- Reports and the audit pages (DESIGN §8): deployments outlive a purged release, keep the
-- release's name and org for the reports, and the last verification of the trail is kept.
ALTER TABLE deployments DROP CONSTRAINT deployments_release_id_fkey;
ALTER TABLE deployments ALTER COLUMN release_id DROP NOT NULL;
ALTER TABLE deployments ADD CONSTRAINT deployments_release_id_fkey
    FOREIGN KEY (release_id) REFERENCES releases(id) ON DELETE SET NULL;
ALTER TABLE deployments ADD COLUMN release_name TEXT NOT NULL DEFAULT '';
ALTER TABLE deployments ADD COLUMN org_id BIGINT REFERENCES organizations(id) ON DELETE SET NULL;
UPDATE deployments d SET release_name = r.name, org_id = r.org_id FROM releases r WHERE r.id = d.release_id;
CREATE INDEX deployments_service ON deployments (account_id, service, environment, deployed_at DESC, id DESC);
CREATE INDEX deployments_release ON deployments (release_id);

CREATE INDEX audit_events_account_id ON audit_events (account_id, id DESC);

CREATE TABLE audit_verifications (
    id BIGSERIAL PRIMARY KEY,
    account_id BIGINT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    verified_at TIMESTAMPTZ NOT NULL,
    verified_by TEXT NOT NULL,
    chains BIGINT NOT NULL,
    events BIGINT NOT NULL,
    broken TEXT
);
CREATE INDEX audit_verifications_account ON audit_verifications (account_id, verified_at DESC);
