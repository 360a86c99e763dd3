-- The job store's schema for PostgreSQL: jobs and their history and logs, queues, recurring
-- jobs, continuations and batches, workflows, agents and tasks, API tokens, the audit log,
-- the stats rollup and alerts. Times are Unix milliseconds; every integer is a BIGINT.
-- JSON is kept as TEXT, byte for byte.

CREATE EXTENSION IF NOT EXISTS pg_trgm;

-- Jobs ----------------------------------------------------------------------------------

CREATE TABLE jobs (
    id                  TEXT PRIMARY KEY NOT NULL,  -- UUID v7: sorts by creation time
    plugin              TEXT NOT NULL,
    args                TEXT NOT NULL,              -- JSON
    queue               TEXT NOT NULL,
    priority            BIGINT NOT NULL,
    state               TEXT NOT NULL,
    attempt             BIGINT NOT NULL DEFAULT 0,
    max_attempts        BIGINT NOT NULL,
    run_at              BIGINT NOT NULL,
    created_at          BIGINT NOT NULL,
    started_at          BIGINT,
    finished_at         BIGINT,
    repository_path     TEXT,
    result              TEXT,                       -- JSON
    error_kind          TEXT,
    error_message       TEXT,
    progress_percent    BIGINT,
    progress_message    TEXT,
    progress_updated_at BIGINT,
    plugin_digest       TEXT,
    fuel_consumed       BIGINT,
    wall_ms             BIGINT,
    memory_peak_bytes   BIGINT,
    lease_id            TEXT,
    lease_owner         TEXT,
    lease_expires_at    BIGINT,
    cancel_requested    BOOLEAN NOT NULL DEFAULT false,
    state_at            BIGINT NOT NULL,            -- when the current state was entered
    state_reason        TEXT NOT NULL,              -- why
    -- Idempotent submission: at most one unfinished job per unique key.
    unique_key          TEXT,
    -- Continuations: a job in `awaiting` runs once its parents have finished.
    await_on            TEXT,                       -- 'success' | 'finish'
    pending_parents     BIGINT NOT NULL DEFAULT 0,
    batch_id            TEXT,
    has_children        BOOLEAN NOT NULL DEFAULT false,  -- some job waits on it
    agent_id            TEXT                        -- the agent the job is bound to
);

-- Claim order: per queue, higher priority first, then earlier run_at, then older.
CREATE INDEX jobs_ready ON jobs (queue, priority DESC, run_at, id) WHERE state = 'enqueued';
CREATE INDEX jobs_due ON jobs (run_at) WHERE state = 'scheduled';
CREATE INDEX jobs_leases ON jobs (lease_expires_at) WHERE state = 'processing';
CREATE INDEX jobs_owner ON jobs (lease_owner) WHERE state = 'processing';
CREATE INDEX jobs_by_state ON jobs (state, id);
CREATE INDEX jobs_by_queue ON jobs (queue, id);
CREATE INDEX jobs_by_plugin ON jobs (plugin, id);
CREATE UNIQUE INDEX jobs_unique_key ON jobs (unique_key)
    WHERE unique_key IS NOT NULL AND state IN ('awaiting', 'scheduled', 'enqueued', 'processing');
-- Running jobs per queue, for concurrency limits.
CREATE INDEX jobs_running ON jobs (queue) WHERE state = 'processing';
CREATE INDEX jobs_by_batch ON jobs (batch_id, state) WHERE batch_id IS NOT NULL;
-- Retention: finished jobs by age.
CREATE INDEX jobs_finished ON jobs (state, finished_at) WHERE finished_at IS NOT NULL;
CREATE INDEX jobs_by_agent ON jobs (agent_id, state) WHERE agent_id IS NOT NULL;

-- Searching jobs by text: a trigram index over each job's id, args and error message, so a
-- search for any substring of three characters or more reads this index, not every job.
CREATE INDEX jobs_search ON jobs
    USING gin ((id || ' ' || args || ' ' || coalesce(error_message, '')) gin_trgm_ops);

-- Every history row says which state the job left (NULL: the job was created), so that the
-- rows a write added are the changes it made: the store reports them (with the effects of
-- the triggers below) and the engine publishes one event for each.
CREATE TABLE job_history (
    seq        BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    job_id     TEXT NOT NULL,
    state      TEXT NOT NULL,
    at         BIGINT NOT NULL,
    reason     TEXT NOT NULL,
    from_state TEXT,                                -- NULL: the job was created
    -- The transaction that wrote the row: several hosts write at once, so a write reads
    -- back its own changes as the rows of its transaction.
    tx         BIGINT NOT NULL DEFAULT txid_current()
);
CREATE INDEX job_history_by_job ON job_history (job_id, seq);
-- A write reads back its own changes: the rows of its transaction.
CREATE INDEX job_history_by_tx ON job_history (tx);
-- The runs that ended, by time: a failure rate counts those of its window.
CREATE INDEX job_history_runs_ended ON job_history (at) WHERE from_state = 'processing';

-- Each log line records the attempt that wrote it (lines written while the job waited
-- belong to its last attempt, 0 before its first), so a job's log is read and counted
-- attempt by attempt.
CREATE TABLE job_logs (
    seq     BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    job_id  TEXT NOT NULL,
    at      BIGINT NOT NULL,
    level   TEXT NOT NULL,
    message TEXT NOT NULL,
    attempt BIGINT NOT NULL DEFAULT 0
);
-- A job's log in reading order (by attempt, then as written), with the counts per attempt
-- in the index itself.
CREATE INDEX job_logs_by_attempt ON job_logs (job_id, attempt, seq);

-- Queues ----------------------------------------------------------------------------------

-- Queue controls: paused queues accept jobs but run none; `concurrency` caps the jobs
-- of the queue running at once across all hosts (NULL: no cap).
CREATE TABLE queues (
    name        TEXT PRIMARY KEY NOT NULL,
    paused      BOOLEAN NOT NULL DEFAULT false,
    concurrency BIGINT
);

-- Recurring jobs ----------------------------------------------------------------------------

-- Recurring jobs: definitions that enqueue a job at every occurrence of a cron schedule.
CREATE TABLE recurring_jobs (
    id           TEXT PRIMARY KEY NOT NULL,  -- chosen by the client: [A-Za-z0-9._-]{1,128}
    cron         TEXT NOT NULL,
    timezone     TEXT NOT NULL,              -- IANA zone the cron fields are read in
    plugin       TEXT NOT NULL,
    args         TEXT NOT NULL,              -- JSON object
    queue        TEXT NOT NULL,
    priority     BIGINT NOT NULL,
    max_attempts BIGINT NOT NULL,
    misfire      TEXT NOT NULL,              -- 'run_once' | 'skip': what a missed occurrence gets
    paused       BOOLEAN NOT NULL DEFAULT false,
    next_run_at  BIGINT,                     -- the pending occurrence; NULL while paused or never
    last_run_at  BIGINT,                     -- the occurrence (or trigger) of the last job
    last_job_id  TEXT,
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL
);

-- The firing pass: unpaused definitions whose occurrence is due.
CREATE INDEX recurring_jobs_due ON recurring_jobs (next_run_at) WHERE NOT paused;

-- Continuations and batches ---------------------------------------------------------------

CREATE TABLE job_parents (
    job_id    TEXT NOT NULL,
    parent_id TEXT NOT NULL,
    done      BOOLEAN NOT NULL DEFAULT false,   -- the parent has finished (counted once)
    PRIMARY KEY (job_id, parent_id)
);
CREATE INDEX job_parents_by_parent ON job_parents (parent_id);

-- Batches: jobs created together, with optional callbacks that are continuations of all.
CREATE TABLE batches (
    id           TEXT PRIMARY KEY NOT NULL,
    description  TEXT NOT NULL DEFAULT '',
    created_at   BIGINT NOT NULL,
    size         BIGINT NOT NULL,
    on_success   TEXT,                      -- callback job ids
    on_complete  TEXT,
    cancelled_at BIGINT
);

-- Workflows -------------------------------------------------------------------------------

-- Workflows: stored definitions of ordered stages of steps, and their runs.
CREATE TABLE workflows (
    id         TEXT PRIMARY KEY NOT NULL,  -- chosen by the client: [A-Za-z0-9._-]{1,128}
    definition TEXT NOT NULL,              -- the validated definition, JSON
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE workflow_runs (
    id          TEXT PRIMARY KEY NOT NULL,
    workflow_id TEXT NOT NULL,
    definition  TEXT NOT NULL,             -- snapshot at run creation, plugin defaults filled in
    parameters  TEXT NOT NULL,             -- JSON object
    state       TEXT NOT NULL,             -- 'running' | 'succeeded' | 'failed' | 'cancelled'
    created_at  BIGINT NOT NULL,
    finished_at BIGINT
);

-- The advancer's pass: runs still running.
CREATE INDEX workflow_runs_running ON workflow_runs (created_at) WHERE state = 'running';

CREATE TABLE workflow_steps (
    run_id   TEXT NOT NULL,
    step_id  TEXT NOT NULL,
    stage    BIGINT NOT NULL,              -- the stage's index, from 0
    position BIGINT NOT NULL,              -- the step's index in its stage, from 0
    state    TEXT NOT NULL,                -- pending | running | succeeded | failed | cancelled | skipped
    job_id   TEXT,                         -- its job, once started
    PRIMARY KEY (run_id, step_id)
);
-- A job's page names the workflow run step it runs: steps found by their job.
CREATE INDEX workflow_steps_by_job ON workflow_steps (job_id) WHERE job_id IS NOT NULL;

-- Agents and tasks ------------------------------------------------------------------------

-- Agents (the workers that act on repositories), their locks, and tasks (commands for
-- an agent, each run by a job bound to the agent).
CREATE TABLE agents (
    id                      TEXT PRIMARY KEY NOT NULL,
    name                    TEXT NOT NULL,
    repository_path         TEXT NOT NULL,
    command                 TEXT NOT NULL,              -- JSON array: the argument template
    env                     TEXT NOT NULL,              -- JSON object
    health_command          TEXT,                       -- JSON array
    health_interval_seconds BIGINT NOT NULL,
    max_concurrency         BIGINT NOT NULL,
    labels                  TEXT NOT NULL,              -- JSON object
    health                  TEXT NOT NULL DEFAULT 'healthy',   -- healthy | offline | error
    health_reason           TEXT,
    health_misses           BIGINT NOT NULL DEFAULT 0,
    last_health_at          BIGINT,
    last_heartbeat_at       BIGINT,
    created_at              BIGINT NOT NULL,
    updated_at              BIGINT NOT NULL
);
CREATE INDEX agents_by_repository ON agents (repository_path);

-- A job holding an agent: at most `max_concurrency` unexpired rows per agent.
CREATE TABLE agent_locks (
    job_id      TEXT PRIMARY KEY NOT NULL,
    agent_id    TEXT NOT NULL,
    owner       TEXT NOT NULL,
    acquired_at BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL
);
CREATE INDEX agent_locks_by_agent ON agent_locks (agent_id, expires_at);

CREATE TABLE tasks (
    id              TEXT PRIMARY KEY NOT NULL,
    job_id          TEXT NOT NULL UNIQUE,
    command         TEXT NOT NULL,
    repository_path TEXT NOT NULL,
    priority        TEXT NOT NULL,                      -- low | normal | high | critical
    created_at      BIGINT NOT NULL,
    exit_code       BIGINT,                             -- of the last command run
    stdout          TEXT,
    stderr          TEXT,
    duration_ms     BIGINT,
    exec_outcome    TEXT                                -- exited | timeout | spawn_failure
);

-- API tokens, audit ---------------------------------------------------------------------

-- API tokens: only a token's SHA-256 hash is kept; the token is shown once, when made.
CREATE TABLE api_tokens (
    name       TEXT PRIMARY KEY NOT NULL,
    role       TEXT NOT NULL,                 -- read | admin
    hash       BYTEA NOT NULL UNIQUE,         -- 32 bytes
    created_at BIGINT NOT NULL,
    revoked_at BIGINT                         -- set when revoked; the row stays for the record
);

-- The audit log: who changed what that runs commands on the host (agents) or lets in
-- (tokens), and when.
CREATE TABLE audit_log (
    seq    BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at     BIGINT NOT NULL,
    actor  TEXT NOT NULL,      -- the token's name, or `no-auth`
    action TEXT NOT NULL,      -- agent.created, agent.changed, agent.deleted, token.created…
    target TEXT NOT NULL,      -- the agent's id, the token's name
    detail TEXT NOT NULL       -- JSON: what was set
);

-- Stats -----------------------------------------------------------------------------------

-- The rollup behind the analytics: per bucket (a minute, an hour and a day) and key
-- (plugin, queue, agent), the runs that ended (succeeded, failed) with their run times,
-- and the runs that started with their pickup latency. Written with the group commit
-- that records the runs; kept apart from the jobs, so it outlives their cleanup.
CREATE TABLE stats_rollup (
    resolution TEXT NOT NULL,          -- minute, hour, day
    bucket     BIGINT NOT NULL,        -- the bucket's start, ms since the epoch
    plugin     TEXT NOT NULL,
    queue      TEXT NOT NULL,
    agent      TEXT NOT NULL,          -- '' for runs on no agent
    succeeded  BIGINT NOT NULL,
    failed     BIGINT NOT NULL,
    run_ms     TEXT NOT NULL,          -- JSON histogram: bin → count (see model::stats)
    pickup_ms  TEXT NOT NULL,          -- JSON histogram
    PRIMARY KEY (resolution, bucket, plugin, queue, agent)
);

-- Alerts ----------------------------------------------------------------------------------

-- Alert rules and their incidents. A rule's condition is JSON (`{"kind": ..., ...}`); its
-- webhook's secret is kept to sign with, and never shown.
CREATE TABLE alert_rules (
    id             TEXT PRIMARY KEY NOT NULL,
    condition      TEXT NOT NULL,
    webhook_url    TEXT,
    webhook_secret TEXT,
    enabled        BOOLEAN NOT NULL DEFAULT false,
    created_at     BIGINT NOT NULL,
    updated_at     BIGINT NOT NULL
);

-- One stretch of time a rule's condition held for one subject (a job, an agent, a queue,
-- a plugin). Incidents stay when their rule is deleted.
CREATE TABLE alert_incidents (
    id          TEXT PRIMARY KEY NOT NULL,  -- UUID v7: sorts by opening time
    rule_id     TEXT NOT NULL,
    subject     TEXT NOT NULL,
    summary     TEXT NOT NULL,
    opened_at   BIGINT NOT NULL,
    resolved_at BIGINT                      -- NULL while open
);
-- At most one open incident per rule and subject.
CREATE UNIQUE INDEX alert_incidents_open ON alert_incidents (rule_id, subject)
    WHERE resolved_at IS NULL;

-- Triggers --------------------------------------------------------------------------------
--
-- Triggers on the same event fire in the order of their names: the history triggers are
-- named `jobs_0_…` so that a job's own history row comes before the rows of the changes
-- it causes (its children's, through jobs_continue). A row trigger fires at the end of the
-- statement that changed the row; statements run by a trigger fire triggers in turn.

-- Every state change is recorded by the database itself: a write that sets `state` sets
-- `state_at` and `state_reason` with it, and these triggers append the history row.
CREATE FUNCTION jobs_history_on_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO job_history (job_id, state, at, reason)
    VALUES (NEW.id, NEW.state, NEW.state_at, NEW.state_reason);
    RETURN NULL;
END;
$$;
CREATE TRIGGER jobs_0_history_on_insert AFTER INSERT ON jobs
    FOR EACH ROW EXECUTE FUNCTION jobs_history_on_insert();

CREATE FUNCTION jobs_history_on_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO job_history (job_id, state, at, reason, from_state)
    VALUES (NEW.id, NEW.state, NEW.state_at, NEW.state_reason, OLD.state);
    RETURN NULL;
END;
$$;
CREATE TRIGGER jobs_0_history_on_update AFTER UPDATE OF state ON jobs
    FOR EACH ROW EXECUTE FUNCTION jobs_history_on_update();

-- When a parent finishes, in the same transaction: count it once for each waiting
-- child; with `on: success` a parent that did not succeed cancels the child; a child
-- whose last parent finished is enqueued. Changes to a child fire this trigger in turn,
-- so a cancellation cascades down a chain.
CREATE FUNCTION jobs_continue() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE jobs SET pending_parents = pending_parents - 1
    WHERE state = 'awaiting'
      AND id IN (SELECT job_id FROM job_parents WHERE parent_id = NEW.id AND NOT done);
    UPDATE job_parents SET done = true WHERE parent_id = NEW.id AND NOT done;
    UPDATE jobs SET state = 'cancelled', state_at = NEW.state_at, finished_at = NEW.state_at,
        state_reason = 'parent ' || NEW.id || ' ended ' || NEW.state,
        error_kind = 'cancelled', error_message = 'parent ' || NEW.id || ' ended ' || NEW.state
    WHERE NEW.state <> 'succeeded' AND state = 'awaiting' AND await_on = 'success'
      AND id IN (SELECT job_id FROM job_parents WHERE parent_id = NEW.id);
    UPDATE jobs SET state = 'enqueued', state_at = NEW.state_at, state_reason = 'parents finished',
        run_at = GREATEST(run_at, NEW.state_at)
    WHERE state = 'awaiting' AND pending_parents <= 0
      AND id IN (SELECT job_id FROM job_parents WHERE parent_id = NEW.id);
    RETURN NULL;
END;
$$;
CREATE TRIGGER jobs_continue AFTER UPDATE OF state ON jobs
    FOR EACH ROW
    WHEN (NEW.has_children AND NEW.state IN ('succeeded', 'failed', 'cancelled'))
    EXECUTE FUNCTION jobs_continue();

-- A job that stops running lets go of its agent, in the same transaction, whatever
-- ended it: completion, failure, cancellation, an expired lease or a release.
CREATE FUNCTION jobs_release_agent() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM agent_locks WHERE job_id = NEW.id;
    RETURN NULL;
END;
$$;
CREATE TRIGGER jobs_release_agent AFTER UPDATE OF state ON jobs
    FOR EACH ROW
    WHEN (OLD.state = 'processing' AND NEW.state <> 'processing' AND NEW.agent_id IS NOT NULL)
    EXECUTE FUNCTION jobs_release_agent();

-- A task goes with its job (retention, DELETE /api/jobs/{id}).
CREATE FUNCTION jobs_delete_task() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM tasks WHERE job_id = OLD.id;
    RETURN NULL;
END;
$$;
CREATE TRIGGER jobs_delete_task AFTER DELETE ON jobs
    FOR EACH ROW
    WHEN (OLD.agent_id IS NOT NULL)
    EXECUTE FUNCTION jobs_delete_task();

-- A running job's cancellation, requested through any host, is told to every host (NOTIFY
-- at commit), so the host running it stops it at once.
CREATE FUNCTION jobs_cancel_requested() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('orchestra_cancel', NEW.id);
    RETURN NULL;
END;
$$;
CREATE TRIGGER jobs_cancel_requested AFTER UPDATE OF cancel_requested ON jobs
    FOR EACH ROW
    WHEN (NEW.cancel_requested AND NOT OLD.cancel_requested AND NEW.state = 'processing')
    EXECUTE FUNCTION jobs_cancel_requested();

-- The host that runs the upkeep every host would otherwise repeat (promotion, recurring
-- firings, lease rescue, workflow advancing, health checks, alerts): the one whose lease on
-- this single row has not expired. Another host takes the row once it has.
CREATE TABLE leader (
    id         BOOLEAN PRIMARY KEY DEFAULT true CHECK (id),
    owner      TEXT NOT NULL,
    expires_at BIGINT NOT NULL
);
