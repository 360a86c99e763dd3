//! Storage of agents: the [`AgentStore`] trait, and the types that agents, their locks
//! ([`super::AgentLocks`]) and tasks ([`super::TaskStore`]) are stored and read with.
//! What the agent lock is: see [`super::locks`].

use super::{NewJob, Result};
use crate::model::agent::{Agent, AgentSpec, Health, TaskPriority};
use crate::model::{Job, JobId, JobState, Millis};
use async_trait::async_trait;
use std::collections::HashMap;

/// A task to be stored with its job.
#[derive(Debug, Clone)]
pub struct NewTask {
    /// The task's id.
    pub id: JobId,
    /// The command for the agent.
    pub command: String,
    /// The repository it acts on.
    pub repository_path: String,
    /// How urgent it is.
    pub priority: TaskPriority,
    /// The job that runs it, bound to its agent.
    pub job: NewJob,
}

/// The last agent command a task's job ran.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecRecord {
    /// `exited`, `timeout` or `spawn_failure`.
    pub outcome: &'static str,
    /// Exit code; `None` when killed or never started.
    pub exit_code: Option<i32>,
    /// The last MiB of its stdout.
    pub stdout: String,
    /// The last MiB of its stderr.
    pub stderr: String,
    /// How long it ran.
    pub duration_ms: u64,
}

/// A task with its job as stored.
#[derive(Debug, Clone)]
pub struct Task {
    /// The task's id.
    pub id: JobId,
    /// The command.
    pub command: String,
    /// The repository.
    pub repository_path: String,
    /// How urgent it is.
    pub priority: TaskPriority,
    /// Its job: where it is, its attempts, times, progress and error, and the agent it
    /// is bound to.
    pub job: Job,
    /// Its last command's outcome.
    pub exec: Option<ExecRecord>,
}

impl Task {
    /// The agent its job is bound to.
    pub fn agent_id(&self) -> &str {
        self.job.agent_id.as_deref().unwrap_or_default()
    }
}

/// Filters for [`super::TaskStore::tasks`].
#[derive(Debug, Clone, Default)]
pub struct TaskFilter {
    /// Only tasks bound to this agent.
    pub agent_id: Option<String>,
    /// Only tasks in this state.
    pub state: Option<JobState>,
    /// Most tasks returned, newest first.
    pub limit: u32,
}

/// What [`super::AgentLocks::acquire_agent`] got.
#[derive(Debug, Clone)]
pub struct Acquired {
    /// `Ok` when the job now holds the agent; why it cannot be had otherwise.
    pub held: Result<(), String>,
    /// The agent, if it is registered.
    pub agent: Option<Agent>,
    /// The task the job runs, if it is a task's job.
    pub task_id: Option<JobId>,
}

/// Per-agent figures.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, utoipa::ToSchema)]
pub struct AgentMetrics {
    /// Jobs bound to the agent that started.
    pub tasks_run: u64,
    /// Of which succeeded.
    pub succeeded: u64,
    /// Of which failed.
    pub failed: u64,
    /// Mean run time of the finished ones.
    pub mean_duration_ms: Option<u64>,
    /// 95th percentile run time of the finished ones.
    pub p95_duration_ms: Option<u64>,
    /// Share of the last hour its task slots were busy, 0 to 1.
    pub utilisation_last_hour: f64,
}

/// Storage of agents: their definitions, health, heartbeats, load and metrics, and the
/// jobs bound to them.
#[async_trait]
pub trait AgentStore: Send + Sync {
    /// Registers a new agent.
    ///
    /// # Errors
    /// [`super::Error::Conflict`] when the id is taken.
    async fn create_agent(&self, spec: AgentSpec, now: Millis) -> Result<Agent>;

    /// Creates an agent or replaces its definition, keeping its health.
    async fn put_agent(&self, spec: AgentSpec, now: Millis) -> Result<Agent>;

    /// One agent.
    async fn agent(&self, id: &str) -> Result<Option<Agent>>;

    /// Every agent, by id.
    async fn agents(&self) -> Result<Vec<Agent>>;

    /// Removes an agent; returns it as it was, with the jobs that were holding it (with
    /// `force`).
    ///
    /// # Errors
    /// [`super::Error::AgentNotFound`]; [`super::Error::Conflict`] while it runs
    /// something, unless `force`.
    async fn delete_agent(&self, id: &str, force: bool) -> Result<Agent>;

    /// Records a heartbeat from an agent managed outside the host: it is healthy.
    ///
    /// # Errors
    /// [`super::Error::AgentNotFound`].
    async fn agent_heartbeat(&self, id: &str, now: Millis) -> Result<Agent>;

    /// Records a health check's conclusion.
    async fn set_agent_health(
        &self,
        id: &str,
        health: Health,
        misses: u32,
        reason: Option<String>,
        now: Millis,
    ) -> Result<()>;

    /// Unfinished jobs bound to each agent (waiting or running), for agents that have any.
    async fn agent_load(&self) -> Result<HashMap<String, u64>>;

    /// Jobs bound to `agent_id` that have not started: enqueued or scheduled.
    async fn waiting_jobs(&self, agent_id: &str) -> Result<Vec<JobId>>;

    /// Binds a job that has not started from agent `from` to agent `to` (moving it from
    /// `from`'s queue to `to`'s if it was there); `false` if it started or moved meanwhile.
    async fn rebind_job(&self, job: JobId, from: &str, to: &str, now: Millis) -> Result<bool>;

    /// An agent's figures at `now`.
    async fn agent_metrics(&self, id: &str, now: Millis) -> Result<AgentMetrics>;
}
