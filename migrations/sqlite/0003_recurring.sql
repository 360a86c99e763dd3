-- Recurring jobs: definitions that enqueue a job at every occurrence of a cron schedule.
-- Times are Unix milliseconds.
CREATE TABLE recurring_jobs (
    id           TEXT PRIMARY KEY NOT NULL,  -- chosen by the client: [A-Za-z0-9._-]{1,128}
    cron         TEXT NOT NULL,
    timezone     TEXT NOT NULL,              -- IANA zone the cron fields are read in
    plugin       TEXT NOT NULL,
    args         TEXT NOT NULL,              -- JSON object
    queue        TEXT NOT NULL,
    priority     INTEGER NOT NULL,
    max_attempts INTEGER NOT NULL,
    misfire      TEXT NOT NULL,              -- 'run_once' | 'skip': what a missed occurrence gets
    paused       INTEGER NOT NULL DEFAULT 0,
    next_run_at  INTEGER,                    -- the pending occurrence; NULL while paused or never
    last_run_at  INTEGER,                    -- the occurrence (or trigger) of the last job
    last_job_id  TEXT,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL
);

-- The firing pass: unpaused definitions whose occurrence is due.
CREATE INDEX recurring_jobs_due ON recurring_jobs (next_run_at) WHERE paused = 0;
