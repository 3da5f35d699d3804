-- Every release with a time is on the calendar (DESIGN §6): one without a schedule from its
-- activation to its finish (open while in flight). The calendar asks which of them meet a range.
-- (A finish recorded before the activation, as history may be, counts as an instant.)
CREATE INDEX releases_unscheduled_window ON releases
  USING gist (tstzrange(activated_at, CASE WHEN finished_at < activated_at THEN activated_at ELSE finished_at END, '[)'))
  WHERE schedule_start IS NULL AND activated_at IS NOT NULL;
