DROP TABLE IF EXISTS freeze_overrides, freeze_windows, calendar_feeds;
