//! Workflows on SQLite: the `workflows`, `workflow_runs` and `workflow_steps` tables
//! (see the migration) and the advance of a run.
//!
//! Writes run on the writer's connection, each in a transaction of its own: an advance
//! reads the run with its steps' jobs, decides with [`plan`], inserts the jobs of the
//! steps it starts (by [`batch::insert`]) and records their ids in the same
//! transaction, so a step's job is created exactly once.

use super::rows;
use super::{SqliteStore, batch};
use crate::model::{JobId, Millis};
use crate::store::workflows::{
    Advanced, NewWorkflowRun, RunRow, RunState, StepRow, StoredWorkflow, WorkflowRun,
    WorkflowStore, parse_definition, run_of, to_json,
};
use crate::store::{Changes, Error, NewJob, Result};
use crate::workflow::{Definition, StepChange, StepState, plan};
use async_trait::async_trait;
use sqlx::SqliteConnection;

/// One run with its steps, read on `conn`.
async fn fetch_run(conn: &mut SqliteConnection, id: JobId) -> Result<Option<WorkflowRun>> {
    let row: Option<RunRow> = sqlx::query_as(
        "SELECT id, workflow_id, definition, parameters, state, created_at, finished_at \
         FROM workflow_runs WHERE id = ?1",
    )
    .bind(id.to_string())
    .fetch_optional(&mut *conn)
    .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    let steps: Vec<StepRow> = sqlx::query_as(
        "SELECT s.step_id, s.stage, s.position, s.state, s.job_id, j.state AS job_state, \
         j.result AS job_result FROM workflow_steps AS s LEFT JOIN jobs AS j ON j.id = s.job_id \
         WHERE s.run_id = ?1 ORDER BY s.stage, s.position",
    )
    .bind(id.to_string())
    .fetch_all(&mut *conn)
    .await?;
    run_of(row, steps).map(Some)
}

/// Writes a step's state (and job).
async fn set_step(
    conn: &mut SqliteConnection,
    run: JobId,
    step: &str,
    state: StepState,
    job: Option<JobId>,
) -> Result<()> {
    sqlx::query(
        "UPDATE workflow_steps SET state = ?3, job_id = COALESCE(?4, job_id) \
         WHERE run_id = ?1 AND step_id = ?2",
    )
    .bind(run.to_string())
    .bind(step)
    .bind(state.as_str())
    .bind(job.map(|j| j.to_string()))
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Ends a run.
async fn end_run(
    conn: &mut SqliteConnection,
    id: JobId,
    state: RunState,
    now: Millis,
) -> Result<()> {
    sqlx::query("UPDATE workflow_runs SET state = ?2, finished_at = ?3 WHERE id = ?1")
        .bind(id.to_string())
        .bind(state.as_str())
        .bind(now)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// One advance of run `id` on `conn`; see [`WorkflowStore::advance_workflow_run`].
async fn advance(conn: &mut SqliteConnection, id: JobId, now: Millis) -> Result<Advanced> {
    let Some(run) = fetch_run(conn, id).await? else {
        return Ok(Advanced::default());
    };
    if run.state != RunState::Running {
        return Ok(Advanced {
            state: Some(run.state),
            ..Advanced::default()
        });
    }
    for step in &run.steps {
        set_step(conn, id, &step.id, step.state, None).await?;
    }
    let decided = plan(&run);
    let mut jobs: Vec<NewJob> = Vec::new();
    let mut steps = Vec::new();
    for (step, change) in decided.changes {
        let (state, job) = match change {
            StepChange::Start(job) => {
                let job_id = job.id;
                jobs.push(*job);
                (StepState::Pending, Some(job_id))
            }
            StepChange::Skip => (StepState::Skipped, None),
            StepChange::End(state) => (state, None),
        };
        set_step(conn, id, &step, state, job).await?;
        steps.push((step, state, job));
    }
    if !jobs.is_empty() {
        batch::insert(conn, &jobs, now).await?;
    }
    if let Some(end) = decided.end {
        end_run(conn, id, end, now).await?;
    }
    Ok(Advanced {
        enqueued: jobs.iter().map(|job| job.id).collect(),
        to_cancel: decided.to_cancel,
        state: Some(decided.end.unwrap_or(RunState::Running)),
        ended: decided.end.is_some(),
        steps,
        changes: Changes::default(),
    })
}

/// Cancels run `id` on `conn`; see [`WorkflowStore::cancel_workflow_run`].
async fn cancel(conn: &mut SqliteConnection, id: JobId, now: Millis) -> Result<Option<Vec<JobId>>> {
    let Some(run) = fetch_run(conn, id).await? else {
        return Ok(None);
    };
    if run.state != RunState::Running {
        return Err(Error::Conflict(format!(
            "workflow run {id} is already {}",
            run.state
        )));
    }
    let mut jobs = Vec::new();
    for step in &run.steps {
        match step.job_id {
            _ if step.state.is_final() => {}
            None => set_step(conn, id, &step.id, StepState::Cancelled, None).await?,
            Some(job) => jobs.push(job),
        }
    }
    end_run(conn, id, RunState::Cancelled, now).await?;
    Ok(Some(jobs))
}

/// Inserts a run and its steps.
async fn create_run(conn: &mut SqliteConnection, run: &NewWorkflowRun, now: Millis) -> Result<()> {
    sqlx::query(
        "INSERT INTO workflow_runs (id, workflow_id, definition, parameters, state, created_at) \
         VALUES (?1, ?2, ?3, ?4, 'running', ?5)",
    )
    .bind(run.id.to_string())
    .bind(&run.workflow_id)
    .bind(to_json(&run.definition)?)
    .bind(to_json(&run.parameters)?)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    for (s, stage) in run.definition.stages.iter().enumerate() {
        for (i, step) in stage.steps.iter().enumerate() {
            sqlx::query(
                "INSERT INTO workflow_steps (run_id, step_id, stage, position, state) \
                 VALUES (?1, ?2, ?3, ?4, 'pending')",
            )
            .bind(run.id.to_string())
            .bind(&step.id)
            .bind(i64::try_from(s).unwrap_or(i64::MAX))
            .bind(i64::try_from(i).unwrap_or(i64::MAX))
            .execute(&mut *conn)
            .await?;
        }
    }
    Ok(())
}

#[async_trait]
impl WorkflowStore for SqliteStore {
    async fn put_workflow(&self, id: &str, definition: &Definition, now: Millis) -> Result<bool> {
        let id = id.to_owned();
        let text = to_json(definition)?;
        self.exec(move |conn| {
            Box::pin(async move {
                let existed = sqlx::query("SELECT 1 FROM workflows WHERE id = ?1")
                    .bind(&id)
                    .fetch_optional(&mut *conn)
                    .await?
                    .is_some();
                sqlx::query(
                    "INSERT INTO workflows (id, definition, created_at, updated_at) \
                     VALUES (?1, ?2, ?3, ?3) ON CONFLICT (id) DO UPDATE SET \
                     definition = excluded.definition, updated_at = excluded.updated_at",
                )
                .bind(&id)
                .bind(text)
                .bind(now)
                .execute(&mut *conn)
                .await?;
                Ok(!existed)
            })
        })
        .await
    }

    async fn workflow(&self, id: &str) -> Result<Option<StoredWorkflow>> {
        let row: Option<(String, String, i64, i64)> = sqlx::query_as(
            "SELECT id, definition, created_at, updated_at FROM workflows WHERE id = ?1",
        )
        .bind(id)
        .fetch_optional(&self.readers)
        .await?;
        row.map(|(id, definition, created_at, updated_at)| {
            Ok(StoredWorkflow {
                id,
                definition: parse_definition(&definition)?,
                created_at,
                updated_at,
            })
        })
        .transpose()
    }

    async fn delete_workflow(&self, id: &str) -> Result<bool> {
        let id = id.to_owned();
        self.exec(move |conn| {
            Box::pin(async move {
                let done = sqlx::query("DELETE FROM workflows WHERE id = ?1")
                    .bind(id)
                    .execute(&mut *conn)
                    .await?;
                Ok(done.rows_affected() > 0)
            })
        })
        .await
    }

    async fn create_workflow_run(&self, run: NewWorkflowRun, now: Millis) -> Result<()> {
        self.exec(move |conn| Box::pin(async move { create_run(conn, &run, now).await }))
            .await
    }

    async fn workflow_run(&self, id: JobId) -> Result<Option<WorkflowRun>> {
        let mut conn = self.readers.acquire().await?;
        fetch_run(&mut conn, id).await
    }

    async fn running_workflow_runs(&self) -> Result<Vec<JobId>> {
        let ids: Vec<(String,)> = sqlx::query_as(
            "SELECT id FROM workflow_runs WHERE state = 'running' ORDER BY created_at",
        )
        .fetch_all(&self.readers)
        .await?;
        ids.iter().map(|(id,)| rows::parse_id(id)).collect()
    }

    async fn advance_workflow_run(&self, id: JobId, now: Millis) -> Result<Advanced> {
        let advanced = self
            .exec_changing(move |conn| Box::pin(async move { advance(conn, id, now).await }))
            .await?;
        Ok(Advanced {
            changes: advanced.changes,
            ..advanced.value
        })
    }

    async fn cancel_workflow_run(&self, id: JobId, now: Millis) -> Result<Option<Vec<JobId>>> {
        self.exec(move |conn| Box::pin(async move { cancel(conn, id, now).await }))
            .await
    }
}
