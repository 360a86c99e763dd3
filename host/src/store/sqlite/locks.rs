//! Agent locks on SQLite: the `agent_locks` table (see the migration and
//! [`crate::store::locks`]). Writes run on the writer's connection, each in a
//! transaction of its own; the lock's release is a trigger on `jobs`.

use super::SqliteStore;
use super::agents::read_agent;
use super::rows::corrupt;
use crate::model::{JobId, Millis};
use crate::store::agents::Acquired;
use crate::store::locks::AgentLocks;
use crate::store::{Error, Result};
use async_trait::async_trait;

#[async_trait]
impl AgentLocks for SqliteStore {
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
                let task: Option<(String,)> =
                    sqlx::query_as("SELECT id FROM tasks WHERE job_id = ?1")
                        .bind(job.to_string())
                        .fetch_optional(&mut *conn)
                        .await?;
                let task_id = task
                    .map(|(id,)| id.parse().map_err(|e| corrupt("task id", e)))
                    .transpose()?;
                Ok(Acquired::new(&agent_id, taken > 0, agent, task_id))
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
}
