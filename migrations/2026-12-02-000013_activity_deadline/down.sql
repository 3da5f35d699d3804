ALTER TABLE release_activities DROP COLUMN IF EXISTS deadline;
