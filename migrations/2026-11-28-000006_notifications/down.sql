DROP TABLE IF EXISTS signoff_tokens, delegations, status_links, user_mutes;
ALTER TABLE release_activities DROP COLUMN IF EXISTS last_reminded_at, DROP COLUMN IF EXISTS escalation_level;
