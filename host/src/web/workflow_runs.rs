//! `/workflow-runs/{id}`: one workflow run: its workflow, state, parameters and times,
//! and its stages as columns, each with its steps' states and links to their jobs; for
//! admins, while it runs, cancel. Live on workflow and job events.

use super::jobs::pretty;
use super::{Layout, is_admin, not_found, path_id, render};
use crate::api::{ApiError, AppState, Caller, SessionCsrf};
use crate::model::{JobId, rfc3339};
use crate::workflow::{RunState, WorkflowRun};
use askama::Template;
use axum::Extension;
use axum::extract::{Path, State};
use axum::response::Response;
use serde_json::Value;

#[derive(Template)]
#[template(path = "workflow_run.html")]
struct RunPage {
    layout: Layout,
    /// Whether the caller may cancel the run (and sees the button that does).
    admin: bool,
    run: RunHead,
    /// Its stages, in order.
    stages: Vec<StageColumn>,
}

/// What the page shows of the run itself.
struct RunHead {
    id: JobId,
    workflow_id: String,
    state: &'static str,
    /// Whether it still runs (and so may be cancelled).
    running: bool,
    /// Its parameters, as indented JSON.
    parameters: String,
    created: String,
    finished: Option<String>,
}

/// One stage: a column of its steps.
struct StageColumn {
    name: String,
    mode: &'static str,
    steps: Vec<StepCell>,
}

/// One step: its id, state, and job once started.
struct StepCell {
    id: String,
    state: &'static str,
    job: Option<JobId>,
}

/// The stages of `run`, each with its steps in order.
fn columns(run: &WorkflowRun) -> Vec<StageColumn> {
    let stages = run.definition.stages.iter().enumerate();
    stages
        .map(|(index, stage)| StageColumn {
            name: stage.name.clone(),
            mode: stage.mode.as_str(),
            steps: (run.steps.iter())
                .filter(|step| step.stage == index)
                .map(|step| StepCell {
                    id: step.id.clone(),
                    state: step.state.as_str(),
                    job: step.job_id,
                })
                .collect(),
        })
        .collect()
}

/// `GET /workflow-runs/{id}`.
pub(super) async fn page(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    csrf: Option<Extension<SessionCsrf>>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let run = state
        .store
        .workflow_run(path_id(&id, "workflow run")?)
        .await?
        .ok_or_else(|| not_found("workflow run", &id))?;
    let stages = columns(&run);
    let head = RunHead {
        id: run.id,
        state: run.state.as_str(),
        running: run.state == RunState::Running,
        parameters: pretty(&Value::Object(run.parameters)),
        created: rfc3339::format(run.created_at),
        finished: run.finished_at.map(rfc3339::format),
        workflow_id: run.workflow_id,
    };
    let page = RunPage {
        layout: Layout::new(
            format!("Workflow run {}", head.id),
            "/jobs",
            &caller,
            csrf,
            "/api/events?types=workflow.*,job.*",
        ),
        admin: is_admin(&caller),
        run: head,
        stages,
    };
    render(&page)
}
