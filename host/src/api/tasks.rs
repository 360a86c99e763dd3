//! `/api/tasks`: commands for agents. A task goes to the least-loaded healthy agent
//! serving its repository and is run by a `task_execution` job bound to that agent.

use super::AppState;
use super::error::{ApiError, ApiJson, invalid};
use super::jobs::{check_repository, parse_id};
use super::queues::unserved_warning;
use super::responses::{CancelledTask, ErrorBody, SubmittedTask, TaskList, TaskView};
use super::times::scheduled_time;
use crate::engine::agents::{TaskError, TaskRequest};
use crate::model::agent::{TaskPriority, validate_agent_id, validate_command};
use crate::model::{JobState, now_ms};
use crate::store::CancelOutcome;
use crate::store::agents::{Task, TaskFilter};
use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Default and largest page of `GET /api/tasks`.
const DEFAULT_PAGE: u32 = 50;
const MAX_PAGE: u32 = 1000;

/// The routes of this module.
pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(submit, list))
        .routes(routes!(show))
        .routes(routes!(cancel))
}

impl From<TaskError> for ApiError {
    fn from(e: TaskError) -> Self {
        match e {
            TaskError::NoAgent(_) => ApiError::invalid("repository_path", e.to_string()),
            TaskError::NoPlugin => ApiError::Rejected {
                status: StatusCode::SERVICE_UNAVAILABLE,
                message: e.to_string(),
            },
            TaskError::Store(e) => e.into(),
        }
    }
}

/// `POST /api/tasks` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct SubmitTask {
    /// The command for the agent (at most 2000 characters).
    command: String,
    /// The repository it acts on: a healthy agent serving it gets the task.
    repository_path: String,
    /// How urgent [default: `normal`].
    #[schema(value_type = Option<TaskPriority>)]
    priority: Option<String>,
    /// When it may run (RFC 3339, from 2000 to ten years ahead) [default: now].
    #[schema(format = DateTime)]
    execute_at: Option<String>,
}

/// Submits a task: the least-loaded healthy agent serving its repository gets it.
#[utoipa::path(
    post,
    path = "/api/tasks",
    operation_id = "submit_task",
    tag = "tasks",
    security(("bearer" = ["admin"])),
    request_body = SubmitTask,
    responses(
        (status = 201, description = "The task and the job that runs it.", body = SubmittedTask),
        (status = 422, description = "A value is refused (`field` names it), or no healthy agent serves the repository (`repository_path`).", body = ErrorBody),
        (status = 503, description = "The `task_execution` plugin is not loaded.", body = ErrorBody),
    )
)]
async fn submit(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<SubmitTask>,
) -> Result<impl IntoResponse, ApiError> {
    validate_command(&body.command).map_err(invalid("command"))?;
    let repository_path = check_repository(&state.repo_roots, &body.repository_path)?;
    let priority = body
        .priority
        .as_deref()
        .map_or(Ok(TaskPriority::Normal), TaskPriority::parse)
        .map_err(invalid("priority"))?;
    let run_at = body
        .execute_at
        .as_deref()
        .map(|text| scheduled_time("execute_at", text, now_ms()))
        .transpose()?;
    let submitted = state
        .scheduler
        .submit_task(TaskRequest {
            command: body.command,
            repository_path,
            priority,
            run_at,
        })
        .await?;
    let answer = SubmittedTask {
        warning: unserved_warning(&state.scheduler, [submitted.queue.as_str()]),
        task_id: submitted.task_id,
        job_id: submitted.job_id,
        agent_id: submitted.agent_id,
    };
    Ok((StatusCode::CREATED, Json(answer)))
}

async fn found(state: &AppState, id: &str) -> Result<Task, ApiError> {
    let id = parse_id(id)?;
    state
        .store
        .task(id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no task with id {id}")))
}

/// One task with its job.
#[utoipa::path(
    get,
    path = "/api/tasks/{id}",
    operation_id = "get_task",
    tag = "tasks",
    security(("bearer" = ["read"])),
    params(("id" = Uuid, Path, description = "The task's id.")),
    responses(
        (status = 200, description = "The task.", body = TaskView),
        (status = 400, description = "The id is not a UUID.", body = ErrorBody),
        (status = 404, description = "No such task.", body = ErrorBody),
    )
)]
async fn show(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    Ok(Json(TaskView::new(found(&state, &id).await?, now_ms())))
}

/// `GET /api/tasks` query.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    /// Only tasks of this agent.
    agent_id: Option<String>,
    /// Only tasks whose job is in this state.
    #[param(value_type = Option<JobState>)]
    state: Option<String>,
    /// Tasks per page [default: 50].
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u32>,
}

/// Lists tasks, newest first.
#[utoipa::path(
    get,
    path = "/api/tasks",
    operation_id = "list_tasks",
    tag = "tasks",
    security(("bearer" = ["read"])),
    params(ListQuery),
    responses(
        (status = 200, description = "The tasks.", body = TaskList),
        (status = 400, description = "A query parameter is malformed or unknown.", body = ErrorBody),
    )
)]
async fn list(
    State(state): State<AppState>,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let Query(query) = query?;
    if let Some(agent) = &query.agent_id {
        validate_agent_id(agent).map_err(ApiError::BadRequest)?;
    }
    let filter = TaskFilter {
        agent_id: query.agent_id,
        state: query
            .state
            .as_deref()
            .map(str::parse)
            .transpose()
            .map_err(|e: String| ApiError::BadRequest(e))?,
        limit: match query.limit {
            None => DEFAULT_PAGE,
            Some(n @ 1..=MAX_PAGE) => n,
            Some(n) => {
                return Err(ApiError::BadRequest(format!(
                    "limit must be between 1 and {MAX_PAGE}, got {n}"
                )));
            }
        },
    };
    let now = now_ms();
    let tasks = state.store.tasks(&filter).await?;
    let tasks = tasks.into_iter().map(|task| TaskView::new(task, now));
    Ok(Json(TaskList {
        tasks: tasks.collect(),
    }))
}

/// Cancels a task: at once if it waits, by stopping its command if it runs.
#[utoipa::path(
    post,
    path = "/api/tasks/{id}/cancel",
    operation_id = "cancel_task",
    tag = "tasks",
    security(("bearer" = ["admin"])),
    params(("id" = Uuid, Path, description = "The task's id.")),
    responses(
        (status = 202, description = "The task, cancelled or being stopped.", body = CancelledTask),
        (status = 400, description = "The id is not a UUID.", body = ErrorBody),
        (status = 404, description = "No such task.", body = ErrorBody),
        (status = 409, description = "The task has finished already.", body = ErrorBody),
    )
)]
async fn cancel(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let task = found(&state, &id).await?;
    let outcome = state.scheduler.cancel(task.job.id, now_ms()).await?;
    let state = match outcome {
        CancelOutcome::Cancelled => "cancelled",
        CancelOutcome::Requested => "cancelling",
    };
    let answer = CancelledTask {
        task_id: task.id,
        job_id: task.job.id,
        state,
    };
    Ok((StatusCode::ACCEPTED, Json(answer)))
}
