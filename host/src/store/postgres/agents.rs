//! Agents on PostgreSQL: the `agents` table (see the migration): their definitions,
//! health, heartbeats, load and metrics. Each write is a transaction of its own; one
//! that decides on what it read (deleting an agent) locks the agent's row first, as
//! taking a lock on the agent does (see `locks.rs`).

use super::PostgresStore;
use crate::model::agent::{Agent, AgentSpec, Health, agent_queue};
use crate::model::{JobId, Millis};
use crate::store::agents::{AgentMetrics, AgentRow, AgentStore, HOUR_MS, METRIC_SAMPLE, to_json};
use crate::store::rows::parse_id;
use crate::store::{Error, Result};
use async_trait::async_trait;
use sqlx::PgConnection;
use std::collections::HashMap;

/// The `agents` columns every read selects, in [`AgentRow`] order, with the jobs holding
/// the agent. (A lock outlives its job only when the job's host died; the job's lease
/// expires long before the lock, and takes the lock with it.)
const AGENT_SELECT: &str = "SELECT a.id, a.name, a.repository_path, a.command, a.env, \
    a.health_command, a.health_interval_seconds, a.max_concurrency, a.labels, a.health, \
    a.health_reason, a.health_misses, a.last_health_at, a.last_heartbeat_at, a.created_at, \
    a.updated_at, coalesce((SELECT json_agg(l.job_id ORDER BY l.acquired_at, l.job_id)::text \
    FROM agent_locks l WHERE l.agent_id = a.id), '[]') AS locks FROM agents a";

/// One agent, read on `conn`.
pub(super) async fn read_agent(conn: &mut PgConnection, id: &str) -> Result<Agent> {
    let row: Option<AgentRow> = sqlx::query_as(&format!("{AGENT_SELECT} WHERE a.id = $1"))
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?;
    row.ok_or_else(|| Error::AgentNotFound(id.to_owned()))?
        .try_into()
}

/// Locks agent `id`'s row until the transaction ends, so that no other host takes or
/// drops a lock on the agent meanwhile; `false` if there is no such agent.
pub(super) async fn lock_agent(conn: &mut PgConnection, id: &str) -> Result<bool> {
    let found = sqlx::query("SELECT 1 FROM agents WHERE id = $1 FOR UPDATE")
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?;
    Ok(found.is_some())
}

/// Inserts or (with `replace`) updates an agent's definition.
async fn write_agent(
    conn: &mut PgConnection,
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

#[async_trait]
impl AgentStore for PostgresStore {
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
        let mut conn = self.pool.acquire().await?;
        match read_agent(&mut conn, id).await {
            Ok(agent) => Ok(Some(agent)),
            Err(Error::AgentNotFound(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn agents(&self) -> Result<Vec<Agent>> {
        let rows: Vec<AgentRow> = sqlx::query_as(&format!("{AGENT_SELECT} ORDER BY a.id"))
            .fetch_all(&self.pool)
            .await?;
        rows.into_iter().map(Agent::try_from).collect()
    }

    // Locks the agent's row before reading its jobs, so that none takes the agent
    // between the check and the deletion.
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
        .fetch_all(&self.pool)
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
        .fetch_all(&self.pool)
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
        let mut conn = self.pool.acquire().await?;
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
            "SELECT (SELECT sum(LEAST(ended, $2) - GREATEST(started_at, $3))::bigint FROM \
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
