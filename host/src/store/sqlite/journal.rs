//! What a write changed, read back from the history its statements and the schema's
//! triggers appended: the rows after the newest one before the write are its changes,
//! in order, the triggers' effects included. Only the writer's connection writes, so
//! within its transaction nothing else adds rows.

use super::rows::parse_id;
use super::rows::parse_state;
use crate::model::{JobId, Millis};
use crate::store::Result;
use crate::store::changes::{BatchProgress, Changes, JobChange};
use serde_json::Value;
use sqlx::SqliteConnection;

/// The newest history row: a write's changes are the rows after it.
pub(super) async fn mark(conn: &mut SqliteConnection) -> Result<i64> {
    let seq: Option<i64> = sqlx::query_scalar("SELECT max(seq) FROM job_history")
        .fetch_one(&mut *conn)
        .await?;
    Ok(seq.unwrap_or(0))
}

/// A history row with what its job says now.
#[derive(sqlx::FromRow)]
struct ChangeRow {
    job_id: String,
    from_state: Option<String>,
    state: String,
    at: Millis,
    reason: String,
    queue: String,
    plugin: String,
    attempt: i64,
    batch_id: Option<String>,
    agent_id: Option<String>,
    task_id: Option<String>,
    lease_id: Option<String>,
    current: String,
}

/// The changes recorded after history row `mark`, with the progress of the batches
/// whose jobs finished.
pub(super) async fn since(conn: &mut SqliteConnection, mark: i64) -> Result<Changes> {
    let rows: Vec<ChangeRow> = sqlx::query_as(
        "SELECT h.job_id, h.from_state, h.state, h.at, h.reason, j.queue, j.plugin, j.attempt, \
         j.batch_id, j.agent_id, t.id AS task_id, j.lease_id, j.state AS current \
         FROM job_history h JOIN jobs j ON j.id = h.job_id \
         LEFT JOIN tasks t ON t.job_id = h.job_id WHERE h.seq > ?1 ORDER BY h.seq",
    )
    .bind(mark)
    .fetch_all(&mut *conn)
    .await?;
    let mut jobs = Vec::with_capacity(rows.len());
    for row in rows {
        let to = parse_state(&row.state)?;
        let current = parse_state(&row.current)? == to;
        jobs.push(JobChange {
            id: parse_id(&row.job_id)?,
            from: row.from_state.as_deref().map(parse_state).transpose()?,
            to: Some(to),
            reason: row.reason,
            at: row.at,
            queue: row.queue,
            plugin: row.plugin,
            attempt: u32::try_from(row.attempt).unwrap_or(0),
            batch: row.batch_id.as_deref().map(parse_id).transpose()?,
            agent: row.agent_id,
            task: row.task_id.as_deref().map(parse_id).transpose()?,
            lease: row
                .lease_id
                .filter(|_| current && to == crate::model::JobState::Processing)
                .as_deref()
                .map(parse_id)
                .transpose()?,
        });
    }
    let batches = progress(conn, &jobs).await?;
    Ok(Changes { jobs, batches })
}

/// Where each batch stands whose jobs `changes` finished.
pub(super) async fn progress(
    conn: &mut SqliteConnection,
    changes: &[JobChange],
) -> Result<Vec<BatchProgress>> {
    let mut ids: Vec<JobId> = changes
        .iter()
        .filter(|c| c.to.is_some_and(crate::model::JobState::is_terminal))
        .filter_map(|c| c.batch)
        .collect();
    ids.sort_unstable();
    ids.dedup();
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let list = Value::Array(ids.iter().map(|id| Value::String(id.to_string())).collect());
    let rows: Vec<(String, i64, i64, i64, i64)> = sqlx::query_as(
        "SELECT batch_id, count(*), sum(state = 'succeeded'), sum(state = 'failed'), \
         sum(state = 'cancelled') FROM jobs \
         WHERE batch_id IN (SELECT value FROM json_each(?1)) GROUP BY batch_id",
    )
    .bind(list.to_string())
    .fetch_all(&mut *conn)
    .await?;
    let count = |n: i64| u32::try_from(n).unwrap_or(u32::MAX);
    rows.into_iter()
        .map(|(id, total, succeeded, failed, cancelled)| {
            Ok(BatchProgress {
                id: parse_id(&id)?,
                total: count(total),
                succeeded: count(succeeded),
                failed: count(failed),
                cancelled: count(cancelled),
            })
        })
        .collect()
}
