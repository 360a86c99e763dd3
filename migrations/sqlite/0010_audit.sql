-- The audit log: who changed what that runs commands on the host (agents) or lets in
-- (tokens), and when.
CREATE TABLE audit_log (
    seq    INTEGER PRIMARY KEY AUTOINCREMENT,
    at     INTEGER NOT NULL,
    actor  TEXT NOT NULL,      -- the token's name, or `no-auth`
    action TEXT NOT NULL,      -- agent.created, agent.changed, agent.deleted, token.created…
    target TEXT NOT NULL,      -- the agent's id, the token's name
    detail TEXT NOT NULL       -- JSON: what was set
);
