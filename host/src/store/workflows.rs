//! Workflows as the store keeps them.
//!
//! A stored workflow is a validated [`Definition`]. A run ([`WorkflowRun`]) snapshots
//! the definition and its parameters, and keeps one row per step. One advance of a run
//! ([`WorkflowStore::advance_workflow_run`]) reads the run with its steps' jobs, decides
//! with [`plan`](crate::workflow::plan()), the rule every backend follows, and writes the
//! steps it starts (enqueueing their jobs), skips or cancels, and the run's end, all in
//! one transaction: a step's job is created exactly once, even across restarts.

use crate::model::{JobId, Millis};
use crate::store::{Changes, Result};
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
