ALTER TABLE webhook_attempts DROP COLUMN IF EXISTS duration_ms;
