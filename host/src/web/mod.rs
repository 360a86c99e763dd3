//! The dashboard: server-rendered pages (askama templates in `host/templates/`) with
//! htmx, behind the API's access control. A page reads as plain HTML without
//! JavaScript; with it, one event stream per page refreshes the page's live region when
//! something changes, and admins' buttons call the JSON API with the session's CSRF
//! token.
//!
//! - `login.rs`: the login page, which sets the session cookie;
//! - `overview.rs`: `/`, counts, throughput, queues, agents and open alert incidents;
//! - `jobs.rs`: `/jobs` (the list and its filters) and `/jobs/{id}`, which links to the
//!   job's parents, continuations, batch and workflow run;
//! - `batches.rs`: `/batches/{id}`, a batch's jobs and callbacks with their states;
//! - `workflow_runs.rs`: `/workflow-runs/{id}`, a run's stages as columns of steps;
//! - `recurring.rs`: `/recurring`, recurring jobs and their schedules;
//! - `queues.rs`: `/queues`, every queue with pause and resume for admins;
//! - `plugins.rs`: `/plugins`, every plugin with its version, limits and load error;
//! - `agents.rs`: `/agents`, every agent with its status, health and metrics;
//! - `alerts.rs`: `/alerts`, the alert rules and their incidents;
//! - `chart.rs`: bar charts as inline SVG;
//! - `assets.rs`: the vendored and own static files, compiled in.

mod agents;
mod alerts;
mod assets;
mod batches;
mod chart;
mod jobs;
mod login;
mod overview;
mod plugins;
mod queues;
mod recurring;
mod workflow_runs;

use crate::api::{ApiError, AppState, Caller, SessionCsrf};
use crate::model::names::shown;
use crate::model::token::Role;
use crate::model::{JobId, Millis};
use askama::Template;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Router};

/// The dashboard's routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(overview::page))
        .route("/jobs", get(jobs::list))
        .route("/jobs/bulk", axum::routing::post(jobs::bulk))
        .route("/jobs/{id}", get(jobs::detail))
        .route("/batches/{id}", get(batches::page))
        .route("/workflow-runs/{id}", get(workflow_runs::page))
        .route("/queues", get(queues::page))
        .route("/plugins", get(plugins::page))
        .route("/agents", get(agents::page))
        .route("/alerts", get(alerts::page))
        .route("/recurring", get(recurring::list))
        .route("/recurring/preview", get(recurring::preview))
        .route(crate::api::LOGIN_PAGE, get(login::form).post(login::submit))
        .route("/static/{file}", get(assets::file))
}

/// One entry of the main navigation.
#[derive(Debug)]
struct NavItem {
    href: &'static str,
    label: &'static str,
    current: bool,
}

/// The pages in the main navigation.
const NAV: [(&str, &str); 7] = [
    ("/", "Overview"),
    ("/jobs", "Jobs"),
    ("/recurring", "Recurring"),
    ("/queues", "Queues"),
    ("/plugins", "Plugins"),
    ("/agents", "Agents"),
    ("/alerts", "Alerts"),
];

/// What every page's frame shows.
#[derive(Debug)]
struct Layout {
    /// The page's title.
    title: String,
    /// The navigation, with the current page marked.
    nav: Vec<NavItem>,
    /// Who is logged in.
    who: String,
    /// Their role.
    role: &'static str,
    /// The session's CSRF token, sent with every change the page makes.
    csrf: Option<String>,
    /// The event stream the page listens to.
    events: String,
    /// The static files' version, part of their URLs.
    version: &'static str,
}

impl Layout {
    /// The frame of the page `current` (a navigation `href`) titled `title`, for
    /// `caller`, listening to `events`.
    fn new(
        title: impl Into<String>,
        current: &str,
        caller: &Caller,
        csrf: Option<Extension<SessionCsrf>>,
        events: impl Into<String>,
    ) -> Layout {
        Layout {
            title: title.into(),
            nav: NAV
                .iter()
                .map(|(href, label)| NavItem {
                    href,
                    label,
                    current: *href == current,
                })
                .collect(),
            who: caller.name.as_deref().unwrap_or("no-auth").to_owned(),
            role: caller.role.as_str(),
            csrf: csrf.map(|Extension(SessionCsrf(token))| token),
            events: events.into(),
            version: assets::VERSION,
        }
    }
}

/// Whether `caller` may change things (and so sees the buttons that do).
fn is_admin(caller: &Caller) -> bool {
    caller.role == Role::Admin
}

/// A page's 404: no `what` (job, batch, workflow run) with the path's `id`.
fn not_found(what: &str, id: &str) -> ApiError {
    ApiError::NotFound(format!("no {what} {}", shown(id)))
}

/// The id in a page's path; one that is no id names nothing, so it is [`not_found`] too.
fn path_id(id: &str, what: &str) -> Result<JobId, ApiError> {
    id.parse().map_err(|_| not_found(what, id))
}

/// `template` rendered as an HTML answer.
fn render(template: &impl Template) -> Result<Response, ApiError> {
    let html = template
        .render()
        .map_err(|e| ApiError::BadRequest(format!("the page could not be drawn: {e}")))?;
    Ok(Html(html).into_response())
}

/// `ms` in words: seconds, minutes, hours or days.
fn age(ms: Millis) -> String {
    let seconds = ms.max(0) / 1000;
    match seconds {
        0..60 => format!("{seconds} s"),
        60..3600 => format!("{} min", seconds / 60),
        3600..86_400 => format!("{} h", seconds / 3600),
        _ => format!("{} d", seconds / 86_400),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_age_is_told_in_its_largest_whole_unit() {
        assert_eq!(age(-5), "0 s");
        assert_eq!(age(59_999), "59 s");
        assert_eq!(age(60_000), "1 min");
        assert_eq!(age(2 * 3_600_000 + 1), "2 h");
        assert_eq!(age(3 * 86_400_000), "3 d");
    }
}
