DROP INDEX releases_engine_error;
ALTER TABLE releases DROP COLUMN hold, DROP COLUMN engine_failures;
