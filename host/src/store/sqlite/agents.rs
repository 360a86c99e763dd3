//! Agents on SQLite: the `agents` table (see the migration): their definitions, health,
//! heartbeats, load and metrics. Writes run on the writer's connection, each in a
//! transaction of its own.

crate::store::agents::agent_store!(
    super::SqliteStore,
    sqlx::SqliteConnection,
    readers,
    "(SELECT json_group_array(l.job_id ORDER BY l.acquired_at, l.job_id) \
     FROM agent_locks l WHERE l.agent_id = a.id)"
);

/// Whether agent `id` exists: the single writer needs no row lock.
async fn lock_agent(conn: &mut sqlx::SqliteConnection, id: &str) -> crate::store::Result<bool> {
    let found = sqlx::query("SELECT 1 FROM agents WHERE id = $1")
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?;
    Ok(found.is_some())
}
