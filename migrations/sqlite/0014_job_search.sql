-- Searching jobs by text: a trigram index over each job's id, args and error message, so a
-- search for any substring of three characters or more reads the index, not every job.
--
-- The index holds no copy of the text (contentless) and is keyed by the job's rowid. Writes
-- to jobs only note the job in job_search_pending; the writer indexes what is noted while it
-- has nothing else to do. A search takes the index's matches plus every job still noted, and
-- checks each candidate against its current text, so it finds what a scan would.
CREATE VIRTUAL TABLE job_search USING fts5 (
    id, args, error,
    content = '', contentless_delete = 1, tokenize = 'trigram'
);

-- Jobs whose index entry is missing or out of date.
CREATE TABLE job_search_pending (job_rowid INTEGER PRIMARY KEY);

CREATE TRIGGER jobs_search_on_insert AFTER INSERT ON jobs BEGIN
    INSERT OR IGNORE INTO job_search_pending (job_rowid) VALUES (NEW.rowid);
END;

CREATE TRIGGER jobs_search_on_update AFTER UPDATE OF args, error_message ON jobs
WHEN OLD.args IS NOT NEW.args OR OLD.error_message IS NOT NEW.error_message BEGIN
    INSERT OR IGNORE INTO job_search_pending (job_rowid) VALUES (NEW.rowid);
END;

-- At once, not later: a new job may take a deleted job's rowid.
CREATE TRIGGER jobs_search_on_delete AFTER DELETE ON jobs BEGIN
    DELETE FROM job_search WHERE rowid = OLD.rowid;
    DELETE FROM job_search_pending WHERE job_rowid = OLD.rowid;
END;

-- Jobs stored before this migration are indexed in the background like new ones.
INSERT INTO job_search_pending (job_rowid) SELECT rowid FROM jobs;
