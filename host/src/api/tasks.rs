//! `/api/tasks`: commands for agents. A task goes to the least-loaded healthy agent
//! serving its repository and is run by a `task_execution` job bound to that agent.

use super::AppState;
use super::error::{ApiError, ApiJson};
use super::jobs::{check_repository, parse_id};
use super::queues::unserved_warning;
use super::times::scheduled_time;
use crate::engine::agents::{TaskError, TaskRequest};
use crate::model::agent::{TaskPriority, validate_agent_id, validate_command};
use crate::model::{JobState, Millis, now_ms, rfc3339};
use crate::store::CancelOutcome;
use crate::store::agents::{Task, TaskFilter};
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

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
            TaskError::NoAgent(_) => ApiError::Unprocessable(e.to_string()),
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

/// Seconds left by the rate of progress so far, while the task runs.
fn eta_seconds(task: &Task, now: Millis) -> Option<u64> {
    let progress = task.progress.as_ref()?;
    let started = task.started_at?;
    let percent = i64::from(progress.percent);
    if task.state != JobState::Processing || !(1..100).contains(&percent) {
        return None;
    }
    let spent = (progress.updated_at - started).max(0);
    let left_at_update = spent * (100 - percent) / percent;
    Some(((left_at_update - (now - progress.updated_at)).max(0) / 1000) as u64)
}

/// A task as clients see it.
pub(super) fn task_json(task: &Task) -> Value {
    let exec = task.exec.as_ref();
    json!({
        "task_id": task.id,
        "job_id": task.job_id,
        "agent_id": task.agent_id,
        "command": task.command,
        "repository_path": task.repository_path,
        "priority": task.priority,
        "queue": task.queue,
        "state": task.state,
        "attempt": task.attempt,
        "max_attempts": task.max_attempts,
        "created_at": rfc3339::format(task.created_at),
        "started_at": task.started_at.map(rfc3339::format),
        "finished_at": task.finished_at.map(rfc3339::format),
        "progress": task.progress.as_ref().map(|p| json!({
            "percent": p.percent,
            "message": p.message,
            "updated_at": rfc3339::format(p.updated_at),
            "eta_seconds": eta_seconds(task, now_ms()),
        })),
        "exec_outcome": exec.map(|e| e.outcome),
        "exit_code": exec.and_then(|e| e.exit_code),
        "output": exec.map(|e| e.stdout.as_str()),
        "error_output": exec.map(|e| e.stderr.as_str()),
        "duration_ms": exec.map(|e| e.duration_ms),
        "error": task.error,
    })
}

async fn submit(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<SubmitTask>,
) -> Result<impl IntoResponse, ApiError> {
    validate_command(&body.command).map_err(ApiError::Unprocessable)?;
    let repository_path = check_repository(&state.repo_roots, &body.repository_path)?;
    let priority = body
        .priority
        .as_deref()
        .map_or(Ok(TaskPriority::Normal), TaskPriority::parse)
        .map_err(ApiError::Unprocessable)?;
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
    let mut answer = json!({
        "task_id": submitted.task_id,
        "job_id": submitted.job_id,
        "agent_id": submitted.agent_id,
    });
    if let Some(warning) = unserved_warning(&state.scheduler, [submitted.queue.as_str()]) {
        answer["warning"] = json!(warning);
    }
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
    Ok(Json(task_json(&found(&state, &id).await?)))
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
    let tasks: Vec<Value> = state
        .store
        .tasks(&filter)
        .await?
        .iter()
        .map(task_json)
        .collect();
    Ok(Json(json!({ "tasks": tasks })))
}

async fn cancel(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let task = found(&state, &id).await?;
    let outcome = state.scheduler.cancel(task.job_id, now_ms()).await?;
    let state = match outcome {
        CancelOutcome::Cancelled => "cancelled",
        CancelOutcome::Requested => "cancelling",
    };
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({"task_id": task.id, "job_id": task.job_id, "state": state})),
    ))
}
