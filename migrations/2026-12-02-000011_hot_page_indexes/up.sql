-- Calendar, feed and dashboard ask "which windows meet [from, to)": a GiST index on the window
-- answers that without reading every earlier release (benches/README.md has the plans).
CREATE INDEX releases_window ON releases USING gist (tstzrange(schedule_start, schedule_end, '[)'))
  WHERE schedule_start IS NOT NULL AND schedule_end IS NOT NULL;
-- "What is deployed where": the newest row per (service, environment) in index order, no sort.
CREATE INDEX deployments_latest ON deployments (account_id, service, environment, deployed_at DESC, id DESC);
