//! Workflows as the store keeps them.
//!
//! A stored workflow is a validated [`Definition`]. A run ([`WorkflowRun`]) snapshots
//! the definition and its parameters, and keeps one row per step. One advance of a run
//! ([`WorkflowStore::advance_workflow_run`]) reads the run with its steps' jobs, decides
//! with [`plan`](crate::workflow::plan()), the rule every backend follows, and writes the
//! steps it starts (enqueueing their jobs), skips or cancels, and the run's end, all in
//! one transaction: a step's job is created exactly once, even across restarts.

use crate::model::{JobId, Millis};
use crate::store::rows::{corrupt, parse_id, parse_state};
use crate::store::{Changes, Error, Result};
use crate::workflow::{Definition, StepState};
use async_trait::async_trait;
use serde_json::{Map, Value};

/// The run types of this trait's API, which [`crate::workflow`] defines.
pub use crate::workflow::{RunState, RunStep, WorkflowRun};

/// Parses a step state as stored.
pub fn parse_step_state(s: &str) -> Option<StepState> {
    StepState::ALL.into_iter().find(|state| state.as_str() == s)
}

/// A stored workflow.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredWorkflow {
    /// Its id.
    pub id: String,
    /// Its definition.
    pub definition: Definition,
    /// When it was first stored.
    pub created_at: Millis,
    /// When it was last stored.
    pub updated_at: Millis,
}

/// A run to create.
#[derive(Debug, Clone)]
pub struct NewWorkflowRun {
    /// The run's id.
    pub id: JobId,
    /// The workflow it runs.
    pub workflow_id: String,
    /// The definition, with every step's queue and max_attempts set.
    pub definition: Definition,
    /// The parameters its templates use.
    pub parameters: Map<String, Value>,
}

/// What one advance of a run did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Advanced {
    /// Jobs enqueued for started steps.
    pub enqueued: Vec<JobId>,
    /// Unfinished jobs of a run that just failed: the caller cancels them.
    pub to_cancel: Vec<JobId>,
    /// The run's state after the advance (`None` if the run does not exist).
    pub state: Option<RunState>,
    /// Whether this advance ended the run.
    pub ended: bool,
    /// Steps that moved: started (with their job), skipped or ended.
    pub steps: Vec<(String, StepState, Option<JobId>)>,
    /// What the advance changed.
    pub changes: Changes,
}

/// Workflow storage; every [`crate::store::JobStore`] is one.
#[async_trait]
pub trait WorkflowStore {
    /// Stores workflow `id`, or replaces its definition; returns whether it is new.
    async fn put_workflow(&self, id: &str, definition: &Definition, now: Millis) -> Result<bool>;

    /// One stored workflow.
    async fn workflow(&self, id: &str) -> Result<Option<StoredWorkflow>>;

    /// Deletes a workflow (its runs stay); returns whether it existed.
    async fn delete_workflow(&self, id: &str) -> Result<bool>;

    /// Stores a new `running` run with every step `pending`.
    async fn create_workflow_run(&self, run: NewWorkflowRun, now: Millis) -> Result<()>;

    /// One run, with its steps' states taken from their jobs.
    async fn workflow_run(&self, id: JobId) -> Result<Option<WorkflowRun>>;

    /// The ids of the runs still `running`, oldest first.
    async fn running_workflow_runs(&self) -> Result<Vec<JobId>>;

    /// Advances a running run by [`plan`](crate::workflow::plan()), in one transaction.
    async fn advance_workflow_run(&self, id: JobId, now: Millis) -> Result<Advanced>;

    /// Cancels a running run: it and its unstarted steps become `cancelled`. Returns the
    /// jobs of its unfinished steps, for the caller to cancel; `None` for an unknown run.
    ///
    /// # Errors
    /// [`crate::store::Error::Conflict`] when the run already ended.
    async fn cancel_workflow_run(&self, id: JobId, now: Millis) -> Result<Option<Vec<JobId>>>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_states_round_trip() {
        for state in [
            RunState::Running,
            RunState::Succeeded,
            RunState::Failed,
            RunState::Cancelled,
        ] {
            assert_eq!(state.as_str().parse::<RunState>(), Ok(state));
        }
        assert_eq!(parse_step_state("skipped"), Some(StepState::Skipped));
        assert_eq!(parse_step_state("nope"), None);
    }
}

/// A stored definition, parsed.
pub(crate) fn parse_definition(text: &str) -> Result<Definition> {
    serde_json::from_str(text).map_err(|e| corrupt("workflow definition", e))
}

/// `value` as stored JSON text.
pub(crate) fn to_json(value: &impl serde::Serialize) -> Result<String> {
    serde_json::to_string(value).map_err(|e| Error::WriteFailed(e.to_string()))
}

/// A `workflow_runs` row.
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct RunRow {
    id: String,
    workflow_id: String,
    definition: String,
    parameters: String,
    state: String,
    created_at: i64,
    finished_at: Option<i64>,
}

/// A `workflow_steps` row with its job's state and result.
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct StepRow {
    step_id: String,
    stage: i64,
    position: i64,
    state: String,
    job_id: Option<String>,
    job_state: Option<String>,
    job_result: Option<String>,
}

impl TryFrom<StepRow> for RunStep {
    type Error = Error;

    fn try_from(row: StepRow) -> Result<RunStep> {
        let stored =
            parse_step_state(&row.state).ok_or_else(|| corrupt("step state", &row.state))?;
        let state = match row.job_state.as_deref() {
            Some(job_state) if !stored.is_final() => StepState::from(parse_state(job_state)?),
            _ => stored,
        };
        let result = row
            .job_result
            .as_deref()
            .map(|text| serde_json::from_str(text).map_err(|e| corrupt("job result", e)))
            .transpose()?;
        Ok(RunStep {
            id: row.step_id,
            stage: usize::try_from(row.stage).map_err(|e| corrupt("stage", e))?,
            position: usize::try_from(row.position).map_err(|e| corrupt("position", e))?,
            state,
            job_id: row.job_id.as_deref().map(parse_id).transpose()?,
            result,
        })
    }
}

/// The run of `row` with its `steps`.
pub(crate) fn run_of(row: RunRow, steps: Vec<StepRow>) -> Result<WorkflowRun> {
    let parameters: Map<String, Value> =
        serde_json::from_str(&row.parameters).map_err(|e| corrupt("run parameters", e))?;
    Ok(WorkflowRun {
        id: parse_id(&row.id)?,
        workflow_id: row.workflow_id,
        definition: parse_definition(&row.definition)?,
        parameters,
        state: row.state.parse().map_err(|e| corrupt("run state", e))?,
        created_at: row.created_at,
        finished_at: row.finished_at,
        steps: steps
            .into_iter()
            .map(RunStep::try_from)
            .collect::<Result<_>>()?,
    })
}
