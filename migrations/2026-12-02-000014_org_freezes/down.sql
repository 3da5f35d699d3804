ALTER TABLE freeze_windows DROP COLUMN IF EXISTS org_id;
