//! `GET /api/events`: the live event stream (Server-Sent Events).
//!
//! Each event carries its type (see [`crate::events::Event::type_name`]), its sequence
//! number as the SSE id, a timestamp and the ids it concerns (job, task, agent,
//! correlation). `?job_id=`, `?task_id=`, `?agent_id=` and `?types=a,b` (`task.*` for a
//! family) filter. A client that reads too slowly gets a `missed` event saying how many
//! events it lost; the host keeps a fixed number of events for all clients together, so
//! no client can grow it. A client that reconnects with `Last-Event-ID` gets the kept
//! events after that one first, or a `missed` notice for those no longer kept.

use super::AppState;
use super::error::ApiError;
use super::jobs::parse_id;
use crate::events::{Published, Subscription};
use crate::model::JobId;
use axum::Router;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::routing::get;
use futures_util::stream::{self, Stream, StreamExt};
use serde::Deserialize;
use serde_json::json;
use std::convert::Infallible;
use tokio::sync::broadcast::error::RecvError;

/// The routes of this module.
pub(super) fn routes() -> Router<AppState> {
    Router::new().route("/api/events", get(events))
}

/// `GET /api/events` query.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct EventQuery {
    job_id: Option<String>,
    task_id: Option<String>,
    agent_id: Option<String>,
    types: Option<String>,
}

/// Which events a client wants.
#[derive(Debug, Clone)]
struct Wanted {
    job: Option<JobId>,
    task: Option<JobId>,
    agent: Option<String>,
    /// Type names; `task.*` stands for every type that starts with `task.`.
    types: Option<Vec<String>>,
}

impl Wanted {
    fn admits(&self, published: &Published) -> bool {
        let ids = &published.ids;
        let name = published.event.type_name();
        self.job.is_none_or(|job| ids.job == Some(job))
            && self.task.is_none_or(|task| ids.task == Some(task))
            && self
                .agent
                .as_deref()
                .is_none_or(|agent| ids.agent.as_deref() == Some(agent))
            && self.types.as_ref().is_none_or(|types| {
                types.iter().any(|t| match t.strip_suffix('*') {
                    Some(prefix) => name.starts_with(prefix),
                    None => t == name,
                })
            })
    }
}

/// An event's SSE id: `{epoch}-{seq}`, so that a client resuming after a restart of the
/// host is not matched against the new run's numbers.
fn to_sse(epoch: i64, published: &Published) -> Event {
    Event::default()
        .id(format!("{epoch}-{}", published.seq))
        .event(published.event.type_name())
        .data(published.to_json().to_string())
}

/// Tells the client it lost `missed` events (0: an unknown number, the host restarted):
/// it should read the current state from the API.
fn missed_notice(missed: u64) -> Event {
    let data = json!({"type": "missed", "missed": missed}).to_string();
    Event::default().event("missed").data(data)
}

/// The next event a client wants, or a `missed` notice; `None` once the bus is gone.
async fn next(subscription: &mut Subscription, wanted: &Wanted, epoch: i64) -> Option<Event> {
    loop {
        match subscription.recv().await {
            Ok(published) if wanted.admits(&published) => {
                return Some(to_sse(epoch, &published));
            }
            Ok(_) => {}
            Err(RecvError::Lagged(missed)) => return Some(missed_notice(missed)),
            Err(RecvError::Closed) => return None,
        }
    }
}

/// The number of the last event a reconnecting client saw (`Last-Event-ID`), in this
/// run of the host's numbering: an id of another run is past every number of this one.
fn last_event_id(headers: &HeaderMap, epoch: i64) -> Result<Option<u64>, ApiError> {
    let Some(value) = headers.get("last-event-id") else {
        return Ok(None);
    };
    let id = value
        .to_str()
        .ok()
        .and_then(|v| v.trim().split_once('-'))
        .and_then(|(run, seq)| Some((run.parse::<i64>().ok()?, seq.parse::<u64>().ok()?)))
        .ok_or_else(|| {
            ApiError::BadRequest("Last-Event-ID must be an event id as sent (RUN-NUMBER)".into())
        })?;
    Ok(Some(if id.0 == epoch { id.1 } else { u64::MAX }))
}

async fn events(
    State(state): State<AppState>,
    headers: HeaderMap,
    query: Result<Query<EventQuery>, QueryRejection>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let Query(query) = query?;
    let wanted = Wanted {
        job: query.job_id.as_deref().map(parse_id).transpose()?,
        task: query.task_id.as_deref().map(parse_id).transpose()?,
        agent: query.agent_id,
        types: query
            .types
            .map(|types| types.split(',').map(|t| t.trim().to_owned()).collect()),
    };
    let bus = state.scheduler.events();
    let epoch = bus.epoch();
    let (first, live): (Vec<Event>, Subscription) = match last_event_id(&headers, epoch)? {
        None => (Vec::new(), bus.subscribe()),
        Some(last) => {
            let resumed = bus.resume(last);
            let notice = resumed.missed.map(missed_notice);
            let replay = resumed
                .replay
                .iter()
                .filter(|p| wanted.admits(p))
                .map(|p| to_sse(epoch, p));
            (notice.into_iter().chain(replay).collect(), resumed.live)
        }
    };
    let live = stream::unfold((live, wanted), move |(mut live, wanted)| async move {
        let event = next(&mut live, &wanted, epoch).await?;
        Some((Ok(event), (live, wanted)))
    });
    let stream = stream::iter(first.into_iter().map(Ok)).chain(live);
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}
