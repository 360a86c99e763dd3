-- Agents (the workers that act on repositories), their locks, and tasks (commands for
-- an agent, each run by a job bound to the agent). Times are Unix milliseconds.
CREATE TABLE agents (
    id                      TEXT PRIMARY KEY NOT NULL,
    name                    TEXT NOT NULL,
    repository_path         TEXT NOT NULL,
    command                 TEXT NOT NULL,              -- JSON array: the argument template
    env                     TEXT NOT NULL,              -- JSON object
    health_command          TEXT,                       -- JSON array
    health_interval_seconds INTEGER NOT NULL,
    max_concurrency         INTEGER NOT NULL,
    labels                  TEXT NOT NULL,              -- JSON object
    health                  TEXT NOT NULL DEFAULT 'healthy',   -- healthy | offline | error
    health_reason           TEXT,
    health_misses           INTEGER NOT NULL DEFAULT 0,
    last_health_at          INTEGER,
    last_heartbeat_at       INTEGER,
    created_at              INTEGER NOT NULL,
    updated_at              INTEGER NOT NULL
);
CREATE INDEX agents_by_repository ON agents (repository_path);

-- A job holding an agent: at most `max_concurrency` unexpired rows per agent.
CREATE TABLE agent_locks (
    job_id      TEXT PRIMARY KEY NOT NULL,
    agent_id    TEXT NOT NULL,
    owner       TEXT NOT NULL,
    acquired_at INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX agent_locks_by_agent ON agent_locks (agent_id, expires_at);

ALTER TABLE jobs ADD COLUMN agent_id TEXT;
CREATE INDEX jobs_by_agent ON jobs (agent_id, state) WHERE agent_id IS NOT NULL;

-- A job that stops running lets go of its agent, in the same transaction, whatever
-- ended it: completion, failure, cancellation, an expired lease or a release.
CREATE TRIGGER jobs_release_agent AFTER UPDATE OF state ON jobs
WHEN OLD.state = 'processing' AND NEW.state <> 'processing' AND NEW.agent_id IS NOT NULL
BEGIN
    DELETE FROM agent_locks WHERE job_id = NEW.id;
END;

CREATE TABLE tasks (
    id              TEXT PRIMARY KEY NOT NULL,
    job_id          TEXT NOT NULL UNIQUE,
    command         TEXT NOT NULL,
    repository_path TEXT NOT NULL,
    priority        TEXT NOT NULL,                      -- low | normal | high | critical
    created_at      INTEGER NOT NULL,
    exit_code       INTEGER,                            -- of the last command run
    stdout          TEXT,
    stderr          TEXT,
    duration_ms     INTEGER,
    exec_outcome    TEXT                                -- exited | timeout | spawn_failure
);

-- A task goes with its job (retention, DELETE /api/jobs/{id}).
CREATE TRIGGER jobs_delete_task AFTER DELETE ON jobs
WHEN OLD.agent_id IS NOT NULL
BEGIN
    DELETE FROM tasks WHERE job_id = OLD.id;
END;
