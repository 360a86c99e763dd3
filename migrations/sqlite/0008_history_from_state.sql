-- Every history row says which state the job left, so that the rows a write added are
-- the changes it made: the store reports them (with the effects of the triggers above)
-- and the engine publishes one event for each.
ALTER TABLE job_history ADD COLUMN from_state TEXT;   -- NULL: the job was created

DROP TRIGGER jobs_history_on_update;
CREATE TRIGGER jobs_history_on_update AFTER UPDATE OF state ON jobs BEGIN
    INSERT INTO job_history (job_id, state, at, reason, from_state)
    VALUES (NEW.id, NEW.state, NEW.state_at, NEW.state_reason, OLD.state);
END;
