//! The HTTP API (axum, JSON). Every route but `/healthz` needs a token (see `access`).
//! Every answer is a type of `responses`. Bad input gets a 4xx with `{"error": "..."}`;
//! a refused value (422) also names its `field`. The router and its OpenAPI document
//! (`openapi`) are made from the same annotations, so neither has a route the other
//! lacks.

mod access;
mod agents;
mod alerts;
mod audit;
mod batches;
mod error;
mod events;
mod jobs;
mod json_errors;
mod logs;
mod maintenance;
mod metrics;
mod openapi;
mod queues;
mod recurring;
mod responses;
mod session;
mod stats;
mod status;
mod tasks;
mod times;
mod tokens;
mod workflow_fields;
mod workflows;

pub use access::{Access, Caller, SessionCsrf};
pub use error::ApiError;
pub(crate) use jobs::search_text;
pub use json_errors::{MAX_HEADER_BYTES, MAX_TARGET_BYTES};
pub(crate) use recurring::PreviewQuery;
pub use session::{LOGIN_PAGE, login_cookie};

pub(crate) use queues::every_queue;
pub(crate) use responses::{
    AlertView, BatchView, IncidentView, PluginState, PluginView, QueueView, Retry,
};

use crate::engine::Scheduler;
use crate::plugins::Registry;
use crate::store::Reads;
use axum::extract::DefaultBodyLimit;
use axum::{Extension, Router};
use std::path::PathBuf;
use std::sync::Arc;
use utoipa_axum::router::OpenApiRouter;

/// Largest request body accepted.
pub const MAX_BODY_BYTES: usize = 1 << 20;

/// What every handler can reach. Cheap to clone.
#[derive(Clone, Debug)]
pub struct AppState {
    /// What the store holds; every write goes through the scheduler.
    pub store: Reads,
    /// The scheduler: the only writer of jobs, which publishes what changed.
    pub scheduler: Scheduler,
    /// Loaded plugins.
    pub registry: Arc<Registry>,
    /// Canonical directories under which a job's repository may lie.
    pub repo_roots: Arc<[PathBuf]>,
    /// Who may use the API.
    pub access: Arc<Access>,
    /// The host's metrics, read at `/metrics`.
    pub metrics: Arc<crate::metrics::Metrics>,
}

/// Every route of the API, with the OpenAPI document their annotations make.
fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(openapi::base())
        .merge(jobs::routes())
        .merge(logs::routes())
        .merge(agents::routes())
        .merge(tasks::routes())
        .merge(events::routes())
        .merge(maintenance::routes())
        .merge(batches::routes())
        .merge(queues::routes())
        .merge(recurring::routes())
        .merge(status::routes())
        .merge(stats::routes())
        .merge(workflows::routes())
        .merge(tokens::routes())
        .merge(session::routes())
        .merge(audit::routes())
        .merge(alerts::routes())
        .merge(metrics::routes())
        .merge(openapi::routes())
}

/// The API's OpenAPI 3.1 document: every route [`router`] serves.
pub fn openapi() -> utoipa::openapi::OpenApi {
    openapi::finish(routes().into_openapi())
}

/// The API's routes, and the dashboard's `pages` (HTML, not in the document), over
/// `state`: both behind the same access control.
pub fn router(state: AppState, pages: Router<AppState>) -> Router {
    let (routes, document) = routes().split_for_parts();
    routes
        .merge(pages)
        .layer(Extension(openapi::Served::new(&openapi::finish(document))))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(axum::middleware::from_fn_with_state(
            state.access.clone(),
            access::guard,
        ))
        .layer(axum::middleware::from_fn(json_errors::json_errors))
        .with_state(state)
}

/// `/metrics` alone, without a token: for `--metrics-listen`.
pub fn metrics_router(state: AppState) -> Router {
    Router::from(metrics::routes())
        .fallback(not_found)
        .layer(axum::middleware::from_fn(json_errors::json_errors))
        .with_state(state)
}

async fn not_found(uri: axum::http::Uri) -> ApiError {
    ApiError::NotFound(format!("no route for {}", uri.path()))
}

async fn method_not_allowed(method: axum::http::Method, uri: axum::http::Uri) -> ApiError {
    ApiError::Rejected {
        status: axum::http::StatusCode::METHOD_NOT_ALLOWED,
        message: format!("{method} is not allowed on {}", uri.path()),
    }
}
