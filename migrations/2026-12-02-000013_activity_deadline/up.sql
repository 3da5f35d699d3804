-- When an in-progress activity's `timeout` runs out (DESIGN §9): set when the activity starts.
ALTER TABLE release_activities ADD COLUMN deadline timestamptz;
