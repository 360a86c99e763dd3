//! Recurring jobs on PostgreSQL: the `recurring_jobs` table (see the migration) and the
//! firing pass.
//!
//! A firing pass locks the due definitions (`FOR UPDATE SKIP LOCKED`), inserts their jobs
//! and moves each definition to its next occurrence in one transaction, so an
//! occurrence's job exists exactly when the definition has moved past it, and two hosts
//! firing at once never fire the same occurrence. Jobs are inserted by
//! [`super::jobs::insert`], which records them `submitted`; the same transaction then
//! writes the occurrence as the reason.

use super::PostgresStore;
use super::jobs::{fetch_job, insert};
use crate::model::{Job, JobId, Millis};
use crate::store::changes::{Changed, Changes};
use crate::store::recurring::{Firing, Occurrence, RecurringRow, SELECT_RECURRING};
use crate::store::{
    Error, NewJob, PutRecurring, RecurringDefinition, RecurringJob, RecurringStore, Result,
};
use async_trait::async_trait;
use serde_json::{Value, json};
use sqlx::PgConnection;

/// One recurring job, read on `conn`.
async fn fetch(conn: &mut PgConnection, id: &str) -> Result<Option<RecurringJob>> {
    let row: Option<RecurringRow> = sqlx::query_as(&format!("{SELECT_RECURRING} WHERE r.id = $1"))
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?;
    row.map(RecurringJob::try_from).transpose()
}

/// One recurring job that must exist, its row locked until the transaction ends so that
/// what the caller writes from it is not overtaken by another host's write.
async fn fetch_locked(conn: &mut PgConnection, id: &str) -> Result<RecurringJob> {
    let row: Option<RecurringRow> = sqlx::query_as(&format!(
        "{SELECT_RECURRING} WHERE r.id = $1 FOR UPDATE OF r"
    ))
    .bind(id)
    .fetch_optional(&mut *conn)
    .await?;
    row.map(RecurringJob::try_from)
        .transpose()?
        .ok_or_else(|| Error::RecurringNotFound(id.to_owned()))
}

/// Inserts or replaces a definition in one statement; returns whether it is new.
async fn upsert(
    conn: &mut PgConnection,
    definition: &RecurringDefinition,
    now: Millis,
) -> Result<bool> {
    // SET expressions read the row as it was, so `cron` and `timezone` below are the
    // old schedule: an unchanged one keeps its pending occurrence.
    let created: bool = sqlx::query_scalar(
        "INSERT INTO recurring_jobs AS r (id, cron, timezone, plugin, args, queue, priority, \
         max_attempts, misfire, next_run_at, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11) \
         ON CONFLICT (id) DO UPDATE SET cron = excluded.cron, timezone = excluded.timezone, \
         plugin = excluded.plugin, args = excluded.args, queue = excluded.queue, \
         priority = excluded.priority, max_attempts = excluded.max_attempts, \
         misfire = excluded.misfire, updated_at = excluded.updated_at, \
         next_run_at = CASE WHEN r.paused THEN NULL \
                       WHEN r.cron = excluded.cron AND r.timezone = excluded.timezone \
                       THEN r.next_run_at ELSE excluded.next_run_at END \
         RETURNING (xmax = 0)",
    )
    .bind(&definition.id)
    .bind(definition.schedule.expression())
    .bind(definition.schedule.timezone())
    .bind(&definition.plugin)
    .bind(definition.args.to_string())
    .bind(&definition.queue)
    .bind(i64::from(definition.priority))
    .bind(i64::from(definition.max_attempts))
    .bind(definition.misfire.as_str())
    .bind(definition.schedule.next_after(now))
    .bind(now)
    .fetch_one(&mut *conn)
    .await?;
    Ok(created)
}

/// A job to insert and the recurring job it belongs to.
struct Fired {
    recurring_id: String,
    job: NewJob,
    occurrence: Occurrence,
}

/// Inserts the jobs of `fired` and labels each with its occurrence.
async fn insert_jobs(conn: &mut PgConnection, fired: &[Fired], now: Millis) -> Result<()> {
    if fired.is_empty() {
        return Ok(());
    }
    let jobs: Vec<NewJob> = fired.iter().map(|f| f.job.clone()).collect();
    insert(conn, &jobs, now).await?;
    let reasons: Vec<Value> = fired
        .iter()
        .map(|f| {
            let reason = f.occurrence.reason(&f.recurring_id, now);
            json!({"id": f.job.id.to_string(), "reason": reason})
        })
        .collect();
    let reasons = Value::Array(reasons).to_string();
    for statement in [
        "UPDATE jobs SET state_reason = r.reason \
         FROM jsonb_to_recordset($1::jsonb) AS r(id text, reason text) WHERE jobs.id = r.id",
        "UPDATE job_history SET reason = r.reason \
         FROM jsonb_to_recordset($1::jsonb) AS r(id text, reason text) \
         WHERE job_history.job_id = r.id",
    ] {
        sqlx::query(statement)
            .bind(&reasons)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

/// Sets a recurring job's pending occurrence to `next_run_at`, and records `last` (its
/// new last job and that job's time) if a job was enqueued.
async fn advance(
    conn: &mut PgConnection,
    id: &str,
    next_run_at: Option<Millis>,
    last: Option<(JobId, Millis)>,
) -> Result<()> {
    sqlx::query(
        "UPDATE recurring_jobs SET next_run_at = $2, \
         last_job_id = COALESCE($3, last_job_id), last_run_at = COALESCE($4, last_run_at) \
         WHERE id = $1",
    )
    .bind(id)
    .bind(next_run_at)
    .bind(last.map(|(job, _)| job.to_string()))
    .bind(last.map(|(_, at)| at))
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// The firing pass on `conn`; see [`crate::store::JobStore::fire_recurring`]. The due
/// definitions are locked, and those another host is firing skipped, so that each
/// occurrence fires once however many hosts run the pass.
async fn fire_due(conn: &mut PgConnection, now: Millis) -> Result<Vec<(String, JobId)>> {
    let rows: Vec<RecurringRow> = sqlx::query_as(&format!(
        "{SELECT_RECURRING} WHERE NOT r.paused AND r.next_run_at <= $1 \
         ORDER BY r.next_run_at, r.id FOR UPDATE OF r SKIP LOCKED"
    ))
    .bind(now)
    .fetch_all(&mut *conn)
    .await?;
    let mut fired = Vec::new();
    for row in rows {
        let recurring = RecurringJob::try_from(row)?;
        let Some(due) = recurring.next_run_at else {
            continue;
        };
        let definition = recurring.definition;
        let firing = Firing::plan(&definition.schedule, definition.misfire, due, now);
        let job = firing.job.map(|occurrence| Fired {
            job: definition.new_job(occurrence.run_at()),
            recurring_id: definition.id.clone(),
            occurrence,
        });
        let last = job.as_ref().map(|f| (f.job.id, f.occurrence.at(now)));
        advance(conn, &definition.id, firing.next_run_at, last).await?;
        fired.extend(job);
    }
    insert_jobs(conn, &fired, now).await?;
    Ok(fired
        .into_iter()
        .map(|f| (f.recurring_id, f.job.id))
        .collect())
}

/// Whether any unpaused recurring job is due by `now`.
async fn any_due(pool: &sqlx::PgPool, now: Millis) -> Result<bool> {
    let due =
        sqlx::query("SELECT 1 FROM recurring_jobs WHERE NOT paused AND next_run_at <= $1 LIMIT 1")
            .bind(now)
            .fetch_optional(pool)
            .await?;
    Ok(due.is_some())
}

/// Enqueues a job of `id` now, outside its schedule.
async fn trigger(conn: &mut PgConnection, id: &str, now: Millis) -> Result<Job> {
    let recurring = fetch_locked(conn, id).await?;
    let fired = Fired {
        job: recurring.definition.new_job(None),
        recurring_id: recurring.definition.id,
        occurrence: Occurrence::Triggered,
    };
    insert_jobs(conn, std::slice::from_ref(&fired), now).await?;
    let last = Some((fired.job.id, now));
    advance(conn, id, recurring.next_run_at, last).await?;
    fetch_job(conn, fired.job.id).await
}

/// Pauses or resumes `id`; a resumed job waits for its first occurrence after `now`.
async fn set_paused(
    conn: &mut PgConnection,
    id: &str,
    paused: bool,
    now: Millis,
) -> Result<RecurringJob> {
    let recurring = fetch_locked(conn, id).await?;
    let next_run_at = match (paused, recurring.paused) {
        (true, _) => None,
        (false, true) => recurring.definition.schedule.next_after(now),
        (false, false) => recurring.next_run_at,
    };
    sqlx::query(
        "UPDATE recurring_jobs SET paused = $2, next_run_at = $3, updated_at = $4 WHERE id = $1",
    )
    .bind(id)
    .bind(paused)
    .bind(next_run_at)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    fetch_locked(conn, id).await
}

/// Deletes `id`.
async fn delete(conn: &mut PgConnection, id: &str) -> Result<()> {
    let done = sqlx::query("DELETE FROM recurring_jobs WHERE id = $1")
        .bind(id)
        .execute(&mut *conn)
        .await?;
    if done.rows_affected() == 0 {
        return Err(Error::RecurringNotFound(id.to_owned()));
    }
    Ok(())
}

#[async_trait]
impl RecurringStore for PostgresStore {
    async fn put_recurring(
        &self,
        definition: RecurringDefinition,
        now: Millis,
    ) -> Result<PutRecurring> {
        self.exec(move |conn| {
            Box::pin(async move {
                let created = upsert(conn, &definition, now).await?;
                let recurring = fetch_locked(conn, &definition.id).await?;
                Ok(PutRecurring { recurring, created })
            })
        })
        .await
    }

    async fn recurring(&self, id: &str) -> Result<Option<RecurringJob>> {
        let mut conn = self.pool.acquire().await?;
        fetch(&mut conn, id).await
    }

    async fn list_recurring(&self) -> Result<Vec<RecurringJob>> {
        let rows: Vec<RecurringRow> = sqlx::query_as(&format!("{SELECT_RECURRING} ORDER BY r.id"))
            .fetch_all(&self.pool)
            .await?;
        rows.into_iter().map(RecurringJob::try_from).collect()
    }

    async fn delete_recurring(&self, id: &str) -> Result<()> {
        let id = id.to_owned();
        self.exec(move |conn| Box::pin(async move { delete(conn, &id).await }))
            .await
    }

    async fn set_recurring_paused(
        &self,
        id: &str,
        paused: bool,
        now: Millis,
    ) -> Result<RecurringJob> {
        let id = id.to_owned();
        self.exec(move |conn| Box::pin(async move { set_paused(conn, &id, paused, now).await }))
            .await
    }

    // Looks on the pool first, so that a pass with nothing due (nearly every pass) opens
    // no transaction.
    async fn fire_recurring(&self, now: Millis) -> Result<Changed<Vec<(String, JobId)>>> {
        if !any_due(&self.pool, now).await? {
            return Ok(Changed {
                value: Vec::new(),
                changes: Changes::default(),
            });
        }
        self.exec_changing(move |conn| Box::pin(async move { fire_due(conn, now).await }))
            .await
    }

    async fn trigger_recurring(&self, id: &str, now: Millis) -> Result<Changed<Job>> {
        let id = id.to_owned();
        self.exec_changing(move |conn| Box::pin(async move { trigger(conn, &id, now).await }))
            .await
    }
}
