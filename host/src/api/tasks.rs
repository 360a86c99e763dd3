//! `/api/tasks`: commands for agents. A task goes to the least-loaded healthy agent
//! serving its repository and is run by a `task_execution` job bound to that agent.

use super::AppState;
use super::error::{ApiError, ApiJson, invalid};
use super::jobs::{check_repository, parse_id};
use super::queues::unserved_warning;
use super::responses::{CancelledTask, SubmittedTask, TaskList, TaskView};
use super::times::scheduled_time;
use crate::engine::agents::{TaskError, TaskRequest};
use crate::model::agent::{TaskPriority, validate_agent_id, validate_command};
use crate::model::now_ms;
use crate::store::CancelOutcome;
use crate::store::agents::{Task, TaskFilter};
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;

/// Default and largest page of `GET /api/tasks`.
const DEFAULT_PAGE: u32 = 50;
const MAX_PAGE: u32 = 1000;

/// The routes of this module.
pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/tasks", post(submit).get(list))
        .route("/api/tasks/{id}", get(show))
        .route("/api/tasks/{id}/cancel", post(cancel))
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
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SubmitTask {
    command: String,
    repository_path: String,
    priority: Option<String>,
    execute_at: Option<String>,
}

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

async fn show(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    Ok(Json(TaskView::new(found(&state, &id).await?, now_ms())))
}

/// `GET /api/tasks` query.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    agent_id: Option<String>,
    state: Option<String>,
    limit: Option<u32>,
}

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
