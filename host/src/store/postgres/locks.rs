//! Agent locks on PostgreSQL: the `agent_locks` table (see the migration and
//! [`crate::store::locks`]). Taking a lock locks the agent's row first, so that hosts
//! taking locks on the same agent take turns and never hold more than its
//! `max_concurrency`; the lock's release is a trigger on `jobs`.

use super::PostgresStore;
use super::agents::{lock_agent, read_agent};
use crate::model::{JobId, Millis};
use crate::store::agents::Acquired;
use crate::store::locks::AgentLocks;
use crate::store::rows::parse_id;
use crate::store::{Error, Result};
use async_trait::async_trait;

#[async_trait]
impl AgentLocks for PostgresStore {
    // The agent's row is locked before its locks are counted: a host counting at the
    // same time waits, then counts this lock too.
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
                let taken = lock_agent(conn, &agent_id).await? && {
                    sqlx::query("DELETE FROM agent_locks WHERE agent_id = $1 AND expires_at <= $2")
                        .bind(&agent_id)
                        .bind(now)
                        .execute(&mut *conn)
                        .await?;
                    let taken = sqlx::query(
                        "INSERT INTO agent_locks (job_id, agent_id, owner, acquired_at, \
                         expires_at) \
                         SELECT $2, a.id, $3, $4, $5 FROM agents a \
                         WHERE a.id = $1 AND a.health = 'healthy' AND a.max_concurrency > \
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
                    .await?;
                    taken.rows_affected() > 0
                };
                let agent = match read_agent(conn, &agent_id).await {
                    Ok(agent) => Some(agent),
                    Err(Error::AgentNotFound(_)) => None,
                    Err(e) => return Err(e),
                };
                let task: Option<String> =
                    sqlx::query_scalar("SELECT id FROM tasks WHERE job_id = $1")
                        .bind(job.to_string())
                        .fetch_optional(&mut *conn)
                        .await?;
                let task_id = task.as_deref().map(parse_id).transpose()?;
                Ok(Acquired::new(&agent_id, taken, agent, task_id))
            })
        })
        .await
    }

    async fn renew_agent_locks(&self, owner: &str, until: Millis) -> Result<u64> {
        let owner = owner.to_owned();
        self.exec(move |conn| {
            Box::pin(async move {
                let done = sqlx::query("UPDATE agent_locks SET expires_at = $2 WHERE owner = $1")
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
