//! `/api/queues`: counts, controls and age per queue; pause, resume and concurrency caps.

use super::AppState;
use super::error::{ApiError, ApiJson};
use super::responses::{ErrorBody, QueueConcurrency, QueueList, QueuePaused, QueueView};
use crate::engine::Scheduler;
use crate::model::now_ms;
use crate::model::rules::validate_queue_name;
use crate::store::{QueueInfo, QueueSettings};
use axum::Json;
use axum::extract::{Path, State};
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The window a queue's throughput is counted over: five minutes.
const THROUGHPUT_WINDOW_MS: i64 = 5 * 60 * 1000;

/// The routes of this module.
pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(pause))
        .routes(routes!(resume))
        .routes(routes!(set_concurrency))
}

/// Every queue that holds jobs, has settings or is served here: its counts, controls,
/// age and throughput.
#[utoipa::path(
    get,
    path = "/api/queues",
    operation_id = "list_queues",
    tag = "queues",
    security(("bearer" = ["read"])),
    responses((status = 200, description = "Every queue, by name.", body = QueueList))
)]
async fn list(State(state): State<AppState>) -> Result<Json<QueueList>, ApiError> {
    Ok(Json(QueueList {
        queues: every_queue(&state).await?,
    }))
}

/// Every queue that holds jobs, has settings or is served here, by name, as clients
/// see it now: counts, controls, age and throughput.
pub(crate) async fn every_queue(state: &AppState) -> Result<Vec<QueueView>, ApiError> {
    let mut known = state.store.queues().await?;
    let served_queues = state.scheduler.served_queues();
    for served in &served_queues {
        if !known.iter().any(|q| &q.name == served) {
            known.push(QueueInfo {
                name: served.clone(),
                settings: QueueSettings::default(),
                counts: Vec::new(),
                oldest_enqueued_at: None,
            });
        }
    }
    known.sort_by(|a, b| a.name.cmp(&b.name));
    let now = now_ms();
    let finished = state
        .store
        .finished_since(now - THROUGHPUT_WINDOW_MS)
        .await?;
    let queues = known.into_iter().map(|info| {
        let served = served_queues.contains(&info.name);
        let done = finished.iter().find(|(queue, _)| *queue == info.name);
        QueueView::new(info, served, done.map_or(0, |(_, n)| *n), now)
    });
    Ok(queues.collect())
}

/// The warning an answer carries when jobs went to `queues` that no worker of this host
/// serves (they are kept, and wait for a host that does).
pub(super) fn unserved_warning<'a>(
    scheduler: &Scheduler,
    queues: impl IntoIterator<Item = &'a str>,
) -> Option<String> {
    let mut unserved: Vec<&str> = queues
        .into_iter()
        .filter(|q| !scheduler.serves(q))
        .collect();
    unserved.sort_unstable();
    unserved.dedup();
    match unserved.as_slice() {
        [] => None,
        [queue] => Some(format!(
            "queue {queue} is not served by any worker of this host"
        )),
        queues => Some(format!(
            "queues {} are not served by any worker of this host",
            queues.join(", ")
        )),
    }
}

fn checked(name: &str) -> Result<&str, ApiError> {
    validate_queue_name(name).map_err(ApiError::BadRequest)?;
    Ok(name)
}

/// Pauses a queue: its jobs wait until it is resumed.
#[utoipa::path(
    post,
    path = "/api/queues/{name}/pause",
    operation_id = "pause_queue",
    tag = "queues",
    security(("bearer" = ["admin"])),
    params(("name" = String, Path, description = "The queue's name.")),
    responses(
        (status = 200, description = "The queue is paused.", body = QueuePaused),
        (status = 400, description = "The name is not a queue name.", body = ErrorBody),
    )
)]
async fn pause(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<QueuePaused>, ApiError> {
    state
        .scheduler
        .set_queue_paused(checked(&name)?, true)
        .await?;
    Ok(Json(QueuePaused { name, paused: true }))
}

/// Resumes a paused queue.
#[utoipa::path(
    post,
    path = "/api/queues/{name}/resume",
    operation_id = "resume_queue",
    tag = "queues",
    security(("bearer" = ["admin"])),
    params(("name" = String, Path, description = "The queue's name.")),
    responses(
        (status = 200, description = "The queue runs again.", body = QueuePaused),
        (status = 400, description = "The name is not a queue name.", body = ErrorBody),
    )
)]
async fn resume(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<QueuePaused>, ApiError> {
    state
        .scheduler
        .set_queue_paused(checked(&name)?, false)
        .await?;
    Ok(Json(QueuePaused {
        name,
        paused: false,
    }))
}

/// `PUT /api/queues/{name}/concurrency` body: a cap, or `null` for none.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct Concurrency {
    /// Most of its jobs that run at once (at least 1); `null` for no cap.
    #[schema(minimum = 1)]
    concurrency: Option<u32>,
}

/// Caps how many jobs of a queue run at once, or lifts the cap.
#[utoipa::path(
    put,
    path = "/api/queues/{name}/concurrency",
    operation_id = "set_queue_concurrency",
    tag = "queues",
    security(("bearer" = ["admin"])),
    params(("name" = String, Path, description = "The queue's name.")),
    request_body = Concurrency,
    responses(
        (status = 200, description = "The queue's cap now.", body = QueueConcurrency),
        (status = 400, description = "The name is not a queue name.", body = ErrorBody),
        (status = 422, description = "`concurrency` is 0.", body = ErrorBody),
    )
)]
async fn set_concurrency(
    State(state): State<AppState>,
    Path(name): Path<String>,
    ApiJson(body): ApiJson<Concurrency>,
) -> Result<Json<QueueConcurrency>, ApiError> {
    if body.concurrency == Some(0) {
        return Err(ApiError::invalid(
            "concurrency",
            "concurrency must be at least 1 (pause the queue to run nothing)",
        ));
    }
    state
        .scheduler
        .set_queue_concurrency(checked(&name)?, body.concurrency)
        .await?;
    Ok(Json(QueueConcurrency {
        name,
        concurrency: body.concurrency,
    }))
}
