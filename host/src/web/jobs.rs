//! `/jobs`: the job list, newest first, filtered in the query string (so a view can be
//! shared) and paged by cursor, with (for admins) a form to submit a job, which posts to
//! the API, and bulk actions; `/jobs/{id}`: one job with its arguments, result or
//! error, history, progress, usage and log, links to its parents, continuations, batch
//! and workflow run, and (for admins) retry, cancel and delete.

use super::{Layout, age, is_admin, not_found, path_id, render};
use crate::api::{ApiError, AppState, Caller, SessionCsrf, search_text};
use crate::engine::bulk::{BulkAction, MAX_BULK};
use crate::model::{Job, JobId, JobLinks, JobState, Millis, now_ms, rfc3339};
use crate::store::JobFilter;
use askama::Template;
use axum::Extension;
use axum::extract::{Path, Query, RawForm, State};
use axum::response::Response;
use serde::Deserialize;

/// Jobs on one page of the list.
const PAGE: u32 = 50;

#[derive(Template)]
#[template(path = "jobs.html")]
struct JobsPage {
    layout: Layout,
    /// Whether the caller may act on jobs (and sees the controls that do).
    admin: bool,
    /// The jobs the filter matches, when one is set and the caller may act on them all.
    matching: Option<Matching>,
    /// The bulk actions: their names and labels.
    actions: [(&'static str, &'static str); 3],
    /// The loaded plugins, which the submit form offers.
    plugins: Vec<String>,
    /// Every state, with whether the filter picks it.
    states: Vec<(&'static str, bool)>,
    filter: Filter,
    /// This view's URL, which the live region refreshes from.
    here: String,
    jobs: Vec<JobRow>,
    /// The next page's URL.
    next: Option<String>,
}

/// How many jobs a filter matches, as far as a bulk action goes.
struct Matching {
    /// The jobs a bulk action would take.
    n: u64,
    /// Whether more match than it takes.
    more: bool,
}

/// `?q=&state=&queue=&plugin=&agent=&cursor=`: empty fields are no filter.
#[derive(Debug, Default, Deserialize)]
pub(super) struct Filter {
    /// Text an id starts with, or the args or error text hold.
    #[serde(default)]
    q: String,
    #[serde(default)]
    state: String,
    #[serde(default)]
    queue: String,
    #[serde(default)]
    plugin: String,
    #[serde(default)]
    agent: String,
    #[serde(default)]
    cursor: String,
}

/// `Some(text)` unless `text` is empty.
fn non_empty(text: &str) -> Option<String> {
    Some(text.to_owned()).filter(|t| !t.is_empty())
}

impl Filter {
    /// Whether any filter is set (the cursor aside).
    fn is_set(&self) -> bool {
        [&self.q, &self.state, &self.queue, &self.plugin, &self.agent]
            .iter()
            .any(|field| !field.is_empty())
    }

    /// The store's filter (first page, no size).
    fn to_store(&self) -> Result<JobFilter, ApiError> {
        let state = match self.state.as_str() {
            "" => None,
            name => Some(
                name.parse::<JobState>()
                    .map_err(|e| ApiError::invalid("state", e))?,
            ),
        };
        Ok(JobFilter {
            state,
            queue: non_empty(&self.queue),
            plugin: non_empty(&self.plugin),
            agent: non_empty(&self.agent),
            text: search_text(non_empty(&self.q))?,
            ..JobFilter::default()
        })
    }

    /// The URL of this view, from `cursor` (none: the first page).
    fn url(&self, cursor: Option<&str>) -> String {
        let mut parts = Vec::new();
        for (name, value) in [
            ("q", self.q.as_str()),
            ("state", &self.state),
            ("queue", &self.queue),
            ("plugin", &self.plugin),
            ("agent", &self.agent),
            ("cursor", cursor.unwrap_or_default()),
        ] {
            if !value.is_empty() {
                let value: String = form_urlencoded::byte_serialize(value.as_bytes()).collect();
                parts.push(format!("{name}={value}"));
            }
        }
        if parts.is_empty() {
            "/jobs".to_owned()
        } else {
            format!("/jobs?{}", parts.join("&"))
        }
    }
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
    let before = match filter.cursor.as_str() {
        "" => None,
        cursor => Some(
            cursor
                .parse::<JobId>()
                .map_err(|_| ApiError::invalid("cursor", "cursor is not a job id"))?,
        ),
    };
    let store_filter = JobFilter {
        limit: PAGE,
        before,
        ..filter.to_store()?
    };
    let page = state.store.list(&store_filter).await?;
    let next = page
        .next_cursor
        .map(|cursor| filter.url(Some(&cursor.to_string())));
    let admin = is_admin(&caller);
    let matching = if admin && filter.is_set() {
        let most = MAX_BULK as u64;
        // When the first page holds every match, they need no counting again.
        let found = if page.next_cursor.is_none() && store_filter.before.is_none() {
            page.jobs.len() as u64
        } else {
            state.store.count(&store_filter, most + 1).await?
        };
        Some(Matching {
            n: found.min(most),
            more: found > most,
        })
    } else {
        None
    };
    let mut plugins: Vec<String> = state
        .registry
        .list()
        .into_iter()
        .filter(|plugin| plugin.current.is_some())
        .map(|plugin| plugin.name)
        .collect();
    plugins.sort();
    let states = JobState::ALL
        .map(|s| (s.as_str(), Some(s) == store_filter.state))
        .to_vec();
    let view = JobsPage {
        layout: Layout::new("Jobs", "/jobs", &caller, csrf, "/api/events?types=job.*"),
        states,
        admin,
        matching,
        plugins,
        actions: [
            ("retry", "Retry"),
            ("cancel", "Cancel"),
            ("delete", "Delete"),
        ],
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
    /// Its parents, continuations, batch and workflow run step.
    links: JobLinks,
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
    /// About how long the run still needs, in words, while it runs.
    eta: Option<String>,
}

/// About how long a run that started `elapsed` ms ago and is `percent` done still needs,
/// if it kept its pace: `None` before it has measured any pace, or once done.
fn remaining(elapsed: Millis, percent: u8) -> Option<Millis> {
    let percent = i64::from(percent);
    (1..100)
        .contains(&percent)
        .then(|| elapsed.max(0) * (100 - percent) / percent)
}

/// One state change.
struct Step {
    at: String,
    state: &'static str,
    reason: String,
}

/// `value` as indented JSON.
pub(super) fn pretty(value: &serde_json::Value) -> String {
    serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string())
}

/// `GET /jobs/{id}`.
pub(super) async fn detail(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    csrf: Option<Extension<SessionCsrf>>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let detail = state
        .store
        .get(path_id(&id, "job")?)
        .await?
        .ok_or_else(|| not_found("job", &id))?;
    let id = detail.job.id;
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
            eta: job
                .started_at
                .filter(|_| job.state == JobState::Processing)
                .and_then(|started| remaining(now_ms() - started, p.percent))
                .map(age),
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
            csrf,
            format!("/api/events?job_id={id}"),
        ),
        admin: is_admin(&caller),
        job: view,
        history: history.collect(),
        logs: logs.collect(),
        links: detail.links,
    };
    render(&page)
}

/// `POST /jobs/bulk` (a form): retry, cancel or delete the jobs picked (`id`, repeated),
/// or with `all` every job the filter fields match; answers what it did, as a status
/// line for the page.
pub(super) async fn bulk(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    RawForm(form): RawForm,
) -> Result<Response, ApiError> {
    caller.admin()?;
    let mut filter = Filter::default();
    let (mut action, mut ids, mut all) = (None, Vec::new(), false);
    for (name, value) in form_urlencoded::parse(&form) {
        match name.as_ref() {
            "action" => action = BulkAction::parse(&value),
            "id" => ids.push(
                value
                    .parse::<JobId>()
                    .map_err(|_| ApiError::invalid("id", "not a job id"))?,
            ),
            "all" => all = value == "1",
            "q" => filter.q = value.into_owned(),
            "state" => filter.state = value.into_owned(),
            "queue" => filter.queue = value.into_owned(),
            "plugin" => filter.plugin = value.into_owned(),
            "agent" => filter.agent = value.into_owned(),
            _ => {}
        }
    }
    let action = action.ok_or_else(|| ApiError::invalid("action", "retry, cancel or delete"))?;
    if all {
        if !filter.is_set() {
            return Err(ApiError::invalid(
                "all",
                "a bulk action over all jobs needs a filter",
            ));
        }
        ids = state.scheduler.matching(&filter.to_store()?).await?;
    }
    let done = state.scheduler.bulk(action, &ids, now_ms()).await;
    let verb = match action {
        BulkAction::Retry => "Retried",
        BulkAction::Cancel => "Cancelled",
        BulkAction::Delete => "Deleted",
    };
    let skipped = match done.skipped {
        0 => String::new(),
        n => format!("; {n} skipped (the action does not apply to them)"),
    };
    let line = format!("{verb} {} of {} jobs{skipped}.", done.changed, done.matched);
    render(&BulkResult { line })
}

/// What a bulk action did, as the page shows it.
#[derive(Template)]
#[template(
    source = "<p id=\"bulk-result\" role=\"status\">{{ line }}</p>",
    ext = "html"
)]
struct BulkResult {
    line: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_time_left_follows_the_pace_so_far() {
        assert_eq!(remaining(10_000, 25), Some(30_000));
        assert_eq!(remaining(10_000, 50), Some(10_000));
        assert_eq!(remaining(9_900, 99), Some(100));
        assert_eq!(remaining(10_000, 0), None, "no pace measured yet");
        assert_eq!(remaining(10_000, 100), None, "done");
        assert_eq!(remaining(-5, 50), Some(0), "a clock step back is no time");
    }
}
