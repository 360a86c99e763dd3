//! `/agents`: every agent with its status and why, the jobs holding it, its health
//! checks and heartbeats, and what it has done (runs, outcomes, utilisation). Live.

use super::{Layout, render};
use crate::api::{ApiError, AppState, Caller, SessionCsrf};
use crate::model::{now_ms, rfc3339};
use askama::Template;
use axum::Extension;
use axum::extract::State;
use axum::response::Response;

#[derive(Template)]
#[template(path = "agents.html")]
struct AgentsPage {
    layout: Layout,
    agents: Vec<AgentRow>,
}

/// One agent's line.
struct AgentRow {
    id: String,
    name: String,
    status: &'static str,
    reason: Option<String>,
    /// The jobs holding it now.
    jobs: Vec<String>,
    max_concurrency: u32,
    /// Its health: checks missed in a row, last check and heartbeat, in words.
    health: String,
    tasks_run: u64,
    succeeded: u64,
    failed: u64,
    /// Share of the last hour its slots were busy, in percent.
    utilisation: u32,
}

/// `GET /agents`.
pub(super) async fn page(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    csrf: Option<Extension<SessionCsrf>>,
) -> Result<Response, ApiError> {
    let now = now_ms();
    let mut agents = Vec::new();
    for agent in state.store.agents().await? {
        let metrics = state.store.agent_metrics(&agent.spec.id, now).await?;
        let when = |at: Option<i64>| at.map_or_else(|| "never".to_owned(), rfc3339::format);
        agents.push(AgentRow {
            status: agent.status.as_str(),
            reason: agent.status_reason,
            jobs: agent.current_jobs.iter().map(ToString::to_string).collect(),
            max_concurrency: agent.spec.max_concurrency,
            health: format!(
                "{} checks missed; last check {}; last heartbeat {}",
                agent.health_misses,
                when(agent.last_health_check_at),
                when(agent.last_heartbeat_at)
            ),
            tasks_run: metrics.tasks_run,
            succeeded: metrics.succeeded,
            failed: metrics.failed,
            utilisation: (metrics.utilisation_last_hour.clamp(0.0, 1.0) * 100.0).round() as u32,
            id: agent.spec.id,
            name: agent.spec.name,
        });
    }
    let page = AgentsPage {
        layout: Layout::new(
            "Agents",
            "/agents",
            &caller,
            csrf,
            "/api/events?types=agent.*,job.started,job.succeeded,job.failed,job.cancelled",
        ),
        agents,
    };
    render(&page)
}
