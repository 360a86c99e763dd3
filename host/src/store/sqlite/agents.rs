//! Agents on SQLite: the `agents` table (see the migration): their definitions, health,
//! heartbeats, load and metrics. Writes run on the writer's connection, each in a
//! transaction of its own.

use super::SqliteStore;
use super::rows::corrupt;
use crate::model::agent::{Agent, AgentSpec, AgentStatus, Health, agent_queue};
use crate::model::{JobId, Millis};
use crate::store::agents::{AgentMetrics, AgentStore};
use crate::store::{Error, Result};
use async_trait::async_trait;
use sqlx::{FromRow, SqliteConnection};
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
pub(super) async fn read_agent(conn: &mut SqliteConnection, id: &str) -> Result<Agent> {
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
