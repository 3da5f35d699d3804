DROP INDEX IF EXISTS release_activities_waiting;
DROP INDEX IF EXISTS releases_ended_badly;
DROP INDEX IF EXISTS releases_in_flight;
