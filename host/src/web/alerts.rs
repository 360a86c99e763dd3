//! `/alerts`: the alert rules, each condition in words and its webhook (to a `read`
//! token only the URL's scheme and host, never a secret), and the incidents: open ones
//! first, then the latest resolved. Live. The overview lists the open incidents too.

use super::{Layout, is_admin, render};
use crate::api::{AlertView, ApiError, AppState, Caller, IncidentView, SessionCsrf};
use crate::model::alert::AlertCondition;
use crate::store::alerts::IncidentFilter;
use askama::Template;
use axum::Extension;
use axum::extract::State;
use axum::response::Response;

/// Most open incidents shown.
const OPEN_SHOWN: u32 = 100;
/// Most resolved incidents shown.
const RESOLVED_SHOWN: u32 = 20;

#[derive(Template)]
#[template(path = "alerts.html")]
struct AlertsPage {
    layout: Layout,
    rules: Vec<RuleRow>,
    open: Vec<IncidentView>,
    resolved: Vec<IncidentView>,
}

/// One rule's line.
struct RuleRow {
    id: String,
    /// What it watches, in words.
    condition: String,
    /// Where its incidents are posted, and whether signed, in words.
    webhook: String,
    enabled: bool,
    updated: String,
}

impl From<AlertView> for RuleRow {
    fn from(rule: AlertView) -> RuleRow {
        RuleRow {
            condition: in_words(&rule.condition),
            webhook: rule.webhook.map_or_else(
                || "none: logged and published only".to_owned(),
                |hook| {
                    let signed = if hook.has_secret {
                        "signed"
                    } else {
                        "unsigned"
                    };
                    format!("{} ({signed})", hook.url)
                },
            ),
            id: rule.id,
            enabled: rule.enabled,
            updated: rule.updated_at,
        }
    }
}

/// What `condition` watches, in words.
fn in_words(condition: &AlertCondition) -> String {
    let scope = |plugin: &Option<String>, queue: &Option<String>| {
        let mut parts = Vec::new();
        if let Some(plugin) = plugin {
            parts.push(format!("of plugin {plugin}"));
        }
        if let Some(queue) = queue {
            parts.push(format!("in queue {queue}"));
        }
        if parts.is_empty() {
            String::new()
        } else {
            format!(" {}", parts.join(" "))
        }
    };
    match condition {
        AlertCondition::JobFailed { plugin, queue } => {
            format!("a job{} fails for good", scope(plugin, queue))
        }
        AlertCondition::AgentOffline { agent } => match agent {
            Some(agent) => format!("agent {agent} goes offline or into error"),
            None => "an agent goes offline or into error".to_owned(),
        },
        AlertCondition::QueueDepth { queue, above } => {
            format!("more than {above} jobs wait in queue {queue}")
        }
        AlertCondition::QueueAge {
            queue,
            above_seconds,
        } => format!("a job has waited more than {above_seconds} s in queue {queue}"),
        AlertCondition::FailureRate {
            plugin,
            queue,
            above,
            window_seconds,
            min_runs,
        } => format!(
            "more than {}% of the runs{} in the last {window_seconds} s fail (once at least {min_runs} ran)",
            (above * 1000.0).round() / 10.0,
            scope(plugin, queue)
        ),
        AlertCondition::PluginLoadFailed { plugin } => match plugin {
            Some(plugin) => format!("plugin {plugin} fails to load"),
            None => "a plugin fails to load".to_owned(),
        },
    }
}

/// The incidents `open` (or resolved), newest first, at most `limit`.
async fn incidents(
    state: &AppState,
    open: bool,
    limit: u32,
) -> Result<Vec<IncidentView>, ApiError> {
    let filter = IncidentFilter {
        open: Some(open),
        limit,
    };
    let found = state.store.incidents(filter).await?;
    Ok(found.into_iter().map(IncidentView::from).collect())
}

/// The open incidents, newest first.
pub(super) async fn open_incidents(state: &AppState) -> Result<Vec<IncidentView>, ApiError> {
    incidents(state, true, OPEN_SHOWN).await
}

/// `GET /alerts`.
pub(super) async fn page(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    csrf: Option<Extension<SessionCsrf>>,
) -> Result<Response, ApiError> {
    let admin = is_admin(&caller);
    let rules = state.store.alert_rules().await?;
    let page = AlertsPage {
        layout: Layout::new(
            "Alerts",
            "/alerts",
            &caller,
            csrf,
            "/api/events?types=alert.*",
        ),
        rules: rules
            .into_iter()
            .map(|rule| RuleRow::from(AlertView::new(rule, admin)))
            .collect(),
        open: open_incidents(&state).await?,
        resolved: incidents(&state, false, RESOLVED_SHOWN).await?,
    };
    render(&page)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conditions_read_as_words() {
        let cases = [
            (
                AlertCondition::JobFailed {
                    plugin: None,
                    queue: Some("night".into()),
                },
                "a job in queue night fails for good",
            ),
            (
                AlertCondition::AgentOffline {
                    agent: Some("coder".into()),
                },
                "agent coder goes offline or into error",
            ),
            (
                AlertCondition::QueueAge {
                    queue: "default".into(),
                    above_seconds: 90,
                },
                "a job has waited more than 90 s in queue default",
            ),
            (
                AlertCondition::FailureRate {
                    plugin: Some("flaky".into()),
                    queue: None,
                    above: 0.07,
                    window_seconds: 600,
                    min_runs: 5,
                },
                "more than 7% of the runs of plugin flaky in the last 600 s fail (once at least 5 ran)",
            ),
            (
                AlertCondition::PluginLoadFailed { plugin: None },
                "a plugin fails to load",
            ),
        ];
        for (condition, words) in cases {
            assert_eq!(in_words(&condition), words);
        }
    }
}
