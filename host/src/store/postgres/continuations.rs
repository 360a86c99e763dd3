//! Continuations and batches on PostgreSQL: parent links, and batches created at once.
//!
//! Waiting children are released or cancelled by the `jobs_continue` trigger (see the
//! migration) in the transaction that finishes their last parent. This module links a
//! new child to its parents and settles children whose parents had already finished; it
//! locks the parents' rows while it does, so a parent finishing on another host at that
//! moment is counted exactly once (by the link or by the trigger).

use super::jobs::insert;
use crate::model::{JobId, JobState, Millis};
use crate::store::rows::{parse_id, parse_state};
use crate::store::{BatchInfo, Error, NewBatch, NewJob, Parents, Result};
use sqlx::PgConnection;

/// Links each of `jobs` (stored already) that waits on parents to them.
pub(super) async fn link_all(conn: &mut PgConnection, jobs: &[NewJob], now: Millis) -> Result<()> {
    for job in jobs {
        if let Some(parents) = &job.parents {
            link(conn, job.id, parents, now).await?;
        }
    }
    Ok(())
}

/// Links `child` to `parents`, counting those not yet finished, and settles it at once
/// if they all have (or, waiting on success, one already failed).
async fn link(conn: &mut PgConnection, child: JobId, parents: &Parents, now: Millis) -> Result<()> {
    let ids: Vec<String> = parents.ids.iter().map(JobId::to_string).collect();
    let found: Vec<String> =
        sqlx::query_scalar("SELECT id FROM jobs WHERE id = ANY($1) ORDER BY id FOR UPDATE")
            .bind(&ids)
            .fetch_all(&mut *conn)
            .await?;
    if let Some(missing) = ids.iter().find(|id| !found.contains(id)) {
        return Err(Error::Invalid(format!(
            "parent job {missing} does not exist"
        )));
    }
    let child = child.to_string();
    sqlx::query("UPDATE jobs SET has_children = true WHERE id = ANY($1)")
        .bind(&ids)
        .execute(&mut *conn)
        .await?;
    sqlx::query(
        "INSERT INTO job_parents (job_id, parent_id, done) \
         SELECT $1, id, state IN ('succeeded', 'failed', 'cancelled') FROM jobs \
         WHERE id = ANY($2) ON CONFLICT DO NOTHING",
    )
    .bind(&child)
    .bind(&ids)
    .execute(&mut *conn)
    .await?;
    sqlx::query(
        "UPDATE jobs SET await_on = $2, pending_parents = \
         (SELECT count(*) FROM job_parents WHERE job_id = $1 AND NOT done) WHERE id = $1",
    )
    .bind(&child)
    .bind(parents.on.as_str())
    .execute(&mut *conn)
    .await?;
    for settle in [
        "UPDATE jobs SET state = 'cancelled', state_at = $2, finished_at = $2, \
         state_reason = 'a parent had already failed or been cancelled', \
         error_kind = 'cancelled', error_message = 'a parent had already failed or been cancelled' \
         WHERE id = $1 AND await_on = 'success' AND EXISTS (SELECT 1 FROM job_parents p \
             JOIN jobs parent ON parent.id = p.parent_id \
             WHERE p.job_id = $1 AND parent.state IN ('failed', 'cancelled'))",
        "UPDATE jobs SET state = 'enqueued', state_at = $2, state_reason = 'parents finished', \
         run_at = GREATEST(run_at, $2) \
         WHERE id = $1 AND state = 'awaiting' AND pending_parents = 0",
    ] {
        sqlx::query(settle)
            .bind(&child)
            .bind(now)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

/// Stores a batch: its jobs, its callbacks (continuations of every job) and its row.
pub(super) async fn create_batch(
    conn: &mut PgConnection,
    batch: NewBatch,
    now: Millis,
) -> Result<()> {
    insert(conn, &batch.jobs, now).await?;
    link_all(conn, &batch.jobs, now).await?;
    let callbacks: Vec<NewJob> = [&batch.on_success, &batch.on_complete]
        .into_iter()
        .flatten()
        .cloned()
        .collect();
    insert(conn, &callbacks, now).await?;
    link_all(conn, &callbacks, now).await?;
    let members: Vec<String> = batch.jobs.iter().map(|job| job.id.to_string()).collect();
    sqlx::query("UPDATE jobs SET batch_id = $1 WHERE id = ANY($2)")
        .bind(batch.id.to_string())
        .bind(&members)
        .execute(&mut *conn)
        .await?;
    sqlx::query(
        "INSERT INTO batches (id, description, created_at, size, on_success, on_complete) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(batch.id.to_string())
    .bind(&batch.description)
    .bind(now)
    .bind(members.len() as i64)
    .bind(batch.on_success.as_ref().map(|job| job.id.to_string()))
    .bind(batch.on_complete.as_ref().map(|job| job.id.to_string()))
    .execute(&mut *conn)
    .await?;
    Ok(())
}

type BatchRow = (String, i64, Option<String>, Option<String>, Option<i64>);

/// A batch with the state of every job and callback.
pub(super) async fn batch(conn: &mut PgConnection, id: JobId) -> Result<Option<BatchInfo>> {
    let row: Option<BatchRow> = sqlx::query_as(
        "SELECT description, created_at, on_success, on_complete, cancelled_at \
         FROM batches WHERE id = $1",
    )
    .bind(id.to_string())
    .fetch_optional(&mut *conn)
    .await?;
    let Some((description, created_at, on_success, on_complete, cancelled_at)) = row else {
        return Ok(None);
    };
    let members: Vec<(String, String)> =
        sqlx::query_as("SELECT id, state FROM jobs WHERE batch_id = $1 ORDER BY id")
            .bind(id.to_string())
            .fetch_all(&mut *conn)
            .await?;
    let jobs = members
        .iter()
        .map(|(job, state)| Ok((parse_id(job)?, parse_state(state)?)))
        .collect::<Result<Vec<_>>>()?;
    Ok(Some(BatchInfo {
        id,
        description,
        created_at,
        jobs,
        on_success: callback(conn, on_success).await?,
        on_complete: callback(conn, on_complete).await?,
        cancelled_at,
    }))
}

/// A batch callback's id and state, while it exists.
async fn callback(
    conn: &mut PgConnection,
    id: Option<String>,
) -> Result<Option<(JobId, JobState)>> {
    let Some(id) = id else { return Ok(None) };
    let state: Option<String> = sqlx::query_scalar("SELECT state FROM jobs WHERE id = $1")
        .bind(&id)
        .fetch_optional(&mut *conn)
        .await?;
    match state {
        Some(state) => Ok(Some((parse_id(&id)?, parse_state(&state)?))),
        None => Ok(None),
    }
}

/// Cancels a batch's waiting jobs and requests cancellation of its running ones, which
/// it returns.
pub(super) async fn cancel_batch(
    conn: &mut PgConnection,
    id: JobId,
    now: Millis,
) -> Result<Vec<JobId>> {
    let batch = id.to_string();
    let found =
        sqlx::query("UPDATE batches SET cancelled_at = coalesce(cancelled_at, $2) WHERE id = $1")
            .bind(&batch)
            .bind(now)
            .execute(&mut *conn)
            .await?;
    if found.rows_affected() == 0 {
        return Err(Error::Invalid(format!("no batch with id {id}")));
    }
    sqlx::query(
        "UPDATE jobs SET state = 'cancelled', state_at = $2, finished_at = $2, \
         state_reason = 'batch cancelled', error_kind = 'cancelled', \
         error_message = 'batch cancelled' \
         WHERE batch_id = $1 AND state IN ('awaiting', 'scheduled', 'enqueued')",
    )
    .bind(&batch)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    let running: Vec<String> = sqlx::query_scalar(
        "UPDATE jobs SET cancel_requested = true WHERE batch_id = $1 AND state = 'processing' \
         RETURNING id",
    )
    .bind(&batch)
    .fetch_all(&mut *conn)
    .await?;
    running.iter().map(|id| parse_id(id)).collect()
}
