//! `/batches/{id}`: one batch: its description, when it was created, its state, its
//! jobs counted per state with a progress bar, every job and its callbacks with their
//! states, and (for admins, while it runs) cancel. Live on batch and job events.

use super::{Layout, is_admin, not_found, path_id, render};
use crate::api::{ApiError, AppState, BatchView, Caller, SessionCsrf};
use crate::model::{JobRef, JobState};
use askama::Template;
use axum::Extension;
use axum::extract::{Path, State};
use axum::response::Response;

#[derive(Template)]
#[template(path = "batch.html")]
struct BatchPage {
    layout: Layout,
    /// Whether the caller may cancel the batch (and sees the button that does).
    admin: bool,
    /// The batch as `GET /api/batches/{id}` shows it.
    batch: BatchView,
    /// Its jobs per state, in life order.
    counts: Vec<(&'static str, u64)>,
    /// Its callbacks, each with when it runs.
    callbacks: Vec<(&'static str, JobRef)>,
}

/// `GET /batches/{id}`.
pub(super) async fn page(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    csrf: Option<Extension<SessionCsrf>>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let info = state
        .store
        .batch(path_id(&id, "batch")?)
        .await?
        .ok_or_else(|| not_found("batch", &id))?;
    let batch = BatchView::from(info);
    let counts = JobState::ALL
        .map(|s| {
            (
                s.as_str(),
                batch.counts.get(s.as_str()).copied().unwrap_or(0),
            )
        })
        .to_vec();
    let callbacks = [
        ("once every job succeeded", batch.on_success),
        ("once every job finished", batch.on_complete),
    ];
    let page = BatchPage {
        layout: Layout::new(
            format!("Batch {}", batch.id),
            "/jobs",
            &caller,
            csrf,
            "/api/events?types=batch.*,job.*",
        ),
        admin: is_admin(&caller),
        counts,
        callbacks: callbacks
            .into_iter()
            .filter_map(|(when, job)| Some((when, job?)))
            .collect(),
        batch,
    };
    render(&page)
}
