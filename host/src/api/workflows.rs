//! `/api/workflows` and `/api/workflow-runs`: store, read and delete workflow
//! definitions; start, read and cancel their runs.

use super::AppState;
use super::error::{ApiError, ApiJson};
use super::queues::unserved_warning;
use super::responses::{ErrorBody, RunStarted, RunView, Warned, WorkflowView};
use super::workflow_fields::definition_field;
use crate::engine::workflows::{RunError, validate_id};
use crate::model::names::shown;
use crate::model::{DEFAULT_QUEUE, JobId, now_ms};
use crate::workflow::Definition;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde::Deserialize;
use serde_json::Value;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The routes of this module.
pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(show, put, delete))
        .routes(routes!(start))
        .routes(routes!(show_run))
        .routes(routes!(cancel))
}

impl From<RunError> for ApiError {
    fn from(e: RunError) -> Self {
        match e {
            RunError::NotFound(_) => ApiError::NotFound(e.to_string()),
            RunError::Invalid(message) => {
                // A step of the stored definition whose plugin is gone, else the parameters.
                let field = if message.starts_with("step ") {
                    "definition"
                } else {
                    "parameters"
                };
                ApiError::invalid(field, message)
            }
            RunError::Store(e) => e.into(),
        }
    }
}

/// The path's workflow id, checked.
fn checked(id: &str) -> Result<&str, ApiError> {
    validate_id(id).map_err(ApiError::BadRequest)?;
    Ok(id)
}

/// The path's run id, parsed.
fn run_id(id: &str) -> Result<JobId, ApiError> {
    id.parse()
        .map_err(|_| ApiError::BadRequest(format!("`{}` is not a workflow run id", shown(id))))
}

/// One stored workflow.
#[utoipa::path(
    get,
    path = "/api/workflows/{id}",
    operation_id = "get_workflow",
    tag = "workflows",
    security(("bearer" = ["read"])),
    params(("id" = String, Path, description = "The workflow's id.")),
    responses(
        (status = 200, description = "The workflow.", body = WorkflowView),
        (status = 400, description = "The id is malformed.", body = ErrorBody),
        (status = 404, description = "No such workflow.", body = ErrorBody),
    )
)]
async fn show(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<WorkflowView>, ApiError> {
    let workflow = state
        .store
        .workflow(checked(&id)?)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no workflow with id {id}")))?;
    Ok(Json(workflow.into()))
}

/// The queues the steps of `definition` go to: their own, or their plugin's.
fn step_queues(state: &AppState, definition: &Definition) -> Vec<String> {
    let steps = definition.stages.iter().flat_map(|stage| &stage.steps);
    steps
        .map(|step| match &step.queue {
            Some(queue) => queue.clone(),
            None => state
                .registry
                .settings(&step.plugin)
                .map_or_else(|| DEFAULT_QUEUE.to_owned(), |settings| settings.queue),
        })
        .collect()
}

/// Validates and stores a definition: 201 when new, 200 when it replaces one.
#[utoipa::path(
    put,
    path = "/api/workflows/{id}",
    operation_id = "put_workflow",
    tag = "workflows",
    security(("bearer" = ["admin"])),
    params(("id" = String, Path, description = "The workflow's id.")),
    request_body = Definition,
    responses(
        (status = 201, description = "The workflow was stored.", body = Warned<WorkflowView>),
        (status = 200, description = "The workflow was replaced.", body = Warned<WorkflowView>),
        (status = 400, description = "The id is malformed.", body = ErrorBody),
        (status = 422, description = "The definition is refused (`field` names the part, such as `stages[1].steps[0].plugin`).", body = ErrorBody),
    )
)]
async fn put(
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<Value>,
) -> Result<impl IntoResponse, ApiError> {
    checked(&id)?;
    let definition = Definition::parse(&body, |plugin| state.registry.settings(plugin).is_some())
        .map_err(|e| ApiError::invalid(definition_field(&e, &body), e.to_string()))?;
    let warning = unserved_warning(
        &state.scheduler,
        step_queues(&state, &definition).iter().map(String::as_str),
    );
    let created = state
        .scheduler
        .put_workflow(&id, &definition, now_ms())
        .await?;
    let workflow = state
        .store
        .workflow(&id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no workflow with id {id}")))?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    let body = Warned {
        body: WorkflowView::from(workflow),
        warning,
    };
    Ok((status, Json(body)))
}

/// Deletes a workflow; its runs stay.
#[utoipa::path(
    delete,
    path = "/api/workflows/{id}",
    operation_id = "delete_workflow",
    tag = "workflows",
    security(("bearer" = ["admin"])),
    params(("id" = String, Path, description = "The workflow's id.")),
    responses(
        (status = 204, description = "The workflow was deleted."),
        (status = 400, description = "The id is malformed.", body = ErrorBody),
        (status = 404, description = "No such workflow.", body = ErrorBody),
    )
)]
async fn delete(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    if state.scheduler.delete_workflow(checked(&id)?).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::NotFound(format!("no workflow with id {id}")))
    }
}

/// `POST /api/workflows/{id}/runs` body.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct StartRun {
    /// Values for the `{{params.NAME}}` templates of the steps' args (a JSON object).
    parameters: Option<Value>,
}

/// Starts a run (201 with its id and state).
#[utoipa::path(
    post,
    path = "/api/workflows/{id}/runs",
    operation_id = "start_workflow",
    tag = "workflows",
    security(("bearer" = ["admin"])),
    params(("id" = String, Path, description = "The workflow's id.")),
    request_body = StartRun,
    responses(
        (status = 201, description = "The run was started.", body = RunStarted),
        (status = 400, description = "The id is malformed.", body = ErrorBody),
        (status = 404, description = "No such workflow.", body = ErrorBody),
        (status = 422, description = "The parameters are refused (`parameters`), or a step's plugin is gone (`definition`).", body = ErrorBody),
    )
)]
async fn start(
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<StartRun>,
) -> Result<impl IntoResponse, ApiError> {
    let (run, run_state) = state
        .scheduler
        .start_workflow(checked(&id)?, body.parameters)
        .await?;
    let body = RunStarted {
        id: run,
        workflow_id: id,
        state: run_state,
    };
    Ok((StatusCode::CREATED, Json(body)))
}

/// One workflow run, with every step.
#[utoipa::path(
    get,
    path = "/api/workflow-runs/{id}",
    operation_id = "get_workflow_run",
    tag = "workflows",
    security(("bearer" = ["read"])),
    params(("id" = Uuid, Path, description = "The run's id.")),
    responses(
        (status = 200, description = "The run.", body = RunView),
        (status = 400, description = "The id is not a UUID.", body = ErrorBody),
        (status = 404, description = "No such run.", body = ErrorBody),
    )
)]
async fn show_run(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<RunView>, ApiError> {
    let run = state
        .store
        .workflow_run(run_id(&id)?)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no workflow run with id {id}")))?;
    Ok(Json(run.into()))
}

/// Cancels a running run: its unstarted steps at once, its steps' jobs through the
/// scheduler. Answers the run.
#[utoipa::path(
    post,
    path = "/api/workflow-runs/{id}/cancel",
    operation_id = "cancel_workflow_run",
    tag = "workflows",
    security(("bearer" = ["admin"])),
    params(("id" = Uuid, Path, description = "The run's id.")),
    responses(
        (status = 200, description = "The run, cancelled.", body = RunView),
        (status = 400, description = "The id is not a UUID.", body = ErrorBody),
        (status = 404, description = "No such run.", body = ErrorBody),
        (status = 409, description = "The run has ended already.", body = ErrorBody),
    )
)]
async fn cancel(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<RunView>, ApiError> {
    let run = run_id(&id)?;
    let now = now_ms();
    if !state.scheduler.cancel_workflow_run(run, now).await? {
        return Err(ApiError::NotFound(format!("no workflow run with id {id}")));
    }
    let run = state
        .store
        .workflow_run(run)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no workflow run with id {id}")))?;
    Ok(Json(run.into()))
}
