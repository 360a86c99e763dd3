//! `GET /metrics`: the host's metrics in the Prometheus text format (a token is needed,
//! like everywhere but `/healthz`).

use super::AppState;
use super::error::ApiError;
use crate::metrics::{AgentGauge, QueueGauge, Snapshot};
use crate::model::now_ms;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The content type of the OpenMetrics text format, which Prometheus reads.
const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The routes of this module.
pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(metrics))
}

/// The host's metrics in the OpenMetrics text format, which Prometheus reads. With
/// `--metrics-listen`, also served alone on that address, without a token.
#[utoipa::path(
    get,
    path = "/metrics",
    operation_id = "get_metrics",
    tag = "host",
    security(("bearer" = ["read"])),
    responses((
        status = 200,
        description = "The metrics, as text.",
        body = String,
        content_type = CONTENT_TYPE
    ))
)]
async fn metrics(State(state): State<AppState>) -> Result<impl IntoResponse, ApiError> {
    let now = now_ms();
    let served = state.scheduler.served_queues();
    let queues = state
        .store
        .queues()
        .await?
        .into_iter()
        .map(|queue| QueueGauge {
            jobs: queue
                .counts
                .iter()
                .map(|(state, count)| (state.as_str(), *count))
                .collect(),
            oldest_seconds: queue
                .oldest_enqueued_at
                .map(|at| (now - at).max(0) as f64 / 1000.0),
            served: served.contains(&queue.name),
            queue: queue.name,
        })
        .collect();
    let agents = state
        .store
        .agents()
        .await?
        .into_iter()
        .map(|agent| AgentGauge {
            status: agent.status.as_str(),
            running: agent.current_jobs.len() as u64,
            agent: agent.spec.id,
        })
        .collect();
    let snapshot = Snapshot {
        queues,
        agents,
        plugin_load_errors: state
            .registry
            .list()
            .iter()
            .filter(|plugin| plugin.error.is_some())
            .count() as u64,
        event_clients: state.scheduler.events().clients() as u64,
        search_backlog: state.store.search_backlog().await?,
        leader: state.scheduler.leads(),
    };
    let text = state.metrics.render(&snapshot);
    Ok(([(header::CONTENT_TYPE, CONTENT_TYPE)], text))
}
