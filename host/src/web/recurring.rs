//! `/recurring`: every recurring job with its schedule in words, its next and last run
//! and its last job; for admins, trigger, pause and resume buttons and a form per job
//! that shows the next fire times as the cron expression is typed
//! (`/recurring/preview`, an HTML fragment) and saves with `PUT /api/recurring/{id}`.

use super::{Layout, is_admin, render};
use crate::api::{ApiError, AppState, Caller, PreviewQuery, SessionCsrf};
use crate::cron::describe;
use crate::model::now_ms;
use crate::store::RecurringJob;
use askama::Template;
use axum::Extension;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::response::{Html, IntoResponse, Response};
use serde_json::json;

#[derive(Template)]
#[template(path = "recurring.html")]
struct RecurringPage {
    layout: Layout,
    admin: bool,
    jobs: Vec<Row>,
}

/// A recurring job as the page shows it.
struct Row {
    id: String,
    cron: String,
    words: String,
    timezone: String,
    plugin: String,
    queue: String,
    next: Option<String>,
    last: Option<String>,
    last_job: Option<(String, &'static str)>,
    paused: bool,
    /// What a save sends besides the cron expression and zone, as JSON.
    spec: String,
    /// The next fire times, drawn as the form shows them.
    preview: String,
}

impl Row {
    fn of(recurring: RecurringJob, now: i64) -> Result<Row, ApiError> {
        let definition = recurring.definition;
        let schedule = &definition.schedule;
        let query = PreviewQuery {
            cron: schedule.expression().to_owned(),
            timezone: Some(schedule.timezone().to_owned()),
            count: None,
        };
        let spec = json!({
            "plugin": definition.plugin,
            "args": definition.args,
            "queue": definition.queue,
            "priority": definition.priority,
            "max_attempts": definition.max_attempts,
            "misfire": definition.misfire,
        });
        Ok(Row {
            id: definition.id,
            cron: schedule.expression().to_owned(),
            words: describe(schedule.expression()),
            timezone: schedule.timezone().to_owned(),
            next: recurring.next_run_at.map(|at| schedule.local_rfc3339(at)),
            last: recurring.last_run_at.map(|at| schedule.local_rfc3339(at)),
            last_job: recurring.last_job_id.map(|id| {
                let state = recurring.last_job_state.map_or("deleted", |s| s.as_str());
                (id.to_string(), state)
            }),
            paused: recurring.paused,
            spec: spec.to_string(),
            preview: fragment(&query, now)?,
            plugin: definition.plugin,
            queue: definition.queue,
        })
    }
}

/// The next fire times of a schedule, or why it is refused.
#[derive(Template)]
#[template(path = "recurring_preview.html")]
struct Preview {
    words: String,
    next: Vec<String>,
    refused: Option<String>,
}

/// The preview of `query` drawn, or why it is refused.
fn fragment(query: &PreviewQuery, now: i64) -> Result<String, ApiError> {
    let preview = match query.preview(now) {
        Ok(shown) => Preview {
            words: shown.description,
            next: shown.next,
            refused: None,
        },
        Err(error) => Preview {
            words: String::new(),
            next: Vec::new(),
            refused: Some(error.to_string()),
        },
    };
    preview
        .render()
        .map_err(|e| ApiError::BadRequest(format!("the preview could not be drawn: {e}")))
}

/// `GET /recurring`.
pub(super) async fn list(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    csrf: Option<Extension<SessionCsrf>>,
) -> Result<Response, ApiError> {
    let now = now_ms();
    let jobs = state
        .store
        .list_recurring()
        .await?
        .into_iter()
        .map(|recurring| Row::of(recurring, now))
        .collect::<Result<_, _>>()?;
    let page = RecurringPage {
        layout: Layout::new(
            "Recurring jobs",
            "/recurring",
            &caller,
            csrf,
            "/api/events?types=recurring.*,job.*",
        ),
        admin: is_admin(&caller),
        jobs,
    };
    render(&page)
}

/// `GET /recurring/preview?cron=&timezone=`: the next fire times as an HTML fragment,
/// or why the schedule is refused (also 200: the form shows what it is given, and the
/// API's error layer would answer a 4xx in JSON).
pub(super) async fn preview(
    query: Result<Query<PreviewQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(query) = query?;
    Ok(Html(fragment(&query, now_ms())?).into_response())
}
