//! `/api/recurring`: recurring jobs: create or update (`PUT`), read, list, delete,
//! pause, resume, and trigger (run one now).

use super::AppState;
use super::error::{ApiError, ApiJson};
use super::queues::unserved_warning;
use crate::engine::recurring::{InvalidRecurring, RecurringSpec, validate_id};
use crate::model::{now_ms, rfc3339};
use crate::store::RecurringJob;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Value, json};

/// The routes of this module.
pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/recurring", get(list))
        .route("/api/recurring/{id}", get(show).put(put).delete(delete))
        .route("/api/recurring/{id}/trigger", post(trigger))
        .route("/api/recurring/{id}/pause", post(pause))
        .route("/api/recurring/{id}/resume", post(resume))
}

impl From<InvalidRecurring> for ApiError {
    fn from(e: InvalidRecurring) -> Self {
        match e {
            InvalidRecurring::Id(_) => ApiError::BadRequest(e.to_string()),
            InvalidRecurring::Invalid(message) => ApiError::Unprocessable(message),
        }
    }
}

/// A recurring job as clients see it.
fn recurring_json(recurring: &RecurringJob) -> Value {
    let definition = &recurring.definition;
    json!({
        "id": definition.id,
        "cron": definition.schedule.expression(),
        "timezone": definition.schedule.timezone(),
        "plugin": definition.plugin,
        "args": definition.args,
        "queue": definition.queue,
        "priority": definition.priority,
        "max_attempts": definition.max_attempts,
        "misfire": definition.misfire,
        "paused": recurring.paused,
        "next_run_at": recurring.next_run_at.map(rfc3339::format),
        "last_run_at": recurring.last_run_at.map(rfc3339::format),
        "last_job_id": recurring.last_job_id,
        "last_job_state": recurring.last_job_state,
    })
}

/// The path's id, checked.
fn checked(id: &str) -> Result<&str, ApiError> {
    validate_id(id)?;
    Ok(id)
}

async fn list(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let all = state.store.list_recurring().await?;
    let recurring: Vec<Value> = all.iter().map(recurring_json).collect();
    Ok(Json(json!({ "recurring": recurring })))
}

async fn show(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let recurring = state
        .store
        .recurring(checked(&id)?)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no recurring job with id {id}")))?;
    Ok(Json(recurring_json(&recurring)))
}

/// Creates (201) or updates (200) a recurring job.
async fn put(
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiJson(spec): ApiJson<RecurringSpec>,
) -> Result<impl IntoResponse, ApiError> {
    let definition = spec.definition(&id, &state.registry)?;
    let warning = unserved_warning(&state.scheduler, [definition.queue.as_str()]);
    let put = state.store.put_recurring(definition, now_ms()).await?;
    let status = if put.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    let mut body = recurring_json(&put.recurring);
    if let Some(warning) = warning {
        body["warning"] = json!(warning);
    }
    Ok((status, Json(body)))
}

async fn delete(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    state.store.delete_recurring(checked(&id)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Enqueues a job of the recurring job now (201 with the job's id and state).
async fn trigger(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let job = state
        .store
        .trigger_recurring(checked(&id)?, now_ms())
        .await?;
    state.scheduler.notify();
    let body = json!({"id": job.id, "state": job.state, "recurring_id": id});
    Ok((StatusCode::CREATED, Json(body)))
}

async fn pause(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let recurring = state
        .store
        .set_recurring_paused(checked(&id)?, true, now_ms())
        .await?;
    Ok(Json(recurring_json(&recurring)))
}

async fn resume(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let recurring = state
        .store
        .set_recurring_paused(checked(&id)?, false, now_ms())
        .await?;
    Ok(Json(recurring_json(&recurring)))
}
