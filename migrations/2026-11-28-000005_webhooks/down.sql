DROP TABLE IF EXISTS deployments, webhook_attempts, workers;
ALTER TABLE releases DROP COLUMN IF EXISTS artifacts;
ALTER TABLE release_activities DROP COLUMN IF EXISTS run_first_attempt;
