-- A release group has a type, a release manager and stakeholders, which its releases get
-- (DESIGN §5). Groups made before keep making `system` releases; new ones default to `standard`.
ALTER TABLE release_groups
    ADD COLUMN release_type TEXT NOT NULL DEFAULT 'system' CHECK (release_type IN ('standard', 'hotfix', 'feature', 'system')),
    ADD COLUMN stakeholders TEXT[] NOT NULL DEFAULT '{}';
ALTER TABLE release_groups ALTER COLUMN release_type SET DEFAULT 'standard';
