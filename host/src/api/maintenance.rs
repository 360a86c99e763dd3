//! `/api/maintenance`: upkeep on demand.

use super::AppState;
use super::error::ApiError;
use super::responses::CleanupDone;
use axum::Json;
use axum::extract::State;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The routes of this module.
pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(cleanup))
}

/// Removes finished jobs past their retention now; says how many.
#[utoipa::path(
    post,
    path = "/api/maintenance/cleanup",
    operation_id = "cleanup",
    tag = "host",
    security(("bearer" = ["admin"])),
    responses((status = 200, description = "What was removed.", body = CleanupDone))
)]
async fn cleanup(State(state): State<AppState>) -> Result<Json<CleanupDone>, ApiError> {
    Ok(Json(state.scheduler.cleanup().await?.into()))
}
