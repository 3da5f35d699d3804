DROP INDEX IF EXISTS releases_unscheduled_window;
