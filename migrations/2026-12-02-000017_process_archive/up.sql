-- An archived process is hidden from new releases; its releases keep running.
ALTER TABLE processes ADD COLUMN archived_at TIMESTAMPTZ;
