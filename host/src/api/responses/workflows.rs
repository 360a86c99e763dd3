//! Answers about workflows and their runs.

use crate::model::{JobId, rfc3339};
use crate::store::workflows::{StoredWorkflow, WorkflowRun};
use crate::workflow::RunState;
use crate::workflow::{Definition, Mode, StepState};
use serde::Serialize;
use serde_json::{Map, Value};
use utoipa::ToSchema;

/// A stored workflow: `GET /api/workflows/{id}`, and `PUT /api/workflows/{id}` (201 when
/// new, 200 when replaced; with a `warning`, see [`super::Warned`]).
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct WorkflowView {
    /// Its id.
    pub(crate) id: String,
    /// Its definition, as validated.
    pub(crate) definition: Definition,
    /// When it was first stored (RFC 3339).
    #[schema(format = DateTime)]
    pub(crate) created_at: String,
    /// When it was last replaced.
    #[schema(format = DateTime)]
    pub(crate) updated_at: String,
}

/// `POST /api/workflows/{id}/runs` (201).
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct RunStarted {
    /// The run.
    #[schema(value_type = Uuid)]
    pub(crate) id: JobId,
    /// Its workflow.
    pub(crate) workflow_id: String,
    /// Its state after its first steps started; `null` if it could not be read back.
    pub(crate) state: Option<RunState>,
}

/// A run with every step: `GET /api/workflow-runs/{id}` and
/// `POST /api/workflow-runs/{id}/cancel`.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct RunView {
    /// The run.
    #[schema(value_type = Uuid)]
    pub(crate) id: JobId,
    /// Its workflow.
    pub(crate) workflow_id: String,
    /// Where it is.
    pub(crate) state: RunState,
    /// The parameters it was started with.
    pub(crate) parameters: Map<String, Value>,
    /// When it started (RFC 3339).
    #[schema(format = DateTime)]
    pub(crate) created_at: String,
    /// When it ended; `null` while it runs.
    #[schema(format = DateTime)]
    pub(crate) finished_at: Option<String>,
    /// Its steps, in the definition's order.
    pub(crate) steps: Vec<RunStepView>,
}

/// One step of a [`RunView`].
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct RunStepView {
    /// The step's id.
    pub(crate) id: String,
    /// Its stage's name; `null` if the definition has no such stage.
    pub(crate) stage: Option<String>,
    /// Its stage's mode; `null` likewise.
    pub(crate) mode: Option<Mode>,
    /// Where it is.
    pub(crate) state: StepState,
    /// Its job, once started; `null` before.
    #[schema(value_type = Option<Uuid>)]
    pub(crate) job_id: Option<JobId>,
}

impl From<StoredWorkflow> for WorkflowView {
    fn from(workflow: StoredWorkflow) -> WorkflowView {
        WorkflowView {
            id: workflow.id,
            definition: workflow.definition,
            created_at: rfc3339::format(workflow.created_at),
            updated_at: rfc3339::format(workflow.updated_at),
        }
    }
}

impl From<WorkflowRun> for RunView {
    fn from(run: WorkflowRun) -> RunView {
        let stages = &run.definition.stages;
        let steps = run
            .steps
            .into_iter()
            .map(|step| {
                let stage = stages.get(step.stage);
                RunStepView {
                    id: step.id,
                    stage: stage.map(|s| s.name.clone()),
                    mode: stage.map(|s| s.mode),
                    state: step.state,
                    job_id: step.job_id,
                }
            })
            .collect();
        RunView {
            id: run.id,
            workflow_id: run.workflow_id,
            state: run.state,
            parameters: run.parameters,
            created_at: rfc3339::format(run.created_at),
            finished_at: run.finished_at.map(rfc3339::format),
            steps,
        }
    }
}
