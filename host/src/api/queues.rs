//! `/api/queues`: counts, controls and age per queue; pause, resume and concurrency caps.

use super::AppState;
use super::error::{ApiError, ApiJson};
use super::responses::{QueueConcurrency, QueueList, QueuePaused, QueueView};
use crate::engine::Scheduler;
use crate::model::now_ms;
use crate::model::rules::validate_queue_name;
use crate::store::{QueueInfo, QueueSettings};
use axum::extract::{Path, State};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde::Deserialize;

/// The window a queue's throughput is counted over: five minutes.
const THROUGHPUT_WINDOW_MS: i64 = 5 * 60 * 1000;

/// The routes of this module.
pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/queues", get(list))
        .route("/api/queues/{name}/pause", post(pause))
        .route("/api/queues/{name}/resume", post(resume))
        .route("/api/queues/{name}/concurrency", put(set_concurrency))
}

async fn list(State(state): State<AppState>) -> Result<Json<QueueList>, ApiError> {
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
    Ok(Json(QueueList {
        queues: queues.collect(),
    }))
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
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Concurrency {
    concurrency: Option<u32>,
}

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
