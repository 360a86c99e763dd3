//! `/api/maintenance`: upkeep on demand.

use super::AppState;
use super::error::ApiError;
use super::responses::CleanupDone;
use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};

/// The routes of this module.
pub(super) fn routes() -> Router<AppState> {
    Router::new().route("/api/maintenance/cleanup", post(cleanup))
}

/// Removes finished jobs past their retention now; says how many.
async fn cleanup(State(state): State<AppState>) -> Result<Json<CleanupDone>, ApiError> {
    Ok(Json(state.scheduler.cleanup().await?.into()))
}
