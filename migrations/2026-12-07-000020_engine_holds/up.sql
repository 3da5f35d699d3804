-- Why a release waits, as data (DESIGN §4, §9): `engine_error` sets aside a release whose advance
-- keeps failing in the database; its consecutive failures are counted. Expand only.
ALTER TABLE releases
    ADD COLUMN hold TEXT CHECK (hold IN ('freeze', 'decision', 'approval', 'manual', 'deploy_lock', 'engine_error')),
    ADD COLUMN engine_failures INTEGER NOT NULL DEFAULT 0;
CREATE INDEX releases_engine_error ON releases (account_id) WHERE hold = 'engine_error';
