//! `/jobs`: the job list, newest first, filtered in the query string (so a view can be
//! shared) and paged by cursor; `/jobs/{id}`: one job with its arguments, result or
//! error, history, progress, usage and log, and (for admins) retry, cancel and delete.

use super::{Layout, is_admin, render};
use crate::api::{ApiError, AppState, Caller, SessionCsrf};
use crate::model::{Job, JobId, JobState, rfc3339};
use crate::store::JobFilter;
use askama::Template;
use axum::Extension;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use serde::Deserialize;

/// Jobs on one page of the list.
const PAGE: u32 = 50;

#[derive(Template)]
#[template(path = "jobs.html")]
struct JobsPage {
    layout: Layout,
    /// Every state, with whether the filter picks it.
    states: Vec<(&'static str, bool)>,
    filter: Filter,
    /// This view's URL, which the live region refreshes from.
    here: String,
    jobs: Vec<JobRow>,
    /// The next page's URL.
    next: Option<String>,
}

/// `?state=&queue=&plugin=&cursor=`: empty fields are no filter.
#[derive(Debug, Default, Deserialize)]
pub(super) struct Filter {
    #[serde(default)]
    state: String,
    #[serde(default)]
    queue: String,
    #[serde(default)]
    plugin: String,
    #[serde(default)]
    cursor: String,
}

impl Filter {
    /// The URL of this view, from `cursor` (none: the first page).
    fn url(&self, cursor: Option<&str>) -> String {
        let mut parts = Vec::new();
        for (name, value) in [
            ("state", self.state.as_str()),
            ("queue", &self.queue),
            ("plugin", &self.plugin),
            ("cursor", cursor.unwrap_or_default()),
        ] {
            if !value.is_empty() {
                parts.push(format!("{name}={}", encoded(value)));
            }
        }
        if parts.is_empty() {
            "/jobs".to_owned()
        } else {
            format!("/jobs?{}", parts.join("&"))
        }
    }
}

/// `text` percent-encoded for a query value.
fn encoded(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                char::from(b).to_string()
            }
            other => format!("%{other:02X}"),
        })
        .collect()
}

/// A job's line in the list.
struct JobRow {
    id: String,
    plugin: String,
    queue: String,
    state: &'static str,
    attempt: u32,
    created: String,
}

impl From<Job> for JobRow {
    fn from(job: Job) -> JobRow {
        JobRow {
            id: job.id.to_string(),
            state: job.state.as_str(),
            attempt: job.attempt,
            created: rfc3339::format(job.created_at),
            plugin: job.plugin,
            queue: job.queue,
        }
    }
}

/// `GET /jobs`.
pub(super) async fn list(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    csrf: Option<Extension<SessionCsrf>>,
    Query(filter): Query<Filter>,
) -> Result<Response, ApiError> {
    let wanted = match filter.state.as_str() {
        "" => None,
        name => Some(
            name.parse::<JobState>()
                .map_err(|e| ApiError::invalid("state", e))?,
        ),
    };
    let before = match filter.cursor.as_str() {
        "" => None,
        cursor => Some(
            cursor
                .parse::<JobId>()
                .map_err(|_| ApiError::invalid("cursor", "cursor is not a job id"))?,
        ),
    };
    let non_empty = |text: &str| Some(text.to_owned()).filter(|t| !t.is_empty());
    let page = state
        .store
        .list(&JobFilter {
            state: wanted,
            queue: non_empty(&filter.queue),
            plugin: non_empty(&filter.plugin),
            limit: PAGE,
            before,
        })
        .await?;
    let next = page
        .next_cursor
        .map(|cursor| filter.url(Some(&cursor.to_string())));
    let states = JobState::ALL
        .map(|s| (s.as_str(), Some(s) == wanted))
        .to_vec();
    let view = JobsPage {
        layout: Layout::new(
            "Jobs",
            "/jobs",
            &caller,
            csrf.map(|Extension(c)| c),
            "/api/events?types=job.*",
        ),
        states,
        here: filter.url(non_empty(&filter.cursor).as_deref()),
        jobs: page.jobs.into_iter().map(JobRow::from).collect(),
        next,
        filter,
    };
    render(&view)
}

#[derive(Template)]
#[template(path = "job.html")]
struct JobPage {
    layout: Layout,
    admin: bool,
    job: JobView,
    history: Vec<Step>,
    /// Log lines, formatted.
    logs: Vec<String>,
}

/// What the job page shows of a job.
struct JobView {
    id: String,
    state: &'static str,
    plugin: String,
    digest: Option<String>,
    queue: String,
    attempt: u32,
    max_attempts: u32,
    agent: Option<String>,
    usage: Option<String>,
    progress: Option<ProgressView>,
    args: String,
    result: Option<String>,
    error: Option<String>,
    retryable: bool,
    cancellable: bool,
    deletable: bool,
}

struct ProgressView {
    percent: u8,
    message: String,
}

/// One state change.
struct Step {
    at: String,
    state: &'static str,
    reason: String,
}

/// `value` as indented JSON.
fn pretty(value: &serde_json::Value) -> String {
    serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string())
}

/// `GET /jobs/{id}`.
pub(super) async fn detail(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    csrf: Option<Extension<SessionCsrf>>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id: JobId = id
        .parse()
        .map_err(|_| ApiError::NotFound(format!("no job {}", crate::model::names::shown(&id))))?;
    let detail = state
        .store
        .get(id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no job {id}")))?;
    let job = detail.job;
    let usage = job.usage.map(|u| {
        format!(
            "{} fuel, {} ms, {} KiB peak memory",
            u.fuel_consumed,
            u.wall_ms,
            u.memory_peak_bytes / 1024
        )
    });
    let view = JobView {
        id: job.id.to_string(),
        state: job.state.as_str(),
        retryable: matches!(job.state, JobState::Failed | JobState::Cancelled),
        cancellable: !job.state.is_terminal(),
        deletable: job.state != JobState::Processing,
        digest: job.plugin_digest,
        queue: job.queue,
        attempt: job.attempt,
        max_attempts: job.max_attempts,
        agent: job.agent_id,
        usage,
        progress: job.progress.map(|p| ProgressView {
            percent: p.percent,
            message: p.message,
        }),
        args: pretty(&job.args.to_value()),
        result: job.result.as_ref().map(pretty),
        error: job
            .error
            .map(|e| format!("{}: {}", e.kind.as_str(), e.message)),
        plugin: job.plugin,
    };
    let history = detail.history.into_iter().map(|t| Step {
        at: rfc3339::format(t.at),
        state: t.state.as_str(),
        reason: t.reason,
    });
    let logs = detail.logs.into_iter().map(|stored| {
        let line = stored.line;
        format!(
            "{} {:5} [attempt {}] {}",
            rfc3339::format(line.at),
            line.level,
            stored.attempt,
            line.message
        )
    });
    let page = JobPage {
        layout: Layout::new(
            format!("Job {id}"),
            "/jobs",
            &caller,
            csrf.map(|Extension(c)| c),
            format!("/api/events?job_id={id}"),
        ),
        admin: is_admin(&caller),
        job: view,
        history: history.collect(),
        logs: logs.collect(),
    };
    render(&page)
}
