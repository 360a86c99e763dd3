-- Continuations: a job in `awaiting` runs once its parents have finished.
ALTER TABLE jobs ADD COLUMN await_on TEXT;                          -- 'success' | 'finish'
ALTER TABLE jobs ADD COLUMN pending_parents INTEGER NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN batch_id TEXT;
ALTER TABLE jobs ADD COLUMN has_children INTEGER NOT NULL DEFAULT 0;   -- some job waits on it

CREATE TABLE job_parents (
    job_id    TEXT NOT NULL,
    parent_id TEXT NOT NULL,
    done      INTEGER NOT NULL DEFAULT 0,   -- the parent has finished (counted once)
    PRIMARY KEY (job_id, parent_id)
) WITHOUT ROWID;
CREATE INDEX job_parents_by_parent ON job_parents (parent_id);
CREATE INDEX jobs_by_batch ON jobs (batch_id, state) WHERE batch_id IS NOT NULL;

-- When a parent finishes, in the same transaction: count it once for each waiting
-- child; with `on: success` a parent that did not succeed cancels the child; a child
-- whose last parent finished is enqueued. Changes to a child fire this trigger in turn,
-- so a cancellation cascades down a chain.
CREATE TRIGGER jobs_continue AFTER UPDATE OF state ON jobs
WHEN NEW.has_children = 1 AND NEW.state IN ('succeeded', 'failed', 'cancelled')
BEGIN
    UPDATE jobs SET pending_parents = pending_parents - 1
    WHERE state = 'awaiting'
      AND id IN (SELECT job_id FROM job_parents WHERE parent_id = NEW.id AND done = 0);
    UPDATE job_parents SET done = 1 WHERE parent_id = NEW.id AND done = 0;
    UPDATE jobs SET state = 'cancelled', state_at = NEW.state_at, finished_at = NEW.state_at,
        state_reason = 'parent ' || NEW.id || ' ended ' || NEW.state,
        error_kind = 'cancelled', error_message = 'parent ' || NEW.id || ' ended ' || NEW.state
    WHERE NEW.state <> 'succeeded' AND state = 'awaiting' AND await_on = 'success'
      AND id IN (SELECT job_id FROM job_parents WHERE parent_id = NEW.id);
    UPDATE jobs SET state = 'enqueued', state_at = NEW.state_at, state_reason = 'parents finished',
        run_at = max(run_at, NEW.state_at)
    WHERE state = 'awaiting' AND pending_parents <= 0
      AND id IN (SELECT job_id FROM job_parents WHERE parent_id = NEW.id);
END;

-- Batches: jobs created together, with optional callbacks that are continuations of all.
CREATE TABLE batches (
    id           TEXT PRIMARY KEY NOT NULL,
    description  TEXT NOT NULL DEFAULT '',
    created_at   INTEGER NOT NULL,
    size         INTEGER NOT NULL,
    on_success   TEXT,                      -- callback job ids
    on_complete  TEXT,
    cancelled_at INTEGER
);

-- Retention: finished jobs by age.
CREATE INDEX jobs_finished ON jobs (state, finished_at) WHERE finished_at IS NOT NULL;
