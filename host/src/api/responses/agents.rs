//! Answers about agents.

use super::TaskView;
use crate::model::agent::Agent;
use crate::store::agents::AgentMetrics;
use serde::Serialize;
use utoipa::ToSchema;

/// An agent with its metrics: `POST /api/agents` (201), `PATCH /api/agents/{id}`,
/// `POST /api/agents/{id}/heartbeat`, `GET /api/agents/{id}` (with `recent_jobs`), and
/// each agent of `GET /api/agents`.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct AgentView {
    /// The agent as stored: its definition, `status`, `status_reason`, `health_misses`,
    /// `last_health_check_at`, `last_heartbeat_at`, `current_jobs`, `created_at` and
    /// `updated_at`.
    #[serde(flatten)]
    pub(crate) agent: Agent,
    /// What it has done.
    pub(crate) metrics: AgentMetrics,
    /// Its latest tasks, newest first: only in `GET /api/agents/{id}`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) recent_jobs: Option<Vec<TaskView>>,
}

/// `GET /api/agents`.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct AgentList {
    /// Every agent.
    pub(crate) agents: Vec<AgentView>,
}
