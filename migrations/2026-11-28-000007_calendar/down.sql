DROP INDEX IF EXISTS releases_group_occurrence;
ALTER TABLE releases DROP COLUMN IF EXISTS release_group_id, DROP COLUMN IF EXISTS occurrence;
DROP TABLE IF EXISTS release_group_skips, release_groups;
