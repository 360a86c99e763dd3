//! `/api/batches`: jobs created together, all or none, with callbacks that run once when
//! they are done.

use super::AppState;
use super::error::{ApiError, ApiJson};
use super::jobs::{SubmitJob, parse_id};
use super::queues::unserved_warning;
use crate::model::{JobId, JobState, new_job_id, now_ms};
use crate::store::{AwaitOn, BatchInfo, NewBatch, NewJob, Parents};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Map, Value, json};

/// Most jobs in one batch.
const MAX_BATCH_JOBS: usize = 10_000;

/// The routes of this module.
pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/batches", post(create))
        .route("/api/batches/{id}", get(show))
        .route("/api/batches/{id}/cancel", post(cancel))
}

/// `POST /api/batches` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateBatch {
    jobs: Vec<SubmitJob>,
    on_success: Option<SubmitJob>,
    on_complete: Option<SubmitJob>,
    #[serde(default)]
    description: String,
}

/// A callback: a continuation of every job of the batch.
fn callback(
    spec: SubmitJob,
    state: &AppState,
    ids: &[JobId],
    on: AwaitOn,
) -> Result<NewJob, ApiError> {
    let mut job = spec.validate(state, now_ms())?;
    if job.parents.is_some() {
        return Err(ApiError::Unprocessable(
            "a batch callback waits for the batch: it takes no `after`".into(),
        ));
    }
    job.parents = Some(Parents {
        ids: ids.to_vec(),
        on,
    });
    Ok(job)
}

async fn create(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<CreateBatch>,
) -> Result<impl IntoResponse, ApiError> {
    if body.jobs.is_empty() || body.jobs.len() > MAX_BATCH_JOBS {
        return Err(ApiError::Unprocessable(format!(
            "a batch has 1 to {MAX_BATCH_JOBS} jobs, got {}",
            body.jobs.len()
        )));
    }
    let now = now_ms();
    let jobs = body
        .jobs
        .into_iter()
        .enumerate()
        .map(|(n, spec)| {
            spec.validate(&state, now).map_err(|e| match e {
                ApiError::Unprocessable(m) => ApiError::Unprocessable(format!("jobs[{n}]: {m}")),
                ApiError::BadRequest(m) => ApiError::BadRequest(format!("jobs[{n}]: {m}")),
                other => other,
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    if jobs.iter().any(|job| job.unique_key.is_some()) {
        return Err(ApiError::Unprocessable(
            "jobs of a batch take no unique_key".into(),
        ));
    }
    let ids: Vec<JobId> = jobs.iter().map(|job| job.id).collect();
    let batch = NewBatch {
        id: new_job_id(),
        description: body.description,
        on_success: body
            .on_success
            .map(|spec| callback(spec, &state, &ids, AwaitOn::Success))
            .transpose()?,
        on_complete: body
            .on_complete
            .map(|spec| callback(spec, &state, &ids, AwaitOn::Finish))
            .transpose()?,
        jobs,
    };
    let id = batch.id;
    let queues = batch
        .jobs
        .iter()
        .chain(&batch.on_success)
        .chain(&batch.on_complete);
    let warning = unserved_warning(&state.scheduler, queues.map(|job| job.queue.as_str()));
    state.store.create_batch(batch, now).await?;
    state.scheduler.notify();
    let mut answer = json!({"id": id, "jobs": ids});
    if let Some(warning) = warning {
        answer["warning"] = json!(warning);
    }
    Ok((StatusCode::CREATED, Json(answer)))
}

/// Where a batch stands: `cancelled` once cancelled, `running` while any job is
/// unfinished, then `failed` if any job failed (or was cancelled), else `succeeded`.
fn batch_state(info: &BatchInfo) -> &'static str {
    if info.cancelled_at.is_some() {
        "cancelled"
    } else if info.jobs.iter().any(|(_, state)| !state.is_terminal()) {
        "running"
    } else if info
        .jobs
        .iter()
        .all(|(_, state)| *state == JobState::Succeeded)
    {
        "succeeded"
    } else {
        "failed"
    }
}

fn callback_json(callback: Option<(JobId, JobState)>) -> Value {
    callback.map_or(Value::Null, |(id, state)| json!({"id": id, "state": state}))
}

async fn show(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let id = parse_id(&id)?;
    let info = state
        .store
        .batch(id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no batch with id {id}")))?;
    let mut counts: Map<String, Value> = JobState::ALL
        .iter()
        .map(|s| (s.as_str().to_owned(), json!(0)))
        .collect();
    for (_, job_state) in &info.jobs {
        let count = counts[job_state.as_str()].as_u64().unwrap_or(0);
        counts.insert(job_state.as_str().to_owned(), json!(count + 1));
    }
    let finished = info.jobs.iter().filter(|(_, s)| s.is_terminal()).count();
    let jobs: Vec<Value> = info
        .jobs
        .iter()
        .map(|(id, state)| json!({"id": id, "state": state}))
        .collect();
    Ok(Json(json!({
        "id": info.id,
        "description": info.description,
        "created_at": crate::model::rfc3339::format(info.created_at),
        "state": batch_state(&info),
        "total": info.jobs.len(),
        "finished": finished,
        "progress": if info.jobs.is_empty() { 100 } else { finished * 100 / info.jobs.len() },
        "counts": counts,
        "jobs": jobs,
        "on_success": callback_json(info.on_success),
        "on_complete": callback_json(info.on_complete),
    })))
}

async fn cancel(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let id = parse_id(&id)?;
    if state.store.batch(id).await?.is_none() {
        return Err(ApiError::NotFound(format!("no batch with id {id}")));
    }
    let running = state.scheduler.cancel_batch(id, now_ms()).await?;
    Ok(Json(
        json!({"id": id, "state": "cancelled", "running_jobs_interrupted": running.len()}),
    ))
}
