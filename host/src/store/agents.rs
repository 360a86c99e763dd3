//! Storage of agents: the [`AgentStore`] trait, and the types that agents, their locks
//! ([`super::AgentLocks`]) and tasks ([`super::TaskStore`]) are stored and read with.
//! What the agent lock is: see [`super::locks`].

use super::rows::corrupt;
use super::{Error, NewJob, Result};
use crate::model::agent::{Agent, AgentSpec, AgentStatus, Health, TaskPriority};
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

impl Acquired {
    /// What a job got when it asked for agent `agent_id` (`agent`, if registered):
    /// the agent if it was `taken`, or why not.
    pub(crate) fn new(
        agent_id: &str,
        taken: bool,
        agent: Option<Agent>,
        task_id: Option<JobId>,
    ) -> Acquired {
        let held = match &agent {
            _ if taken => Ok(()),
            None => Err(format!("agent {agent_id} is not registered")),
            Some(agent) => Err(match agent.status {
                AgentStatus::Offline | AgentStatus::Error => format!(
                    "agent {agent_id} is {}: {}",
                    agent.status.as_str(),
                    agent
                        .status_reason
                        .as_deref()
                        .unwrap_or("no reason recorded")
                ),
                _ => format!(
                    "agent {agent_id} is busy: {} of {} task slots taken",
                    agent.current_jobs.len(),
                    agent.spec.max_concurrency
                ),
            }),
        };
        Acquired {
            held,
            agent,
            task_id,
        }
    }
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

/// An `agents` row with the ids of the jobs holding the agent (`locks`, a JSON array), as
/// every backend reads it.
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct AgentRow {
    id: String,
    name: String,
    repository_path: String,
    command: String,
    env: String,
    health_command: Option<String>,
    health_interval_seconds: i64,
    max_concurrency: i64,
    labels: String,
    health: String,
    health_reason: Option<String>,
    health_misses: i64,
    last_health_at: Option<i64>,
    last_heartbeat_at: Option<i64>,
    created_at: i64,
    updated_at: i64,
    locks: String,
}

/// `text` parsed as JSON; `what` names it when it does not parse.
fn json<T: serde::de::DeserializeOwned>(what: &str, text: &str) -> Result<T> {
    serde_json::from_str(text).map_err(|e| corrupt(what, e))
}

/// `value` as stored JSON text.
pub(crate) fn to_json(value: &impl serde::Serialize) -> String {
    serde_json::to_string(value).expect("agent fields serialize")
}

impl TryFrom<AgentRow> for Agent {
    type Error = Error;

    fn try_from(row: AgentRow) -> Result<Agent> {
        let health = Health::parse(&row.health).map_err(|e| corrupt("agent health", e))?;
        let current_jobs: Vec<JobId> = json("agent locks", &row.locks)?;
        Ok(Agent {
            spec: AgentSpec {
                id: row.id,
                name: row.name,
                repository_path: row.repository_path,
                command: json("agent command", &row.command)?,
                env: json("agent env", &row.env)?,
                health_command: row
                    .health_command
                    .as_deref()
                    .map(|c| json("agent health command", c))
                    .transpose()?,
                health_interval_seconds: row.health_interval_seconds.max(1) as u32,
                max_concurrency: row.max_concurrency.max(1) as u32,
                labels: json("agent labels", &row.labels)?,
            },
            status: AgentStatus::of(health, current_jobs.len()),
            status_reason: row.health_reason,
            health_misses: row.health_misses.max(0) as u32,
            last_health_check_at: row.last_health_at,
            last_heartbeat_at: row.last_heartbeat_at,
            current_jobs,
            created_at: row.created_at,
            updated_at: row.updated_at,
            health,
        })
    }
}

/// The p-th percentile (0..=100) of sorted `values`, nearest rank.
fn percentile(sorted: &[i64], p: usize) -> Option<u64> {
    let rank = (sorted.len() * p).div_ceil(100).max(1);
    sorted.get(rank - 1).map(|v| (*v).max(0) as u64)
}

/// Finished runs considered for an agent's duration figures: the latest ones.
pub(crate) const METRIC_SAMPLE: i64 = 10_000;
/// An hour, the window of an agent's utilisation.
pub(crate) const HOUR_MS: Millis = 3_600_000;

impl AgentMetrics {
    /// The figures of an agent: `counts` of its runs that started, succeeded and failed,
    /// the `durations` (sorted, in ms) of its latest finished runs, and `busy_ms` of its
    /// `slots` task slots busy in the last hour.
    pub(crate) fn of(counts: [i64; 3], durations: &[i64], busy_ms: i64, slots: i64) -> Self {
        let [tasks_run, succeeded, failed] = counts;
        let capacity = (HOUR_MS * slots.max(1)) as f64;
        let mean = (!durations.is_empty())
            .then(|| (durations.iter().sum::<i64>() / durations.len() as i64).max(0) as u64);
        AgentMetrics {
            tasks_run: tasks_run.max(0) as u64,
            succeeded: succeeded.max(0) as u64,
            failed: failed.max(0) as u64,
            mean_duration_ms: mean,
            p95_duration_ms: percentile(durations, 95),
            utilisation_last_hour: (busy_ms.max(0) as f64 / capacity).min(1.0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::percentile;

    #[test]
    fn percentiles_use_the_nearest_rank() {
        let values: Vec<i64> = (1..=100).collect();
        assert_eq!(percentile(&values, 95), Some(95));
        assert_eq!(percentile(&[7], 95), Some(7));
        assert_eq!(percentile(&[], 95), None);
        assert_eq!(percentile(&[1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 95), Some(10));
    }
}
