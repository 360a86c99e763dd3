//! Recurring jobs on SQLite: the `recurring_jobs` table (see the migration) and the
//! firing pass.
//!
//! Writes run on the writer's connection, each in a transaction of its own: a firing
//! pass reads the due definitions, inserts their jobs and moves each definition to its
//! next occurrence in one transaction, so an occurrence's job exists exactly when the
//! definition has moved past it. Jobs are inserted by [`batch::insert`], which records
//! them `submitted`; the same transaction then writes the occurrence as the reason.

use super::jobs::fetch_job;
use super::{SqliteStore, batch};
use crate::model::{Job, JobId, Millis};
use crate::store::changes::{Changed, Changes};
use crate::store::recurring::{Firing, Occurrence, RecurringRow, SELECT_RECURRING};
use crate::store::{
    Error, NewJob, PutRecurring, RecurringDefinition, RecurringJob, RecurringStore, Result,
};
use async_trait::async_trait;
use serde_json::{Value, json};
use sqlx::SqliteConnection;

/// One recurring job, read on `conn`.
async fn fetch(conn: &mut SqliteConnection, id: &str) -> Result<Option<RecurringJob>> {
    let row: Option<RecurringRow> = sqlx::query_as(&format!("{SELECT_RECURRING} WHERE r.id = ?1"))
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?;
    row.map(RecurringJob::try_from).transpose()
}

/// One recurring job that must exist.
async fn fetch_existing(conn: &mut SqliteConnection, id: &str) -> Result<RecurringJob> {
    fetch(conn, id)
        .await?
        .ok_or_else(|| Error::RecurringNotFound(id.to_owned()))
}

/// Inserts or replaces a definition; returns whether it is new.
async fn upsert(
    conn: &mut SqliteConnection,
    definition: &RecurringDefinition,
    now: Millis,
) -> Result<bool> {
    let existed = sqlx::query("SELECT 1 FROM recurring_jobs WHERE id = ?1")
        .bind(&definition.id)
        .fetch_optional(&mut *conn)
        .await?
        .is_some();
    // SET expressions read the row as it was, so `cron` and `timezone` below are the
    // old schedule: an unchanged one keeps its pending occurrence.
    sqlx::query(
        "INSERT INTO recurring_jobs (id, cron, timezone, plugin, args, queue, priority, \
         max_attempts, misfire, next_run_at, created_at, updated_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?11) \
         ON CONFLICT (id) DO UPDATE SET cron = excluded.cron, timezone = excluded.timezone, \
         plugin = excluded.plugin, args = excluded.args, queue = excluded.queue, \
         priority = excluded.priority, max_attempts = excluded.max_attempts, \
         misfire = excluded.misfire, updated_at = excluded.updated_at, \
         next_run_at = CASE WHEN paused = 1 THEN NULL \
                       WHEN cron = excluded.cron AND timezone = excluded.timezone \
                       THEN next_run_at ELSE excluded.next_run_at END",
    )
    .bind(&definition.id)
    .bind(definition.schedule.expression())
    .bind(definition.schedule.timezone())
    .bind(&definition.plugin)
    .bind(definition.args.to_string())
    .bind(&definition.queue)
    .bind(definition.priority)
    .bind(i64::from(definition.max_attempts))
    .bind(definition.misfire.as_str())
    .bind(definition.schedule.next_after(now))
    .bind(now)
    .execute(&mut *conn)
    .await?;
    Ok(!existed)
}

/// A job to insert and the recurring job it belongs to.
struct Fired {
    recurring_id: String,
    job: NewJob,
    occurrence: Occurrence,
}

/// Inserts the jobs of `fired` and labels each with its occurrence.
async fn insert_jobs(conn: &mut SqliteConnection, fired: &[Fired], now: Millis) -> Result<()> {
    if fired.is_empty() {
        return Ok(());
    }
    let jobs: Vec<NewJob> = fired.iter().map(|f| f.job.clone()).collect();
    batch::insert(conn, &jobs, now).await?;
    let reasons: Vec<Value> = fired
        .iter()
        .map(|f| {
            let reason = f.occurrence.reason(&f.recurring_id, now);
            json!({"id": f.job.id.to_string(), "reason": reason})
        })
        .collect();
    let reasons = Value::Array(reasons).to_string();
    for statement in [
        "UPDATE jobs SET state_reason = r.reason FROM (SELECT value->>'id' AS id, \
         value->>'reason' AS reason FROM json_each(?1)) AS r WHERE jobs.id = r.id",
        "UPDATE job_history SET reason = r.reason FROM (SELECT value->>'id' AS id, \
         value->>'reason' AS reason FROM json_each(?1)) AS r WHERE job_history.job_id = r.id",
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
    conn: &mut SqliteConnection,
    id: &str,
    next_run_at: Option<Millis>,
    last: Option<(JobId, Millis)>,
) -> Result<()> {
    sqlx::query(
        "UPDATE recurring_jobs SET next_run_at = ?2, \
         last_job_id = COALESCE(?3, last_job_id), last_run_at = COALESCE(?4, last_run_at) \
         WHERE id = ?1",
    )
    .bind(id)
    .bind(next_run_at)
    .bind(last.map(|(job, _)| job.to_string()))
    .bind(last.map(|(_, at)| at))
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// The firing pass on `conn`; see [`crate::store::JobStore::fire_recurring`].
async fn fire_due(conn: &mut SqliteConnection, now: Millis) -> Result<Vec<(String, JobId)>> {
    let rows: Vec<RecurringRow> = sqlx::query_as(&format!(
        "{SELECT_RECURRING} WHERE r.paused = 0 AND r.next_run_at <= ?1 \
         ORDER BY r.next_run_at, r.id"
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
async fn any_due(conn: &mut SqliteConnection, now: Millis) -> Result<bool> {
    let due =
        sqlx::query("SELECT 1 FROM recurring_jobs WHERE paused = 0 AND next_run_at <= ?1 LIMIT 1")
            .bind(now)
            .fetch_optional(&mut *conn)
            .await?;
    Ok(due.is_some())
}

/// Enqueues a job of `id` now, outside its schedule.
async fn trigger(conn: &mut SqliteConnection, id: &str, now: Millis) -> Result<Job> {
    let recurring = fetch_existing(conn, id).await?;
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
    conn: &mut SqliteConnection,
    id: &str,
    paused: bool,
    now: Millis,
) -> Result<RecurringJob> {
    let recurring = fetch_existing(conn, id).await?;
    let next_run_at = match (paused, recurring.paused) {
        (true, _) => None,
        (false, true) => recurring.definition.schedule.next_after(now),
        (false, false) => recurring.next_run_at,
    };
    sqlx::query(
        "UPDATE recurring_jobs SET paused = ?2, next_run_at = ?3, updated_at = ?4 WHERE id = ?1",
    )
    .bind(id)
    .bind(paused)
    .bind(next_run_at)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    fetch_existing(conn, id).await
}

/// Deletes `id`.
async fn delete(conn: &mut SqliteConnection, id: &str) -> Result<()> {
    let done = sqlx::query("DELETE FROM recurring_jobs WHERE id = ?1")
        .bind(id)
        .execute(&mut *conn)
        .await?;
    if done.rows_affected() == 0 {
        return Err(Error::RecurringNotFound(id.to_owned()));
    }
    Ok(())
}

#[async_trait]
impl RecurringStore for SqliteStore {
    async fn put_recurring(
        &self,
        definition: RecurringDefinition,
        now: Millis,
    ) -> Result<PutRecurring> {
        self.exec(move |conn| {
            Box::pin(async move {
                let created = upsert(conn, &definition, now).await?;
                let recurring = fetch_existing(conn, &definition.id).await?;
                Ok(PutRecurring { recurring, created })
            })
        })
        .await
    }

    async fn recurring(&self, id: &str) -> Result<Option<RecurringJob>> {
        let mut conn = self.readers.acquire().await?;
        fetch(&mut conn, id).await
    }

    async fn list_recurring(&self) -> Result<Vec<RecurringJob>> {
        let rows: Vec<RecurringRow> = sqlx::query_as(&format!("{SELECT_RECURRING} ORDER BY r.id"))
            .fetch_all(&self.readers)
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

    // Looks on a reader first, so that a pass with nothing due (nearly every pass)
    // costs the writer nothing.
    async fn fire_recurring(&self, now: Millis) -> Result<Changed<Vec<(String, JobId)>>> {
        if !any_due(&mut *self.readers.acquire().await?, now).await? {
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
