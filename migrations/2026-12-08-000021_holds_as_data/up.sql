-- Why an activity waits, as data (DESIGN §4, §10): the hold replaces the opening words of
-- `status_reason`, which is for people only. Expand only: the previous build ignores the column.
ALTER TABLE release_activities
    ADD COLUMN hold TEXT CHECK (hold IN ('freeze', 'decision', 'approval', 'manual', 'deploy_lock', 'engine_error'));

-- What the previous build kept in prose becomes data.
UPDATE release_activities SET hold = 'freeze'
 WHERE status = 'OnHold' AND status_reason LIKE 'held by a freeze%';
UPDATE release_activities SET hold = 'decision'
 WHERE status = 'OnHold' AND hold IS NULL AND status_reason LIKE 'failed%';
UPDATE release_activities SET hold = CASE WHEN kind = 'approval' THEN 'approval' ELSE 'decision' END
 WHERE status = 'OnHold' AND hold IS NULL;
UPDATE releases SET hold = 'freeze'
 WHERE status = 'OnHold' AND hold IS NULL AND status_reason LIKE 'held by a freeze%';
UPDATE releases r SET hold = COALESCE(
        (SELECT a.hold FROM release_activities a WHERE a.release_id = r.id AND a.hold IS NOT NULL
          ORDER BY a.phase_key, a.position LIMIT 1),
        'manual')
 WHERE r.status = 'OnHold' AND r.hold IS NULL;

CREATE INDEX release_activities_freeze_holds ON release_activities (account_id) WHERE hold = 'freeze';
CREATE INDEX releases_freeze_holds ON releases (account_id) WHERE hold = 'freeze';

-- A due draft the sweep could not start, as data: such drafts are claimed after the others.
ALTER TABLE releases ADD COLUMN refused_at TIMESTAMPTZ;
UPDATE releases SET refused_at = updated_at WHERE state = 'draft' AND status_reason IS NOT NULL;
