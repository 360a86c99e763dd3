//! `/api/plugins`, `/api/stats` and `/healthz`: what the host has loaded and done.

use super::{ApiError, AppState};
use crate::model::retry::RetryPolicy;
use crate::model::rfc3339;
use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::routing::get;
use serde_json::{Value, json};

/// The routes of this module.
pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/plugins", get(plugins))
        .route("/api/stats", get(stats))
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
                    "result_mb": s.limits.result_bytes >> 20,
                    "log_mb": s.limits.log_bytes >> 20,
                    "disk_quota_mb": s.limits.disk_quota_bytes >> 20,
                });
                body["clamped"] = json!(s.clamped);
                body["max_attempts"] = json!(s.max_attempts);
                body["retry"] = retry;
                body["queue"] = json!(s.queue);
            }
            body
        })
        .collect();
    Json(json!({ "plugins": plugins }))
}

/// Runs and outcomes counted by the host's built-in filter since it started.
async fn stats(State(state): State<AppState>) -> Json<Value> {
    Json(json!(state.scheduler.counts()))
}

/// 200 while the host can keep what it is given; 503 naming the cause once it knows
/// it cannot (its database file was deleted or replaced).
async fn health(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    state.store.health()?;
    Ok(Json(json!({"status": "ok"})))
}
