-- Idempotent submission: at most one unfinished job per unique key.
ALTER TABLE jobs ADD COLUMN unique_key TEXT;
CREATE UNIQUE INDEX jobs_unique_key ON jobs (unique_key)
    WHERE unique_key IS NOT NULL AND state IN ('awaiting', 'scheduled', 'enqueued', 'processing');

-- Running jobs per queue, for concurrency limits.
CREATE INDEX jobs_running ON jobs (queue) WHERE state = 'processing';

-- Queue controls: paused queues accept jobs but run none; `concurrency` caps the jobs
-- of the queue running at once across all hosts (NULL: no cap).
CREATE TABLE queues (
    name        TEXT PRIMARY KEY NOT NULL,
    paused      INTEGER NOT NULL DEFAULT 0,
    concurrency INTEGER
);
