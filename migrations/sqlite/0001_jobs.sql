-- Jobs, their state history and their logs. Times are Unix milliseconds.
CREATE TABLE jobs (
    id                  TEXT PRIMARY KEY NOT NULL,  -- UUID v7: sorts by creation time
    plugin              TEXT NOT NULL,
    args                TEXT NOT NULL,              -- JSON
    queue               TEXT NOT NULL,
    priority            INTEGER NOT NULL,
    state               TEXT NOT NULL,
    attempt             INTEGER NOT NULL DEFAULT 0,
    max_attempts        INTEGER NOT NULL,
    run_at              INTEGER NOT NULL,
    created_at          INTEGER NOT NULL,
    started_at          INTEGER,
    finished_at         INTEGER,
    repository_path     TEXT,
    result              TEXT,                       -- JSON
    error_kind          TEXT,
    error_message       TEXT,
    progress_percent    INTEGER,
    progress_message    TEXT,
    progress_updated_at INTEGER,
    plugin_digest       TEXT,
    fuel_consumed       INTEGER,
    wall_ms             INTEGER,
    memory_peak_bytes   INTEGER,
    lease_id            TEXT,
    lease_owner         TEXT,
    lease_expires_at    INTEGER,
    cancel_requested    INTEGER NOT NULL DEFAULT 0,
    state_at            INTEGER NOT NULL,           -- when the current state was entered
    state_reason        TEXT NOT NULL               -- why
);

-- Claim order: per queue, higher priority first, then earlier run_at, then older.
CREATE INDEX jobs_ready ON jobs (queue, priority DESC, run_at, id) WHERE state = 'enqueued';
CREATE INDEX jobs_due ON jobs (run_at) WHERE state = 'scheduled';
CREATE INDEX jobs_leases ON jobs (lease_expires_at) WHERE state = 'processing';
CREATE INDEX jobs_owner ON jobs (lease_owner) WHERE state = 'processing';
CREATE INDEX jobs_by_state ON jobs (state, id);
CREATE INDEX jobs_by_queue ON jobs (queue, id);
CREATE INDEX jobs_by_plugin ON jobs (plugin, id);

CREATE TABLE job_history (
    seq    INTEGER PRIMARY KEY,
    job_id TEXT NOT NULL,
    state  TEXT NOT NULL,
    at     INTEGER NOT NULL,
    reason TEXT NOT NULL
);
CREATE INDEX job_history_by_job ON job_history (job_id, seq);

CREATE TABLE job_logs (
    seq     INTEGER PRIMARY KEY,
    job_id  TEXT NOT NULL,
    at      INTEGER NOT NULL,
    level   TEXT NOT NULL,
    message TEXT NOT NULL
);
CREATE INDEX job_logs_by_job ON job_logs (job_id, seq);

-- Every state change is recorded by the database itself: a write that sets `state` sets
-- `state_at` and `state_reason` with it, and these triggers append the history row.
CREATE TRIGGER jobs_history_on_insert AFTER INSERT ON jobs BEGIN
    INSERT INTO job_history (job_id, state, at, reason)
    VALUES (NEW.id, NEW.state, NEW.state_at, NEW.state_reason);
END;

CREATE TRIGGER jobs_history_on_update AFTER UPDATE OF state ON jobs BEGIN
    INSERT INTO job_history (job_id, state, at, reason)
    VALUES (NEW.id, NEW.state, NEW.state_at, NEW.state_reason);
END;
