-- How long each webhook request took (the release page lists attempts with it).
ALTER TABLE webhook_attempts ADD COLUMN duration_ms INT;
