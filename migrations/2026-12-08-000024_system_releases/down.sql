DROP TABLE deploy_locks;
ALTER TABLE environments DROP COLUMN deploy_lock;
DROP INDEX release_activities_instances;
ALTER TABLE release_activities DROP COLUMN fan_of, DROP COLUMN item, DROP COLUMN item_value, DROP COLUMN fanned, DROP COLUMN waiting_for;
