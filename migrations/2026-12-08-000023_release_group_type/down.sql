ALTER TABLE release_groups DROP COLUMN stakeholders, DROP COLUMN release_type;
