//! `/api/batches`: jobs created together, all or none, with callbacks that run once when
//! they are done.

use super::AppState;
use super::error::{ApiError, ApiJson, refused_at};
use super::jobs::{SubmitJob, parse_id};
use super::queues::unserved_warning;
use super::responses::{BatchCancelled, BatchCreated, BatchView};
use crate::model::{JobId, new_job_id, now_ms};
use crate::store::{AwaitOn, NewBatch, NewJob, Parents};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;

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

/// A callback (the body's `field`): a continuation of every job of the batch. Its
/// refusals name `on_success.…` or `on_complete.…`.
fn callback(
    spec: SubmitJob,
    field: &str,
    state: &AppState,
    ids: &[JobId],
    on: AwaitOn,
) -> Result<NewJob, ApiError> {
    let mut job = spec
        .validate(state, now_ms())
        .map_err(|e| e.within(field, false))?;
    if job.parents.is_some() {
        return Err(ApiError::invalid(
            format!("{field}.after"),
            "a batch callback waits for the batch: it takes no `after`",
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
        return Err(ApiError::invalid(
            "jobs",
            format!(
                "a batch has 1 to {MAX_BATCH_JOBS} jobs, got {}",
                body.jobs.len()
            ),
        ));
    }
    let now = now_ms();
    let jobs = body
        .jobs
        .into_iter()
        .enumerate()
        .map(|(n, spec)| {
            spec.validate(&state, now)
                .map_err(|e| e.within(&format!("jobs[{n}]"), true))
        })
        .collect::<Result<Vec<_>, _>>()?;
    if let Some(n) = jobs.iter().position(|job| job.unique_key.is_some()) {
        return Err(ApiError::invalid(
            format!("jobs[{n}].unique_key"),
            "jobs of a batch take no unique_key",
        ));
    }
    let ids: Vec<JobId> = jobs.iter().map(|job| job.id).collect();
    let batch = NewBatch {
        id: new_job_id(),
        description: body.description,
        on_success: body
            .on_success
            .map(|spec| callback(spec, "on_success", &state, &ids, AwaitOn::Success))
            .transpose()?,
        on_complete: body
            .on_complete
            .map(|spec| callback(spec, "on_complete", &state, &ids, AwaitOn::Finish))
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
    // A parent the store does not know, named by some job's `after`.
    state
        .scheduler
        .submit_batch(batch, now)
        .await
        .map_err(refused_at("jobs"))?;
    let answer = BatchCreated {
        id,
        jobs: ids,
        warning,
    };
    Ok((StatusCode::CREATED, Json(answer)))
}

async fn show(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<BatchView>, ApiError> {
    let id = parse_id(&id)?;
    let info = state
        .store
        .batch(id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no batch with id {id}")))?;
    Ok(Json(BatchView::from(info)))
}

async fn cancel(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<BatchCancelled>, ApiError> {
    let id = parse_id(&id)?;
    if state.store.batch(id).await?.is_none() {
        return Err(ApiError::NotFound(format!("no batch with id {id}")));
    }
    // The store refuses a batch it does not know (deleted since it was read): the path's.
    let running = state
        .scheduler
        .cancel_batch(id, now_ms())
        .await
        .map_err(refused_at("id"))?;
    Ok(Json(BatchCancelled {
        id,
        state: "cancelled",
        running_jobs_interrupted: running.len(),
    }))
}
