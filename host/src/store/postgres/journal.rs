//! What a write changed, read back from the history its statements and the schema's
//! triggers appended in its own transaction (each history row records the transaction
//! that wrote it), in order, the triggers' effects included. Other hosts' writes at the
//! same time are not among them.

use crate::model::{JobId, JobState, Millis};
use crate::store::Result;
use crate::store::changes::{BatchProgress, Changes, JobChange};
use crate::store::rows::{parse_id, parse_state};
use sqlx::PgConnection;

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

/// The changes the current transaction recorded, with the progress of the batches whose
/// jobs finished.
pub(super) async fn mine(conn: &mut PgConnection) -> Result<Changes> {
    let rows: Vec<ChangeRow> = sqlx::query_as(
        "SELECT h.job_id, h.from_state, h.state, h.at, h.reason, j.queue, j.plugin, j.attempt, \
         j.batch_id, j.agent_id, t.id AS task_id, j.lease_id, j.state AS current \
         FROM job_history h JOIN jobs j ON j.id = h.job_id \
         LEFT JOIN tasks t ON t.job_id = h.job_id \
         WHERE h.tx = txid_current() ORDER BY h.seq",
    )
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
                .filter(|_| current && to == JobState::Processing)
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
    conn: &mut PgConnection,
    changes: &[JobChange],
) -> Result<Vec<BatchProgress>> {
    let mut ids: Vec<String> = changes
        .iter()
        .filter(|c| c.to.is_some_and(JobState::is_terminal))
        .filter_map(|c| c.batch.map(|id: JobId| id.to_string()))
        .collect();
    ids.sort_unstable();
    ids.dedup();
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let rows: Vec<(String, i64, i64, i64, i64)> = sqlx::query_as(
        "SELECT batch_id, count(*), count(*) FILTER (WHERE state = 'succeeded'), \
         count(*) FILTER (WHERE state = 'failed'), count(*) FILTER (WHERE state = 'cancelled') \
         FROM jobs WHERE batch_id = ANY($1) GROUP BY batch_id",
    )
    .bind(&ids)
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
