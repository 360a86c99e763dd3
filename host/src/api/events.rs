//! `GET /api/events`: the live event stream (Server-Sent Events).
//!
//! Each event carries its type (`job.enqueued`, `job.started`, `job.progress`, `job.log`,
//! `job.succeeded`, `job.failed`, `job.retrying`, `job.cancelled`), its sequence number as
//! the SSE id, a timestamp and the job id. `?job_id=` and `?types=a,b` filter. A client
//! that reads too slowly gets a `missed` event saying how many events it lost; the host
//! keeps a fixed number of events for all clients together, so no client can grow it.

use super::AppState;
use super::error::ApiError;
use super::jobs::parse_id;
use crate::events::Published;
use crate::model::JobId;
use axum::Router;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::routing::get;
use futures_util::stream::{self, Stream};
use serde::Deserialize;
use serde_json::json;
use std::convert::Infallible;
use tokio::sync::broadcast::{Receiver, error::RecvError};

/// The routes of this module.
pub(super) fn routes() -> Router<AppState> {
    Router::new().route("/api/events", get(events))
}

/// `GET /api/events` query.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct EventQuery {
    job_id: Option<String>,
    types: Option<String>,
}

/// Which events a client wants.
#[derive(Debug, Clone)]
struct Wanted {
    job: Option<JobId>,
    types: Option<Vec<String>>,
}

impl Wanted {
    fn admits(&self, published: &Published) -> bool {
        self.job.is_none_or(|job| job == published.event.job_id())
            && self
                .types
                .as_ref()
                .is_none_or(|types| types.iter().any(|t| t == published.event.type_name()))
    }
}

fn to_sse(published: &Published) -> Event {
    Event::default()
        .id(published.seq.to_string())
        .event(published.event.type_name())
        .data(published.to_json().to_string())
}

/// The next event a client wants, or a `missed` notice; `None` once the bus is gone.
async fn next(receiver: &mut Receiver<Published>, wanted: &Wanted) -> Option<Event> {
    loop {
        match receiver.recv().await {
            Ok(published) if wanted.admits(&published) => return Some(to_sse(&published)),
            Ok(_) => {}
            Err(RecvError::Lagged(missed)) => {
                let data = json!({"type": "missed", "missed": missed}).to_string();
                return Some(Event::default().event("missed").data(data));
            }
            Err(RecvError::Closed) => return None,
        }
    }
}

async fn events(
    State(state): State<AppState>,
    query: Result<Query<EventQuery>, QueryRejection>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let Query(query) = query?;
    let wanted = Wanted {
        job: query.job_id.as_deref().map(parse_id).transpose()?,
        types: query
            .types
            .map(|types| types.split(',').map(|t| t.trim().to_owned()).collect()),
    };
    let receiver = state.scheduler.events().subscribe();
    let stream = stream::unfold((receiver, wanted), |(mut receiver, wanted)| async move {
        let event = next(&mut receiver, &wanted).await?;
        Some((Ok(event), (receiver, wanted)))
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}
