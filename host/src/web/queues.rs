//! `/queues`: every queue with its counts, oldest wait, throughput, whether this host
//! serves it (one nobody serves is shown as a problem), and its controls; pause and
//! resume for admins. Live.

use super::{Layout, age, is_admin, render};
use crate::api::{ApiError, AppState, Caller, QueueView, SessionCsrf, every_queue};
use askama::Template;
use axum::Extension;
use axum::extract::State;
use axum::response::Response;

#[derive(Template)]
#[template(path = "queues.html")]
struct QueuesPage {
    layout: Layout,
    admin: bool,
    queues: Vec<QueueRow>,
}

/// One queue's line, here and on the overview.
pub(super) struct QueueRow {
    pub(super) name: String,
    pub(super) waiting: u64,
    pub(super) running: u64,
    pub(super) scheduled: u64,
    /// How long its oldest waiting job has waited, in words.
    pub(super) oldest: String,
    pub(super) finished: u64,
    pub(super) served: bool,
    pub(super) paused: bool,
    /// Its concurrency cap, in words.
    pub(super) cap: String,
}

impl From<QueueView> for QueueRow {
    fn from(queue: QueueView) -> QueueRow {
        let count = |state: &str| queue.counts.get(state).copied().unwrap_or(0);
        QueueRow {
            waiting: count("enqueued"),
            running: count("processing"),
            scheduled: count("scheduled"),
            oldest: queue
                .oldest_enqueued_age_ms
                .map_or_else(|| "–".to_owned(), age),
            finished: queue.finished_last_5m,
            served: queue.served,
            paused: queue.paused,
            cap: queue
                .concurrency
                .map_or_else(|| "none".to_owned(), |n| n.to_string()),
            name: queue.name,
        }
    }
}

/// `GET /queues`.
pub(super) async fn page(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    csrf: Option<Extension<SessionCsrf>>,
) -> Result<Response, ApiError> {
    let queues = every_queue(&state).await?;
    let page = QueuesPage {
        layout: Layout::new(
            "Queues",
            "/queues",
            &caller,
            csrf,
            "/api/events?types=job.*,queue.*",
        ),
        admin: is_admin(&caller),
        queues: queues.into_iter().map(QueueRow::from).collect(),
    };
    render(&page)
}
