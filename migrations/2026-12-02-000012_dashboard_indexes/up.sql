-- The dashboard's two release sections read a handful of rows out of the whole history; without
-- these they were sequential scans of every release (benches/explain, large set).
CREATE INDEX releases_in_flight ON releases (account_id, started_at, id)
  WHERE state = 'active' AND status IN ('Running', 'OnHold');
CREATE INDEX releases_ended_badly ON releases (account_id, finished_at DESC, id DESC)
  WHERE status IN ('Failed', 'RolledBack', 'Aborted');
-- "Waiting for you" (dashboard and /work): running and on-hold activities, out of every activity
-- of every release.
CREATE INDEX release_activities_waiting ON release_activities (account_id, started_at)
  WHERE status IN ('Running', 'OnHold');
