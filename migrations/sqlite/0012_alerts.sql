-- Alert rules and their incidents. A rule's condition is JSON (`{"kind": ..., ...}`); its
-- webhook's secret is kept to sign with, and never shown.
CREATE TABLE alert_rules (
    id             TEXT PRIMARY KEY NOT NULL,
    condition      TEXT NOT NULL,
    webhook_url    TEXT,
    webhook_secret TEXT,
    enabled        INTEGER NOT NULL,
    created_at     INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL
);

-- One stretch of time a rule's condition held for one subject (a job, an agent, a queue,
-- a plugin). Incidents stay when their rule is deleted.
CREATE TABLE alert_incidents (
    id          TEXT PRIMARY KEY NOT NULL,  -- UUID v7: sorts by opening time
    rule_id     TEXT NOT NULL,
    subject     TEXT NOT NULL,
    summary     TEXT NOT NULL,
    opened_at   INTEGER NOT NULL,
    resolved_at INTEGER                     -- NULL while open
);
-- At most one open incident per rule and subject.
CREATE UNIQUE INDEX alert_incidents_open ON alert_incidents (rule_id, subject)
    WHERE resolved_at IS NULL;

-- The runs that ended, by time: a failure rate counts those of its window.
CREATE INDEX job_history_runs_ended ON job_history (at) WHERE from_state = 'processing';
