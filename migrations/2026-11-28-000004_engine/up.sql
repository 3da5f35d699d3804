-- Engine part 1: when a release needs the worker, failure mode, activity run-time data, votes.

ALTER TABLE releases
    ADD COLUMN next_eval_at TIMESTAMPTZ,
    ADD COLUMN failing BOOLEAN NOT NULL DEFAULT FALSE;
CREATE INDEX releases_next_eval ON releases (next_eval_at) WHERE state = 'active' AND next_eval_at IS NOT NULL;

ALTER TABLE release_activities
    ADD COLUMN on_failure TEXT NOT NULL DEFAULT 'manual' CHECK (on_failure IN ('manual', 'fail', 'ignore')),
    ADD COLUMN wake_at TIMESTAMPTZ,
    ADD COLUMN status_reason TEXT,
    ADD COLUMN eligible BIGINT[] NOT NULL DEFAULT '{}',
    ADD COLUMN needed INTEGER NOT NULL DEFAULT 0,
    ADD COLUMN last_actor TEXT,
    ADD COLUMN note TEXT;

ALTER TABLE release_phases
    ADD COLUMN wake_at TIMESTAMPTZ;

CREATE TABLE approval_votes (
    account_id BIGINT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    release_id BIGINT NOT NULL REFERENCES releases(id) ON DELETE CASCADE,
    phase_key TEXT NOT NULL,
    activity_key TEXT NOT NULL,
    round INTEGER NOT NULL,
    -- The approver whose one vote this is (a delegate votes in the approver's name).
    user_id BIGINT NOT NULL REFERENCES users(id),
    cast_by BIGINT NOT NULL REFERENCES users(id),
    decision TEXT NOT NULL CHECK (decision IN ('approve', 'reject')),
    comment TEXT,
    at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (release_id, phase_key, activity_key, round, user_id),
    FOREIGN KEY (release_id, phase_key, activity_key) REFERENCES release_activities (release_id, phase_key, key) ON DELETE CASCADE
);
