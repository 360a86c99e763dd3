//! `/api/batches`: jobs created together, all or none, with callbacks that run once when
//! they are done.

use super::AppState;
use super::error::{ApiError, ApiJson, refused_at};
use super::jobs::{SubmitJob, parse_id};
use super::queues::unserved_warning;
use super::responses::{BatchCancelled, BatchCreated, BatchView, ErrorBody};
use crate::model::{JobId, new_job_id, now_ms};
use crate::store::{AwaitOn, NewBatch, NewJob, Parents};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Most jobs in one batch.
const MAX_BATCH_JOBS: usize = 10_000;

/// The routes of this module.
pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create))
        .routes(routes!(show))
        .routes(routes!(cancel))
}

/// `POST /api/batches` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct CreateBatch {
    /// Its jobs (1 to 10,000), stored all or none; none takes a `unique_key`.
    jobs: Vec<SubmitJob>,
    /// A job run once every job succeeded; it takes no `after`.
    on_success: Option<SubmitJob>,
    /// A job run once every job finished, however; it takes no `after`.
    on_complete: Option<SubmitJob>,
    /// Words for people [default: empty].
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

/// Creates a batch: jobs stored together, all or none, with callbacks run once when
/// they are done.
#[utoipa::path(
    post,
    path = "/api/batches",
    operation_id = "create_batch",
    tag = "batches",
    security(("bearer" = ["admin"])),
    request_body = CreateBatch,
    responses(
        (status = 201, description = "The batch was stored.", body = BatchCreated),
        (status = 400, description = "A job's `args` is a string that does not hold JSON.", body = ErrorBody),
        (status = 422, description = "A value is refused (`field` names it, such as `jobs[3].priority`), or the batch has no jobs or too many (`jobs`).", body = ErrorBody),
    )
)]
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

/// Where a batch and each of its jobs stand.
#[utoipa::path(
    get,
    path = "/api/batches/{id}",
    operation_id = "get_batch",
    tag = "batches",
    security(("bearer" = ["read"])),
    params(("id" = Uuid, Path, description = "The batch's id.")),
    responses(
        (status = 200, description = "The batch.", body = BatchView),
        (status = 400, description = "The id is not a UUID.", body = ErrorBody),
        (status = 404, description = "No such batch.", body = ErrorBody),
    )
)]
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

/// Cancels a batch: its waiting jobs at once, its running ones by stopping them.
#[utoipa::path(
    post,
    path = "/api/batches/{id}/cancel",
    operation_id = "cancel_batch",
    tag = "batches",
    security(("bearer" = ["admin"])),
    params(("id" = Uuid, Path, description = "The batch's id.")),
    responses(
        (status = 200, description = "The batch, cancelled.", body = BatchCancelled),
        (status = 400, description = "The id is not a UUID.", body = ErrorBody),
        (status = 404, description = "No such batch.", body = ErrorBody),
    )
)]
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
