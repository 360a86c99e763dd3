//! `/api/plugins`, `/api/queues` and `/healthz`: what the host has loaded and holds.

use super::AppState;
use super::error::ApiError;
use crate::model::{JobState, rfc3339};
use crate::retry::RetryPolicy;
use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::routing::get;
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;

/// The routes of this module.
pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/plugins", get(plugins))
        .route("/api/queues", get(queues))
        .route("/healthz", get(health))
}

async fn plugins(State(state): State<AppState>) -> Json<Value> {
    let plugins: Vec<Value> = state
        .registry
        .list()
        .into_iter()
        .map(|status| {
            let mut body = json!({"name": status.name, "error": status.error});
            if let Some(p) = status.current {
                let s = &p.settings;
                let retry = match &s.retry {
                    RetryPolicy::Delays(delays) => json!({"delays_seconds": delays}),
                    RetryPolicy::Backoff => json!("backoff"),
                };
                body["digest"] = json!(p.digest);
                body["loaded_at"] = json!(rfc3339::format(p.loaded_at));
                body["limits"] = json!({
                    "fuel": s.limits.fuel,
                    "timeout_ms": s.limits.timeout.as_millis() as u64,
                    "memory_mb": s.limits.memory_bytes >> 20,
                });
                body["max_attempts"] = json!(s.max_attempts);
                body["retry"] = retry;
                body["queue"] = json!(s.queue);
            }
            body
        })
        .collect();
    Json(json!({ "plugins": plugins }))
}

async fn queues(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let zero = || -> Map<String, Value> {
        JobState::ALL
            .iter()
            .map(|s| (s.as_str().to_owned(), json!(0)))
            .collect()
    };
    let mut queues: BTreeMap<String, Map<String, Value>> =
        state.queues.iter().map(|q| (q.clone(), zero())).collect();
    for count in state.store.queue_counts().await? {
        queues
            .entry(count.queue)
            .or_insert_with(zero)
            .insert(count.state.as_str().to_owned(), json!(count.count));
    }
    let queues: Vec<Value> = queues
        .into_iter()
        .map(|(name, counts)| {
            json!({"name": name, "served": state.queues.contains(&name), "counts": counts})
        })
        .collect();
    Ok(Json(json!({ "queues": queues })))
}

async fn health() -> Json<Value> {
    Json(json!({"status": "ok"}))
}
