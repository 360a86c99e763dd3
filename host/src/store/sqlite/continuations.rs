//! Continuations and batches on SQLite: parent links, and batches created at once.
//!
//! Waiting children are released or cancelled by the `jobs_continue` trigger (see the
//! migration) in the transaction that finishes their last parent; this module links a
//! new child to its parents and settles children whose parents had already finished.

use super::batch;
use super::rows;
use super::rows::parse_id;
use crate::model::{JobId, JobState, Millis};
use crate::store::{BatchInfo, Error, NewBatch, NewJob, Parents, Result};
use serde_json::Value;
use sqlx::SqliteConnection;

fn id_list(ids: &[JobId]) -> String {
    Value::Array(ids.iter().map(|id| Value::String(id.to_string())).collect()).to_string()
}

/// Stores `jobs` (in one statement), then links each continuation to its parents.
pub(super) async fn insert_linked(
    conn: &mut SqliteConnection,
    jobs: &[NewJob],
    now: Millis,
) -> Result<()> {
    batch::insert(conn, jobs, now).await?;
    for job in jobs {
        if let Some(parents) = &job.parents {
            link(conn, job.id, parents, now).await?;
        }
    }
    Ok(())
}

/// Links `child` to `parents`, counting those not yet finished, and settles it at once
/// if they all have (or, waiting on success, one already failed).
async fn link(
    conn: &mut SqliteConnection,
    child: JobId,
    parents: &Parents,
    now: Millis,
) -> Result<()> {
    let ids = id_list(&parents.ids);
    let missing: Option<(String,)> = sqlx::query_as(
        "SELECT value FROM json_each(?1) WHERE value NOT IN (SELECT id FROM jobs) LIMIT 1",
    )
    .bind(&ids)
    .fetch_optional(&mut *conn)
    .await?;
    if let Some((missing,)) = missing {
        return Err(Error::Invalid(format!(
            "parent job {missing} does not exist"
        )));
    }
    let child = child.to_string();
    // One statement per call: sqlx binds numbered parameters wrongly across statements.
    let steps = [
        "UPDATE jobs SET has_children = 1 WHERE id IN (SELECT value FROM json_each(?2))",
        "INSERT OR IGNORE INTO job_parents (job_id, parent_id, done) \
         SELECT ?1, id, state IN ('succeeded', 'failed', 'cancelled') FROM jobs \
         WHERE id IN (SELECT value FROM json_each(?2))",
        "UPDATE jobs SET await_on = ?3, pending_parents = \
         (SELECT count(*) FROM job_parents WHERE job_id = ?1 AND done = 0) WHERE id = ?1",
        "UPDATE jobs SET state = 'cancelled', state_at = ?4, finished_at = ?4, \
         state_reason = 'a parent had already failed or been cancelled', \
         error_kind = 'cancelled', error_message = 'a parent had already failed or been cancelled' \
         WHERE id = ?1 AND await_on = 'success' AND EXISTS (SELECT 1 FROM job_parents p \
             JOIN jobs parent ON parent.id = p.parent_id \
             WHERE p.job_id = ?1 AND parent.state IN ('failed', 'cancelled'))",
        "UPDATE jobs SET state = 'enqueued', state_at = ?4, state_reason = 'parents finished', \
         run_at = max(run_at, ?4) \
         WHERE id = ?1 AND state = 'awaiting' AND pending_parents = 0",
    ];
    for sql in steps {
        sqlx::query(sql)
            .bind(&child)
            .bind(&ids)
            .bind(parents.on.as_str())
            .bind(now)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

/// Stores a batch: its jobs, its callbacks (continuations of every job) and its row.
pub(super) async fn create_batch(
    conn: &mut SqliteConnection,
    batch: NewBatch,
    now: Millis,
) -> Result<()> {
    insert_linked(conn, &batch.jobs, now).await?;
    let member_ids: Vec<JobId> = batch.jobs.iter().map(|job| job.id).collect();
    let callbacks: Vec<NewJob> = [&batch.on_success, &batch.on_complete]
        .into_iter()
        .flatten()
        .cloned()
        .collect();
    insert_linked(conn, &callbacks, now).await?;
    sqlx::query("UPDATE jobs SET batch_id = ?1 WHERE id IN (SELECT value FROM json_each(?2))")
        .bind(batch.id.to_string())
        .bind(id_list(&member_ids))
        .execute(&mut *conn)
        .await?;
    sqlx::query(
        "INSERT INTO batches (id, description, created_at, size, on_success, on_complete) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )
    .bind(batch.id.to_string())
    .bind(&batch.description)
    .bind(now)
    .bind(member_ids.len() as i64)
    .bind(batch.on_success.as_ref().map(|job| job.id.to_string()))
    .bind(batch.on_complete.as_ref().map(|job| job.id.to_string()))
    .execute(&mut *conn)
    .await?;
    Ok(())
}

type BatchRow = (String, i64, Option<String>, Option<String>, Option<i64>);

/// A batch with the state of every job and callback.
pub(super) async fn batch(conn: &mut SqliteConnection, id: JobId) -> Result<Option<BatchInfo>> {
    let row: Option<BatchRow> = sqlx::query_as(
        "SELECT description, created_at, on_success, on_complete, cancelled_at \
         FROM batches WHERE id = ?1",
    )
    .bind(id.to_string())
    .fetch_optional(&mut *conn)
    .await?;
    let Some((description, created_at, on_success, on_complete, cancelled_at)) = row else {
        return Ok(None);
    };
    let members: Vec<(String, String)> =
        sqlx::query_as("SELECT id, state FROM jobs WHERE batch_id = ?1 ORDER BY id")
            .bind(id.to_string())
            .fetch_all(&mut *conn)
            .await?;
    let jobs = members
        .iter()
        .map(|(job, state)| Ok((parse_id(job)?, rows::parse_state(state)?)))
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

async fn callback(
    conn: &mut SqliteConnection,
    id: Option<String>,
) -> Result<Option<(JobId, JobState)>> {
    let Some(id) = id else { return Ok(None) };
    let state: Option<(String,)> = sqlx::query_as("SELECT state FROM jobs WHERE id = ?1")
        .bind(&id)
        .fetch_optional(&mut *conn)
        .await?;
    match state {
        Some((state,)) => Ok(Some((parse_id(&id)?, rows::parse_state(&state)?))),
        None => Ok(None),
    }
}

/// Cancels a batch's waiting jobs and requests cancellation of its running ones, which
/// it returns.
pub(super) async fn cancel_batch(
    conn: &mut SqliteConnection,
    id: JobId,
    now: Millis,
) -> Result<Vec<JobId>> {
    let batch = id.to_string();
    let found =
        sqlx::query("UPDATE batches SET cancelled_at = coalesce(cancelled_at, ?2) WHERE id = ?1")
            .bind(&batch)
            .bind(now)
            .execute(&mut *conn)
            .await?;
    if found.rows_affected() == 0 {
        return Err(Error::Invalid(format!("no batch with id {id}")));
    }
    sqlx::query(
        "UPDATE jobs SET state = 'cancelled', state_at = ?2, finished_at = ?2, \
         state_reason = 'batch cancelled', error_kind = 'cancelled', \
         error_message = 'batch cancelled' \
         WHERE batch_id = ?1 AND state IN ('awaiting', 'scheduled', 'enqueued')",
    )
    .bind(&batch)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    let running: Vec<(String,)> = sqlx::query_as(
        "UPDATE jobs SET cancel_requested = 1 WHERE batch_id = ?1 AND state = 'processing' \
         RETURNING id",
    )
    .bind(&batch)
    .fetch_all(&mut *conn)
    .await?;
    running.iter().map(|(id,)| parse_id(id)).collect()
}
