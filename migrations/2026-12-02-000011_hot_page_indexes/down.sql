DROP INDEX IF EXISTS deployments_latest;
DROP INDEX IF EXISTS releases_window;
