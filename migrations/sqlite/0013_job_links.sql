-- A job's page names the workflow run step it runs: steps found by their job.
CREATE INDEX workflow_steps_by_job ON workflow_steps (job_id) WHERE job_id IS NOT NULL;
