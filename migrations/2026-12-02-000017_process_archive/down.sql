ALTER TABLE processes DROP COLUMN IF EXISTS archived_at;
