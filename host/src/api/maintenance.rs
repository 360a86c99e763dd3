//! `/api/maintenance`: upkeep on demand.

use super::AppState;
use super::error::ApiError;
use crate::model::rfc3339;
use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{Value, json};

/// The routes of this module.
pub(super) fn routes() -> Router<AppState> {
    Router::new().route("/api/maintenance/cleanup", post(cleanup))
}

/// Removes finished jobs past their retention now; says how many.
async fn cleanup(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let done = state.scheduler.cleanup().await?;
    Ok(Json(json!({
        "removed": done.removed,
        "succeeded_before": rfc3339::format(done.succeeded_before),
        "failed_before": rfc3339::format(done.failed_before),
    })))
}
