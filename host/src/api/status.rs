//! `/api/plugins`, `/api/stats` and `/healthz`: what the host has loaded and done.

use super::responses::{ErrorBody, Health, PluginList, PluginView};
use super::{ApiError, AppState};
use crate::engine::filters::Counts;
use axum::Json;
use axum::extract::State;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The routes of this module.
pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(plugins))
        .routes(routes!(stats))
        .routes(routes!(health))
}

/// Every plugin found in the plugin folder, loaded or not, with its limits.
#[utoipa::path(
    get,
    path = "/api/plugins",
    operation_id = "list_plugins",
    tag = "host",
    security(("bearer" = ["read"])),
    responses((status = 200, description = "Every plugin.", body = PluginList))
)]
async fn plugins(State(state): State<AppState>) -> Json<PluginList> {
    let plugins = state.registry.list().into_iter().map(PluginView::from);
    Json(PluginList {
        plugins: plugins.collect(),
    })
}

/// Runs and outcomes counted by the host's built-in filter since it started.
#[utoipa::path(
    get,
    path = "/api/stats",
    operation_id = "get_stats",
    tag = "host",
    security(("bearer" = ["read"])),
    responses((status = 200, description = "The counts.", body = Counts))
)]
async fn stats(State(state): State<AppState>) -> Json<Counts> {
    Json(state.scheduler.counts())
}

/// 200 while the host can keep what it is given; 503 naming the cause once it knows
/// it cannot (its database file was deleted or replaced). Needs no token.
#[utoipa::path(
    get,
    path = "/healthz",
    operation_id = "health",
    tag = "host",
    responses(
        (status = 200, description = "The host is healthy.", body = Health),
        (status = 503, description = "The host cannot keep what it is given.", body = ErrorBody),
    )
)]
async fn health(State(state): State<AppState>) -> Result<Json<Health>, ApiError> {
    state.store.health()?;
    Ok(Json(Health { status: "ok" }))
}
