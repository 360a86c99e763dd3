//! `/plugins`: every plugin found, loaded, compiling or not: its version (digest and load time),
//! limits, the limits lowered to the operator's maxima, retries and queue, and its
//! load error, shown first and prominently.

use super::{Layout, render};
use crate::api::{ApiError, AppState, Caller, PluginState, PluginView, Retry, SessionCsrf};
use askama::Template;
use axum::Extension;
use axum::extract::State;
use axum::response::Response;

#[derive(Template)]
#[template(path = "plugins.html")]
struct PluginsPage {
    layout: Layout,
    /// How many plugins' latest module or manifest failed to load.
    broken: usize,
    plugins: Vec<PluginView>,
}

impl PluginsPage {
    /// When failed attempts are retried, in words.
    fn retries(&self, retry: &Retry) -> String {
        match retry {
            Retry::Delays { delays_seconds } => {
                let waits: Vec<String> = delays_seconds.iter().map(|s| format!("{s} s")).collect();
                format!("retried after {}", waits.join(", "))
            }
            Retry::Backoff(_) => "retried with backoff".to_owned(),
        }
    }
}

/// `GET /plugins`.
pub(super) async fn page(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    csrf: Option<Extension<SessionCsrf>>,
) -> Result<Response, ApiError> {
    let plugins: Vec<PluginView> = state
        .registry
        .list()
        .into_iter()
        .map(PluginView::from)
        .collect();
    let broken = plugins.iter().filter(|p| p.error.is_some()).count();
    let page = PluginsPage {
        layout: Layout::new(
            "Plugins",
            "/plugins",
            &caller,
            csrf,
            "/api/events?types=plugin.*,alert.*",
        ),
        broken,
        plugins,
    };
    render(&page)
}
