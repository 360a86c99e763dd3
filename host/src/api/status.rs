//! `/api/plugins`, `/api/stats` and `/healthz`: what the host has loaded and done.

use super::responses::{Health, PluginList, PluginView};
use super::{ApiError, AppState};
use crate::engine::filters::Counts;
use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::routing::get;

/// The routes of this module.
pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/plugins", get(plugins))
        .route("/api/stats", get(stats))
        .route("/healthz", get(health))
}

async fn plugins(State(state): State<AppState>) -> Json<PluginList> {
    let plugins = state.registry.list().into_iter().map(PluginView::from);
    Json(PluginList {
        plugins: plugins.collect(),
    })
}

/// Runs and outcomes counted by the host's built-in filter since it started.
async fn stats(State(state): State<AppState>) -> Json<Counts> {
    Json(state.scheduler.counts())
}

/// 200 while the host can keep what it is given; 503 naming the cause once it knows
/// it cannot (its database file was deleted or replaced).
async fn health(State(state): State<AppState>) -> Result<Json<Health>, ApiError> {
    state.store.health()?;
    Ok(Json(Health { status: "ok" }))
}
