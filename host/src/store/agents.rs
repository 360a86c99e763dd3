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

/// Implements [`AgentStore`] for `$store`, whose connections are `$conn`, whose reads go
/// to its pool `$reads` and whose writes to its `exec`: the same SQL on every backend,
/// but `$locks`, the expression of an agent's locks as a JSON array of job ids. The
/// invoking module defines `lock_agent(conn, id) -> Result<bool>`, which locks an agent's
/// row until the transaction ends (where rows lock) and tells whether it exists.
macro_rules! agent_store {
    ($store:ty, $conn:ty, $reads:ident, $locks:literal) => {
        use crate::model::agent::{Agent, AgentSpec, Health, agent_queue};
        use crate::model::{JobId, Millis};
        use crate::store::agents::{
            AgentMetrics, AgentRow, AgentStore, HOUR_MS, METRIC_SAMPLE, to_json,
        };
        use crate::store::rows::parse_id;
        use crate::store::{Error, Result};
        use async_trait::async_trait;
        use std::collections::HashMap;

        /// The `agents` columns every read selects, in [`AgentRow`] order, with the jobs holding
        /// the agent (`$locks`, a JSON array of job ids). (A lock outlives its job only when the job's host died; the job's lease
        /// expires long before the lock, and takes the lock with it.)
        const AGENT_SELECT: &str = concat!(
            "SELECT a.id, a.name, a.repository_path, a.command, a.env, a.health_command, \
             a.health_interval_seconds, a.max_concurrency, a.labels, a.health, a.health_reason, \
             a.health_misses, a.last_health_at, a.last_heartbeat_at, a.created_at, a.updated_at, ",
            $locks,
            " AS locks FROM agents a"
        );

        /// One agent, read on `conn`.
        pub(super) async fn read_agent(conn: &mut $conn, id: &str) -> Result<Agent> {
            let row: Option<AgentRow> = sqlx::query_as(&format!("{AGENT_SELECT} WHERE a.id = $1"))
                .bind(id)
                .fetch_optional(&mut *conn)
                .await?;
            row.ok_or_else(|| Error::AgentNotFound(id.to_owned()))?
                .try_into()
        }

        /// Inserts or (with `replace`) updates an agent's definition.
        async fn write_agent(
            conn: &mut $conn,
            spec: &AgentSpec,
            replace: bool,
            now: Millis,
        ) -> Result<()> {
            let on_conflict = if replace {
                "ON CONFLICT (id) DO UPDATE SET name = excluded.name, \
                 repository_path = excluded.repository_path, command = excluded.command, \
                 env = excluded.env, health_command = excluded.health_command, \
                 health_interval_seconds = excluded.health_interval_seconds, \
                 max_concurrency = excluded.max_concurrency, labels = excluded.labels, \
                 updated_at = excluded.updated_at"
            } else {
                ""
            };
            let written = sqlx::query(&format!(
                "INSERT INTO agents (id, name, repository_path, command, env, health_command, \
                 health_interval_seconds, max_concurrency, labels, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10) {on_conflict}"
            ))
            .bind(&spec.id)
            .bind(&spec.name)
            .bind(&spec.repository_path)
            .bind(to_json(&spec.command))
            .bind(to_json(&spec.env))
            .bind(spec.health_command.as_ref().map(to_json))
            .bind(i64::from(spec.health_interval_seconds))
            .bind(i64::from(spec.max_concurrency))
            .bind(to_json(&spec.labels))
            .bind(now)
            .execute(&mut *conn)
            .await;
            match written {
                Err(sqlx::Error::Database(e)) if e.is_unique_violation() => Err(Error::Conflict(format!(
                    "an agent with id {} already exists",
                    spec.id
                ))),
                other => other.map(drop).map_err(Error::from),
            }
        }

        impl $store {
            /// Writes an agent's definition (see `write_agent`) and reads the agent back.
            async fn store_agent(&self, spec: AgentSpec, replace: bool, now: Millis) -> Result<Agent> {
                self.exec(move |conn| {
                    Box::pin(async move {
                        write_agent(conn, &spec, replace, now).await?;
                        read_agent(conn, &spec.id).await
                    })
                })
                .await
            }
        }

        #[async_trait]
        impl AgentStore for $store {
            async fn create_agent(&self, spec: AgentSpec, now: Millis) -> Result<Agent> {
                self.store_agent(spec, false, now).await
            }

            async fn put_agent(&self, spec: AgentSpec, now: Millis) -> Result<Agent> {
                self.store_agent(spec, true, now).await
            }

            async fn agent(&self, id: &str) -> Result<Option<Agent>> {
                let mut conn = self.$reads.acquire().await?;
                match read_agent(&mut conn, id).await {
                    Ok(agent) => Ok(Some(agent)),
                    Err(Error::AgentNotFound(_)) => Ok(None),
                    Err(e) => Err(e),
                }
            }

            async fn agents(&self) -> Result<Vec<Agent>> {
                let rows: Vec<AgentRow> = sqlx::query_as(&format!("{AGENT_SELECT} ORDER BY a.id"))
                    .fetch_all(&self.$reads)
                    .await?;
                rows.into_iter().map(Agent::try_from).collect()
            }

            // Locks the agent's row (where rows lock) before reading its jobs, so that none
            // takes the agent between the check and the deletion.
            async fn delete_agent(&self, id: &str, force: bool) -> Result<Agent> {
                let id = id.to_owned();
                self.exec(move |conn| {
                    Box::pin(async move {
                        if !lock_agent(conn, &id).await? {
                            return Err(Error::AgentNotFound(id));
                        }
                        let agent = read_agent(conn, &id).await?;
                        if !agent.current_jobs.is_empty() && !force {
                            return Err(Error::Conflict(format!(
                                "agent {id} is busy with {} job(s); delete it with ?force=true to \
                                 cancel them",
                                agent.current_jobs.len()
                            )));
                        }
                        sqlx::query("DELETE FROM agent_locks WHERE agent_id = $1")
                            .bind(&id)
                            .execute(&mut *conn)
                            .await?;
                        sqlx::query("DELETE FROM agents WHERE id = $1")
                            .bind(&id)
                            .execute(&mut *conn)
                            .await?;
                        Ok(agent)
                    })
                })
                .await
            }

            async fn agent_heartbeat(&self, id: &str, now: Millis) -> Result<Agent> {
                let id = id.to_owned();
                self.exec(move |conn| {
                    Box::pin(async move {
                        let updated = sqlx::query(
                            "UPDATE agents SET last_heartbeat_at = $2, health = 'healthy', \
                             health_misses = 0, health_reason = NULL WHERE id = $1",
                        )
                        .bind(&id)
                        .bind(now)
                        .execute(&mut *conn)
                        .await?;
                        if updated.rows_affected() == 0 {
                            return Err(Error::AgentNotFound(id));
                        }
                        read_agent(conn, &id).await
                    })
                })
                .await
            }

            async fn set_agent_health(
                &self,
                id: &str,
                health: Health,
                misses: u32,
                reason: Option<String>,
                now: Millis,
            ) -> Result<()> {
                let id = id.to_owned();
                self.exec(move |conn| {
                    Box::pin(async move {
                        sqlx::query(
                            "UPDATE agents SET health = $2, health_misses = $3, health_reason = $4, \
                             last_health_at = $5 WHERE id = $1",
                        )
                        .bind(&id)
                        .bind(health.as_str())
                        .bind(i64::from(misses))
                        .bind(reason)
                        .bind(now)
                        .execute(&mut *conn)
                        .await?;
                        Ok(())
                    })
                })
                .await
            }

            async fn agent_load(&self) -> Result<HashMap<String, u64>> {
                let rows: Vec<(String, i64)> = sqlx::query_as(
                    "SELECT agent_id, count(*) FROM jobs WHERE agent_id IS NOT NULL \
                     AND state IN ('awaiting', 'scheduled', 'enqueued', 'processing') GROUP BY agent_id",
                )
                .fetch_all(&self.$reads)
                .await?;
                Ok(rows
                    .into_iter()
                    .map(|(agent, n)| (agent, n.max(0) as u64))
                    .collect())
            }

            async fn waiting_jobs(&self, agent_id: &str) -> Result<Vec<JobId>> {
                let rows: Vec<(String,)> = sqlx::query_as(
                    "SELECT id FROM jobs WHERE agent_id = $1 AND state IN ('scheduled', 'enqueued') \
                     ORDER BY id",
                )
                .bind(agent_id)
                .fetch_all(&self.$reads)
                .await?;
                rows.iter().map(|(id,)| parse_id(id)).collect()
            }

            // One conditional update: a job that started or moved meanwhile is left alone.
            async fn rebind_job(&self, job: JobId, from: &str, to: &str, now: Millis) -> Result<bool> {
                let (from, to) = (from.to_owned(), to.to_owned());
                self.exec(move |conn| {
                    Box::pin(async move {
                        let moved = sqlx::query(
                            "UPDATE jobs SET agent_id = $3, \
                             queue = CASE WHEN queue = $4 THEN $5 ELSE queue END \
                             WHERE id = $1 AND agent_id = $2 \
                             AND state IN ('scheduled', 'enqueued')",
                        )
                        .bind(job.to_string())
                        .bind(&from)
                        .bind(&to)
                        .bind(agent_queue(&from))
                        .bind(agent_queue(&to))
                        .execute(&mut *conn)
                        .await?
                        .rows_affected();
                        if moved > 0 {
                            sqlx::query(
                                "INSERT INTO job_logs (job_id, attempt, at, level, message) \
                                 SELECT id, attempt, $2, 'info', $3 FROM jobs WHERE id = $1",
                            )
                            .bind(job.to_string())
                            .bind(now)
                            .bind(format!("moved from agent {from} to agent {to}"))
                            .execute(&mut *conn)
                            .await?;
                        }
                        Ok(moved > 0)
                    })
                })
                .await
            }

            async fn agent_metrics(&self, id: &str, now: Millis) -> Result<AgentMetrics> {
                let mut conn = self.$reads.acquire().await?;
                let (tasks_run, succeeded, failed): (i64, i64, i64) = sqlx::query_as(
                    "SELECT count(*), count(*) FILTER (WHERE state = 'succeeded'), \
                     count(*) FILTER (WHERE state = 'failed') FROM jobs \
                     WHERE agent_id = $1 AND started_at IS NOT NULL",
                )
                .bind(id)
                .fetch_one(&mut *conn)
                .await?;
                let durations: Vec<i64> = sqlx::query_scalar(
                    "SELECT d FROM (SELECT finished_at - started_at AS d FROM jobs \
                     WHERE agent_id = $1 AND state IN ('succeeded', 'failed') \
                     AND started_at IS NOT NULL ORDER BY finished_at DESC LIMIT $2) AS latest ORDER BY d",
                )
                .bind(id)
                .bind(METRIC_SAMPLE)
                .fetch_all(&mut *conn)
                .await?;
                let since = now - HOUR_MS;
                let (busy_ms, slots): (Option<i64>, Option<i64>) = sqlx::query_as(
                    "SELECT (SELECT CAST(sum(CASE WHEN ended < $2 THEN ended ELSE $2 END \
                         - CASE WHEN started_at > $3 THEN started_at ELSE $3 END) AS BIGINT) FROM \
                       (SELECT started_at, CASE WHEN state = 'processing' THEN $2 \
                               ELSE coalesce(finished_at, state_at) END AS ended \
                        FROM jobs WHERE agent_id = $1 AND started_at IS NOT NULL \
                        AND state <> 'enqueued') AS runs \
                       WHERE ended > $3 AND started_at < $2), \
                     (SELECT max_concurrency FROM agents WHERE id = $1)",
                )
                .bind(id)
                .bind(now)
                .bind(since)
                .fetch_one(&mut *conn)
                .await?;
                Ok(AgentMetrics::of(
                    [tasks_run, succeeded, failed],
                    &durations,
                    busy_ms.unwrap_or(0),
                    slots.unwrap_or(1),
                ))
            }
        }
    };
}

pub(super) use agent_store;

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
