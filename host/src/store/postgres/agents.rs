//! Agents on PostgreSQL: the `agents` table (see the migration): their definitions,
//! health, heartbeats, load and metrics. Each write is a transaction of its own; one
//! that decides on what it read (deleting an agent) locks the agent's row first, as
//! taking a lock on the agent does (see `locks.rs`).

crate::store::agents::agent_store!(
    super::PostgresStore,
    sqlx::PgConnection,
    pool,
    "coalesce((SELECT json_agg(l.job_id ORDER BY l.acquired_at, l.job_id)::text \
     FROM agent_locks l WHERE l.agent_id = a.id), '[]')"
);

/// Locks agent `id`'s row until the transaction ends, so that no other host takes or
/// drops a lock on the agent meanwhile; `false` if there is no such agent.
pub(super) async fn lock_agent(
    conn: &mut sqlx::PgConnection,
    id: &str,
) -> crate::store::Result<bool> {
    let found = sqlx::query("SELECT 1 FROM agents WHERE id = $1 FOR UPDATE")
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?;
    Ok(found.is_some())
}
