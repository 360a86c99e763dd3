//! `/`: what an operator looks at first: jobs per state, throughput (per minute over the
//! last hour, per day over 30 days), each queue's depth, oldest wait and whether anyone
//! serves it, agents by status, and the open alert incidents. Live.

use super::alerts::open_incidents;
use super::chart::{self, Bar};
use super::queues::QueueRow;
use super::{Layout, render};
use crate::api::{ApiError, AppState, Caller, IncidentView, SessionCsrf, every_queue};
use crate::model::agent::AgentStatus;
use crate::model::stats::{Resolution, Span, series};
use crate::model::{JobState, Millis, now_ms, rfc3339};
use askama::Template;
use axum::Extension;
use axum::extract::State;
use axum::response::Response;

#[derive(Template)]
#[template(path = "overview.html")]
struct Overview {
    layout: Layout,
    /// Jobs per state, every state shown.
    states: Vec<(&'static str, u64)>,
    /// Runs per minute over the last hour (SVG).
    last_hour: String,
    /// Runs per day over 30 days (SVG).
    last_month: String,
    queues: Vec<QueueRow>,
    /// Agents per status, every status shown.
    agents: Vec<(&'static str, usize)>,
    /// The open alert incidents, newest first.
    incidents: Vec<IncidentView>,
}

/// `GET /`.
pub(super) async fn page(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    csrf: Option<Extension<SessionCsrf>>,
) -> Result<Response, ApiError> {
    let now = now_ms();
    let queues = every_queue(&state).await?;
    let count = |state: JobState| {
        let per_queue = queues.iter().filter_map(|q| q.counts.get(state.as_str()));
        per_queue.sum()
    };
    let states = JobState::ALL.map(|s| (s.as_str(), count(s))).to_vec();
    let agents = state.store.agents().await?;
    let statuses = [
        AgentStatus::Busy,
        AgentStatus::Idle,
        AgentStatus::Offline,
        AgentStatus::Error,
    ];
    let agents = statuses
        .map(|s| (s.as_str(), agents.iter().filter(|a| a.status == s).count()))
        .to_vec();
    let page = Overview {
        layout: Layout::new("Overview", "/", &caller, csrf, "/api/events"),
        states,
        last_hour: throughput(
            &state,
            "Runs per minute, last hour",
            Resolution::Minute,
            60,
            now,
        )
        .await?,
        last_month: throughput(
            &state,
            "Runs per day, last 30 days",
            Resolution::Day,
            30,
            now,
        )
        .await?,
        queues: queues.into_iter().map(QueueRow::from).collect(),
        agents,
        incidents: open_incidents(&state).await?,
    };
    render(&page)
}

/// A chart of the runs in the last `buckets` buckets of `resolution` up to `now`.
async fn throughput(
    state: &AppState,
    title: &str,
    resolution: Resolution,
    buckets: i64,
    now: Millis,
) -> Result<String, ApiError> {
    let from = resolution.bucket_of(now) - (buckets - 1) * resolution.millis();
    let span = Span::new(from, now + 1, resolution);
    let rows = state.store.rollup(resolution, span.from, span.to).await?;
    let all = series(&rows, &span, None);
    let bars: Vec<Bar> = all[0]
        .buckets
        .iter()
        .map(|rollup| Bar {
            succeeded: rollup.succeeded as f64,
            failed: rollup.failed as f64,
        })
        .collect();
    let label = |at: Millis| {
        let text = rfc3339::format(at);
        match resolution {
            Resolution::Day => text[..10].to_owned(),
            _ => text[11..16].to_owned(),
        }
    };
    Ok(chart::bars(
        title,
        &bars,
        &label(span.from),
        &label(span.start(span.len().saturating_sub(1))),
    ))
}
