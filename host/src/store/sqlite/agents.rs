//! Agents, agent locks and tasks on SQLite: the `agents`, `agent_locks` and `tasks`
//! tables (see the migration). Writes run on the writer's connection, each in a
//! transaction of its own; the lock's release is a trigger on `jobs`.

use super::rows::{JobRow, corrupt};
use super::{SqliteStore, batch};
use crate::model::agent::{Agent, AgentSpec, AgentStatus, Health, TaskPriority, agent_queue};
use crate::model::{Job, JobId, Millis};
use crate::store::agents::{
    Acquired, AgentMetrics, AgentStore, ExecRecord, NewTask, Task, TaskFilter,
};
use crate::store::{Changes, Error, Result};
use async_trait::async_trait;
use sqlx::{FromRow, QueryBuilder, Sqlite, SqliteConnection};
use std::collections::HashMap;

/// The `agents` columns every read selects, in [`AgentRow`] order, with the jobs holding
/// the agent. (A lock outlives its job only when the job's host died; the job's lease
/// expires long before the lock, and takes the lock with it.)
const AGENT_SELECT: &str = "SELECT a.id, a.name, a.repository_path, a.command, a.env, \
    a.health_command, a.health_interval_seconds, a.max_concurrency, a.labels, a.health, \
    a.health_reason, a.health_misses, a.last_health_at, a.last_heartbeat_at, a.created_at, \
    a.updated_at, (SELECT json_group_array(l.job_id) FROM agent_locks l \
    WHERE l.agent_id = a.id) AS locks FROM agents a";

#[derive(Debug, FromRow)]
struct AgentRow {
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

fn json<T: serde::de::DeserializeOwned>(what: &str, text: &str) -> Result<T> {
    serde_json::from_str(text).map_err(|e| corrupt(what, e))
}

fn to_json(value: &impl serde::Serialize) -> String {
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

/// One agent, read on `conn`.
async fn read_agent(conn: &mut SqliteConnection, id: &str) -> Result<Agent> {
    let row: Option<AgentRow> = sqlx::query_as(&format!("{AGENT_SELECT} WHERE a.id = ?1"))
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?;
    row.ok_or_else(|| Error::AgentNotFound(id.to_owned()))?
        .try_into()
}

/// Inserts or (with `replace`) updates an agent's definition.
async fn write_agent(
    conn: &mut SqliteConnection,
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
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?10) {on_conflict}"
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

/// A `tasks` row joined with its job.
#[derive(FromRow)]
struct TaskRow {
    task_id: String,
    task_command: String,
    task_repository: String,
    task_priority: String,
    exec_outcome: Option<String>,
    exit_code: Option<i64>,
    stdout: Option<String>,
    stderr: Option<String>,
    duration_ms: Option<i64>,
    #[sqlx(flatten)]
    job: JobRow,
}

const TASK_SELECT: &str = "SELECT t.id AS task_id, t.command AS task_command, \
    t.repository_path AS task_repository, t.priority AS task_priority, t.exec_outcome, \
    t.exit_code, t.stdout, t.stderr, t.duration_ms, j.* FROM tasks t JOIN jobs j ON j.id = t.job_id";

impl TryFrom<TaskRow> for Task {
    type Error = Error;

    fn try_from(row: TaskRow) -> Result<Task> {
        let exec = row.exec_outcome.map(|outcome| ExecRecord {
            outcome: match outcome.as_str() {
                "timeout" => "timeout",
                "spawn_failure" => "spawn_failure",
                _ => "exited",
            },
            exit_code: row.exit_code.map(|c| c as i32),
            stdout: row.stdout.unwrap_or_default(),
            stderr: row.stderr.unwrap_or_default(),
            duration_ms: row.duration_ms.unwrap_or(0).max(0) as u64,
        });
        Ok(Task {
            id: row.task_id.parse().map_err(|e| corrupt("task id", e))?,
            command: row.task_command,
            repository_path: row.task_repository,
            priority: TaskPriority::parse(&row.task_priority)
                .map_err(|e| corrupt("priority", e))?,
            job: Job::try_from(row.job)?,
            exec,
        })
    }
}

/// The p-th percentile (0..=100) of sorted `values`, nearest rank.
fn percentile(sorted: &[i64], p: usize) -> Option<u64> {
    let rank = (sorted.len() * p).div_ceil(100).max(1);
    sorted.get(rank - 1).map(|v| (*v).max(0) as u64)
}

/// Finished runs considered for an agent's duration figures: the latest ones.
const METRIC_SAMPLE: i64 = 10_000;
const HOUR_MS: Millis = 3_600_000;

#[async_trait]
impl AgentStore for SqliteStore {
    async fn create_agent(&self, spec: AgentSpec, now: Millis) -> Result<Agent> {
        self.exec(move |conn| {
            Box::pin(async move {
                write_agent(conn, &spec, false, now).await?;
                read_agent(conn, &spec.id).await
            })
        })
        .await
    }

    async fn put_agent(&self, spec: AgentSpec, now: Millis) -> Result<Agent> {
        self.exec(move |conn| {
            Box::pin(async move {
                write_agent(conn, &spec, true, now).await?;
                read_agent(conn, &spec.id).await
            })
        })
        .await
    }

    async fn agent(&self, id: &str) -> Result<Option<Agent>> {
        let mut conn = self.readers.acquire().await?;
        match read_agent(&mut conn, id).await {
            Ok(agent) => Ok(Some(agent)),
            Err(Error::AgentNotFound(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn agents(&self) -> Result<Vec<Agent>> {
        let rows: Vec<AgentRow> = sqlx::query_as(&format!("{AGENT_SELECT} ORDER BY a.id"))
            .fetch_all(&self.readers)
            .await?;
        rows.into_iter().map(Agent::try_from).collect()
    }

    async fn delete_agent(&self, id: &str, force: bool) -> Result<Agent> {
        let id = id.to_owned();
        self.exec(move |conn| {
            Box::pin(async move {
                let agent = read_agent(conn, &id).await?;
                if !agent.current_jobs.is_empty() && !force {
                    return Err(Error::Conflict(format!(
                        "agent {id} is busy with {} job(s); delete it with ?force=true to \
                         cancel them",
                        agent.current_jobs.len()
                    )));
                }
                sqlx::query("DELETE FROM agent_locks WHERE agent_id = ?1")
                    .bind(&id)
                    .execute(&mut *conn)
                    .await?;
                sqlx::query("DELETE FROM agents WHERE id = ?1")
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
                    "UPDATE agents SET last_heartbeat_at = ?2, health = 'healthy', \
                     health_misses = 0, health_reason = NULL WHERE id = ?1",
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
                    "UPDATE agents SET health = ?2, health_misses = ?3, health_reason = ?4, \
                     last_health_at = ?5 WHERE id = ?1",
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

    async fn acquire_agent(
        &self,
        agent_id: &str,
        job: JobId,
        owner: &str,
        until: Millis,
        now: Millis,
    ) -> Result<Acquired> {
        let (agent_id, owner) = (agent_id.to_owned(), owner.to_owned());
        self.exec(move |conn| {
            Box::pin(async move {
                sqlx::query("DELETE FROM agent_locks WHERE agent_id = ?1 AND expires_at <= ?2")
                    .bind(&agent_id)
                    .bind(now)
                    .execute(&mut *conn)
                    .await?;
                let taken = sqlx::query(
                    "INSERT INTO agent_locks (job_id, agent_id, owner, acquired_at, expires_at) \
                     SELECT ?2, a.id, ?3, ?4, ?5 FROM agents a \
                     WHERE a.id = ?1 AND a.health = 'healthy' AND a.max_concurrency > \
                       (SELECT count(*) FROM agent_locks l WHERE l.agent_id = a.id) \
                     ON CONFLICT (job_id) DO UPDATE SET owner = excluded.owner, \
                       expires_at = excluded.expires_at",
                )
                .bind(&agent_id)
                .bind(job.to_string())
                .bind(&owner)
                .bind(now)
                .bind(until)
                .execute(&mut *conn)
                .await?
                .rows_affected();
                let agent = match read_agent(conn, &agent_id).await {
                    Ok(agent) => Some(agent),
                    Err(Error::AgentNotFound(_)) => None,
                    Err(e) => return Err(e),
                };
                let held = match &agent {
                    _ if taken > 0 => Ok(()),
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
                let task: Option<(String,)> =
                    sqlx::query_as("SELECT id FROM tasks WHERE job_id = ?1")
                        .bind(job.to_string())
                        .fetch_optional(&mut *conn)
                        .await?;
                let task_id = task
                    .map(|(id,)| id.parse().map_err(|e| corrupt("task id", e)))
                    .transpose()?;
                Ok(Acquired {
                    held,
                    agent,
                    task_id,
                })
            })
        })
        .await
    }

    async fn renew_agent_locks(&self, owner: &str, until: Millis) -> Result<u64> {
        let owner = owner.to_owned();
        self.exec(move |conn| {
            Box::pin(async move {
                let done = sqlx::query("UPDATE agent_locks SET expires_at = ?2 WHERE owner = ?1")
                    .bind(owner)
                    .bind(until)
                    .execute(&mut *conn)
                    .await?;
                Ok(done.rows_affected())
            })
        })
        .await
    }

    async fn agent_load(&self) -> Result<HashMap<String, u64>> {
        let rows: Vec<(String, i64)> = sqlx::query_as(
            "SELECT agent_id, count(*) FROM jobs WHERE agent_id IS NOT NULL \
             AND state IN ('awaiting', 'scheduled', 'enqueued', 'processing') GROUP BY agent_id",
        )
        .fetch_all(&self.readers)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(agent, n)| (agent, n.max(0) as u64))
            .collect())
    }

    async fn waiting_jobs(&self, agent_id: &str) -> Result<Vec<JobId>> {
        let rows: Vec<(String,)> = sqlx::query_as(
            "SELECT id FROM jobs WHERE agent_id = ?1 AND state IN ('scheduled', 'enqueued') \
             ORDER BY id",
        )
        .bind(agent_id)
        .fetch_all(&self.readers)
        .await?;
        rows.into_iter()
            .map(|(id,)| id.parse().map_err(|e| corrupt("job id", e)))
            .collect()
    }

    async fn rebind_job(&self, job: JobId, from: &str, to: &str, now: Millis) -> Result<bool> {
        let (from, to) = (from.to_owned(), to.to_owned());
        self.exec(move |conn| {
            Box::pin(async move {
                let moved = sqlx::query(
                    "UPDATE jobs SET agent_id = ?3, \
                     queue = CASE WHEN queue = ?4 THEN ?5 ELSE queue END \
                     WHERE id = ?1 AND agent_id = ?2 \
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
                         SELECT id, attempt, ?2, 'info', ?3 FROM jobs WHERE id = ?1",
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

    async fn create_task(&self, task: NewTask, now: Millis) -> Result<Changes> {
        let created = self.exec_changing(move |conn| {
            Box::pin(async move {
                batch::insert(conn, std::slice::from_ref(&task.job), now).await?;
                sqlx::query(
                    "INSERT INTO tasks (id, job_id, command, repository_path, priority, created_at) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                )
                .bind(task.id.to_string())
                .bind(task.job.id.to_string())
                .bind(&task.command)
                .bind(&task.repository_path)
                .bind(task.priority.as_str())
                .bind(now)
                .execute(&mut *conn)
                .await?;
                Ok(())
            })
        });
        Ok(created.await?.changes)
    }

    async fn task(&self, id: JobId) -> Result<Option<Task>> {
        let row: Option<TaskRow> = sqlx::query_as(&format!("{TASK_SELECT} WHERE t.id = ?1"))
            .bind(id.to_string())
            .fetch_optional(&self.readers)
            .await?;
        row.map(Task::try_from).transpose()
    }

    async fn task_of_job(&self, job: JobId) -> Result<Option<JobId>> {
        let row: Option<(String,)> = sqlx::query_as("SELECT id FROM tasks WHERE job_id = ?1")
            .bind(job.to_string())
            .fetch_optional(&self.readers)
            .await?;
        row.map(|(id,)| id.parse().map_err(|e| corrupt("task id", e)))
            .transpose()
    }

    async fn tasks(&self, filter: &TaskFilter) -> Result<Vec<Task>> {
        let mut query: QueryBuilder<Sqlite> = QueryBuilder::new(TASK_SELECT);
        query.push(" WHERE 1 = 1");
        if let Some(agent) = &filter.agent_id {
            query.push(" AND j.agent_id = ").push_bind(agent.clone());
        }
        if let Some(state) = filter.state {
            query.push(" AND j.state = ").push_bind(state.as_str());
        }
        query
            .push(" ORDER BY t.id DESC LIMIT ")
            .push_bind(i64::from(filter.limit));
        let rows: Vec<TaskRow> = query.build_query_as().fetch_all(&self.readers).await?;
        rows.into_iter().map(Task::try_from).collect()
    }

    async fn record_exec(&self, job: JobId, exec: ExecRecord) -> Result<()> {
        self.exec(move |conn| {
            Box::pin(async move {
                sqlx::query(
                    "UPDATE tasks SET exec_outcome = ?2, exit_code = ?3, stdout = ?4, \
                     stderr = ?5, duration_ms = ?6 WHERE job_id = ?1",
                )
                .bind(job.to_string())
                .bind(exec.outcome)
                .bind(exec.exit_code)
                .bind(exec.stdout)
                .bind(exec.stderr)
                .bind(i64::try_from(exec.duration_ms).unwrap_or(i64::MAX))
                .execute(&mut *conn)
                .await?;
                Ok(())
            })
        })
        .await
    }

    async fn agent_metrics(&self, id: &str, now: Millis) -> Result<AgentMetrics> {
        let mut conn = self.readers.acquire().await?;
        let (tasks_run, succeeded, failed): (i64, i64, i64) = sqlx::query_as(
            "SELECT count(*), coalesce(sum(state = 'succeeded'), 0), \
             coalesce(sum(state = 'failed'), 0) FROM jobs \
             WHERE agent_id = ?1 AND started_at IS NOT NULL",
        )
        .bind(id)
        .fetch_one(&mut *conn)
        .await?;
        let durations: Vec<(i64,)> = sqlx::query_as(
            "SELECT d FROM (SELECT finished_at - started_at AS d FROM jobs \
             WHERE agent_id = ?1 AND state IN ('succeeded', 'failed') \
             AND started_at IS NOT NULL ORDER BY finished_at DESC LIMIT ?2) ORDER BY d",
        )
        .bind(id)
        .bind(METRIC_SAMPLE)
        .fetch_all(&mut *conn)
        .await?;
        let durations: Vec<i64> = durations.into_iter().map(|(d,)| d).collect();
        let since = now - HOUR_MS;
        let (busy_ms, slots): (Option<i64>, Option<i64>) = sqlx::query_as(
            "SELECT (SELECT sum(min(ended, ?2) - max(started_at, ?3)) FROM \
               (SELECT started_at, CASE WHEN state = 'processing' THEN ?2 \
                       ELSE coalesce(finished_at, state_at) END AS ended \
                FROM jobs WHERE agent_id = ?1 AND started_at IS NOT NULL \
                AND state <> 'enqueued') \
               WHERE ended > ?3 AND started_at < ?2), \
             (SELECT max_concurrency FROM agents WHERE id = ?1)",
        )
        .bind(id)
        .bind(now)
        .bind(since)
        .fetch_one(&mut *conn)
        .await?;
        let capacity = (HOUR_MS * slots.unwrap_or(1).max(1)) as f64;
        let mean = (!durations.is_empty())
            .then(|| (durations.iter().sum::<i64>() / durations.len() as i64).max(0) as u64);
        Ok(AgentMetrics {
            tasks_run: tasks_run.max(0) as u64,
            succeeded: succeeded.max(0) as u64,
            failed: failed.max(0) as u64,
            mean_duration_ms: mean,
            p95_duration_ms: percentile(&durations, 95),
            utilisation_last_hour: (busy_ms.unwrap_or(0).max(0) as f64 / capacity).min(1.0),
        })
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
