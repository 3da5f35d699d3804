ALTER TABLE releases DROP COLUMN refused_at;
DROP INDEX IF EXISTS releases_freeze_holds;
DROP INDEX IF EXISTS release_activities_freeze_holds;
ALTER TABLE release_activities DROP COLUMN hold;
