//! `GET /api/events` (Server-Sent Events) and `GET /api/events/ws` (WebSocket): the live
//! event stream.
//!
//! Each event carries its type (see [`crate::events::Event::type_name`]), its id
//! `{run}-{number}` (the SSE id, and `id` in the JSON), a timestamp and the ids it
//! concerns (job, task, agent, correlation). `?job_id=`, `?task_id=`, `?agent_id=` and
//! `?types=a,b` (`task.*` for a family) filter. A client that reads too slowly gets a
//! `missed` event saying how many events it lost; the host keeps a fixed number of events
//! for all clients together, so no client can grow it. A client that reconnects with the
//! last id it saw (the `Last-Event-ID` header, or `?last_event_id=`) gets the kept events
//! after that one first, or a `missed` notice for those no longer kept.

use super::AppState;
use super::error::ApiError;
use super::jobs::parse_id;
use super::responses::ErrorBody;
use crate::events::{EventBus, Published, Subscription};
use crate::model::JobId;
use axum::extract::rejection::QueryRejection;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::stream::{self, Stream, StreamExt};
use serde::Deserialize;
use serde_json::{Value, json};
use std::convert::Infallible;
use tokio::sync::broadcast::error::RecvError;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The routes of this module.
pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(events))
        .routes(routes!(websocket))
}

/// The event stream's query.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct EventQuery {
    /// Only the events of this job.
    #[param(value_type = Option<Uuid>)]
    job_id: Option<String>,
    /// Only the events of this task.
    #[param(value_type = Option<Uuid>)]
    task_id: Option<String>,
    /// Only the events of this agent.
    agent_id: Option<String>,
    /// Only events of these types, comma-separated; `task.*` stands for a family.
    types: Option<String>,
    /// Resume after this event id (`RUN-NUMBER`), as the `Last-Event-ID` header does.
    last_event_id: Option<String>,
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

/// What a client is sent.
enum Item {
    /// An event it wants.
    Event(Published),
    /// It lost this many events (0: an unknown number, from another run of the host): it
    /// should read the current state from the API.
    Missed(u64),
}

impl Item {
    /// The item as JSON, with the event's id.
    fn json(&self, run: i64) -> Value {
        match self {
            Item::Event(published) => {
                let mut body = published.to_json();
                body["id"] = json!(format!("{run}-{}", published.seq));
                body
            }
            Item::Missed(missed) => json!({"type": "missed", "missed": missed}),
        }
    }

    fn to_sse(&self, run: i64) -> Event {
        let event = match self {
            Item::Event(published) => Event::default()
                .id(format!("{run}-{}", published.seq))
                .event(published.event.type_name()),
            Item::Missed(_) => Event::default().event("missed"),
        };
        event.data(self.json(run).to_string())
    }
}

/// The next item for a client; `None` once the bus is gone.
async fn next(subscription: &mut Subscription, wanted: &Wanted) -> Option<Item> {
    loop {
        match subscription.recv().await {
            Ok(published) if wanted.admits(&published) => return Some(Item::Event(published)),
            Ok(_) => {}
            Err(RecvError::Lagged(missed)) => return Some(Item::Missed(missed)),
            Err(RecvError::Closed) => return None,
        }
    }
}

/// The number of the last event a reconnecting client saw, in this run of the host's
/// numbering: an id of another run is past every number of this one.
fn last_seen(id: &str, run: i64) -> Result<u64, ApiError> {
    let (id_run, number) = id
        .trim()
        .split_once('-')
        .and_then(|(r, n)| Some((r.parse::<i64>().ok()?, n.parse::<u64>().ok()?)))
        .ok_or_else(|| {
            ApiError::BadRequest(format!(
                "last event id `{id}` is not an event id as sent (RUN-NUMBER)"
            ))
        })?;
    Ok(if id_run == run { number } else { u64::MAX })
}

/// A client's items: the kept events after `last` (if it resumes), then live ones.
fn items(bus: &EventBus, wanted: Wanted, last: Option<u64>) -> impl Stream<Item = Item> + use<> {
    let (first, live): (Vec<Item>, Subscription) = match last {
        None => (Vec::new(), bus.subscribe()),
        Some(last) => {
            let resumed = bus.resume(last);
            let notice = resumed.missed.map(Item::Missed);
            let replay = resumed
                .replay
                .into_iter()
                .filter(|p| wanted.admits(p))
                .map(Item::Event);
            (notice.into_iter().chain(replay).collect(), resumed.live)
        }
    };
    let live = stream::unfold((live, wanted), |(mut live, wanted)| async move {
        let item = next(&mut live, &wanted).await?;
        Some((item, (live, wanted)))
    });
    stream::iter(first).chain(live)
}

/// Checks the query; the client's last seen id comes from the header, else the query.
fn open(
    state: &AppState,
    query: Result<Query<EventQuery>, QueryRejection>,
    header: Option<&str>,
) -> Result<(impl Stream<Item = Item> + use<>, i64), ApiError> {
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
    let run = bus.epoch();
    let last = header
        .or(query.last_event_id.as_deref())
        .map(|id| last_seen(id, run))
        .transpose()?;
    Ok((items(bus, wanted, last), run))
}

/// The live event stream as Server-Sent Events: each event's type is the SSE event name,
/// its id the SSE id, its data the event as JSON.
#[utoipa::path(
    get,
    path = "/api/events",
    operation_id = "stream_events",
    tag = "events",
    security(("bearer" = ["read"])),
    params(
        EventQuery,
        ("Last-Event-ID" = Option<String>, Header, description = "The last event id seen: the kept events after it come first."),
    ),
    responses(
        (status = 200, description = "The stream, until the client leaves.", body = String, content_type = "text/event-stream"),
        (status = 400, description = "A query parameter or the last event id is malformed.", body = ErrorBody),
    )
)]
async fn events(
    State(state): State<AppState>,
    headers: HeaderMap,
    query: Result<Query<EventQuery>, QueryRejection>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let header = match headers.get("last-event-id") {
        None => None,
        Some(value) => Some(value.to_str().map_err(|_| {
            ApiError::BadRequest("Last-Event-ID must be an event id as sent".into())
        })?),
    };
    let (items, run) = open(&state, query, header)?;
    let stream = items.map(move |item| Ok(item.to_sse(run)));
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}

/// The live event stream over a WebSocket: one text message per event, its JSON.
#[utoipa::path(
    get,
    path = "/api/events/ws",
    operation_id = "stream_events_ws",
    tag = "events",
    security(("bearer" = ["read"])),
    params(EventQuery),
    responses(
        (status = 101, description = "Switched to the WebSocket protocol."),
        (status = 400, description = "Not a WebSocket handshake, or a query parameter is malformed.", body = ErrorBody),
        (status = 426, description = "The connection cannot be upgraded.", body = ErrorBody),
    )
)]
async fn websocket(
    State(state): State<AppState>,
    query: Result<Query<EventQuery>, QueryRejection>,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<Response, ApiError> {
    let upgrade = upgrade.map_err(|rejection| ApiError::Rejected {
        status: rejection.status(),
        message: rejection.body_text(),
    })?;
    let (items, run) = open(&state, query, None)?;
    Ok(upgrade
        .on_upgrade(move |socket| forward(socket, items, run))
        .into_response())
}

/// Sends `items` as JSON text messages until the client leaves. A send waits for the
/// client, so a slow one falls behind on the bus (and is told what it missed) instead of
/// being buffered for.
async fn forward(mut socket: WebSocket, items: impl Stream<Item = Item>, run: i64) {
    let mut items = std::pin::pin!(items);
    loop {
        tokio::select! {
            item = items.next() => {
                let Some(item) = item else { return };
                let text = item.json(run).to_string();
                if socket.send(Message::Text(text.into())).await.is_err() {
                    return;
                }
            }
            incoming = socket.recv() => match incoming {
                Some(Ok(Message::Close(_)) | Err(_)) | None => return,
                Some(Ok(_)) => {}
            },
        }
    }
}
