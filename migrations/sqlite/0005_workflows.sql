-- Workflows: stored definitions of ordered stages of steps, and their runs.
-- Times are Unix milliseconds.
CREATE TABLE workflows (
    id         TEXT PRIMARY KEY NOT NULL,  -- chosen by the client: [A-Za-z0-9._-]{1,128}
    definition TEXT NOT NULL,              -- the validated definition, JSON
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);

CREATE TABLE workflow_runs (
    id          TEXT PRIMARY KEY NOT NULL,
    workflow_id TEXT NOT NULL,
    definition  TEXT NOT NULL,             -- snapshot at run creation, plugin defaults filled in
    parameters  TEXT NOT NULL,             -- JSON object
    state       TEXT NOT NULL,             -- 'running' | 'succeeded' | 'failed' | 'cancelled'
    created_at  INTEGER NOT NULL,
    finished_at INTEGER
);

-- The advancer's pass: runs still running.
CREATE INDEX workflow_runs_running ON workflow_runs (created_at) WHERE state = 'running';

CREATE TABLE workflow_steps (
    run_id   TEXT NOT NULL,
    step_id  TEXT NOT NULL,
    stage    INTEGER NOT NULL,             -- the stage's index, from 0
    position INTEGER NOT NULL,             -- the step's index in its stage, from 0
    state    TEXT NOT NULL,                -- pending | running | succeeded | failed | cancelled | skipped
    job_id   TEXT,                         -- its job, once started
    PRIMARY KEY (run_id, step_id)
);
