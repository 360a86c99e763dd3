-- The rollup behind the analytics: per bucket (a minute, an hour and a day) and key
-- (plugin, queue, agent), the runs that ended (succeeded, failed) with their run times,
-- and the runs that started with their pickup latency. Written with the group commit
-- that records the runs; kept apart from the jobs, so it outlives their cleanup.
CREATE TABLE stats_rollup (
    resolution TEXT NOT NULL,          -- minute, hour, day
    bucket     INTEGER NOT NULL,       -- the bucket's start, ms since the epoch
    plugin     TEXT NOT NULL,
    queue      TEXT NOT NULL,
    agent      TEXT NOT NULL,          -- '' for runs on no agent
    succeeded  INTEGER NOT NULL,
    failed     INTEGER NOT NULL,
    run_ms     TEXT NOT NULL,          -- JSON histogram: bin → count (see model::stats)
    pickup_ms  TEXT NOT NULL,          -- JSON histogram
    PRIMARY KEY (resolution, bucket, plugin, queue, agent)
) WITHOUT ROWID;
