-- Every release with a time is on the calendar (DESIGN §6): one without a schedule from its
-- activation to its finish (open while in flight). The calendar asks which of them meet a range.
CREATE INDEX releases_unscheduled_window ON releases USING gist (tstzrange(activated_at, finished_at, '[)'))
  WHERE schedule_start IS NULL AND activated_at IS NOT NULL;
