-- Each log line records the attempt that wrote it (lines written while the job waited
-- belong to its last attempt, 0 before its first), so a job's log is read and counted
-- attempt by attempt. Lines written before this migration are put under the job's
-- attempt at the time of the migration.
ALTER TABLE job_logs ADD COLUMN attempt INTEGER NOT NULL DEFAULT 0;
UPDATE job_logs
SET attempt = coalesce((SELECT attempt FROM jobs WHERE jobs.id = job_logs.job_id), 0);

-- A job's log in reading order (by attempt, then as written), with the counts per attempt
-- in the index itself. It replaces the index by (job_id, seq): still one index per line.
DROP INDEX job_logs_by_job;
CREATE INDEX job_logs_by_attempt ON job_logs (job_id, attempt, seq);
