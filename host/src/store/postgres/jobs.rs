//! Jobs on PostgreSQL: the [`JobStore`] methods, and the helpers the other areas share.

use super::writer::Command;
use super::{PostgresStore, claims, continuations, links, logs};
use crate::model::{Job, JobDetail, JobId, JobState, LogLine, Millis, Progress, Transition};
use crate::store::changes::{ChangeSink, Changed, Changes, JobChange};
use crate::store::moves::{self, initial_reason, initial_state};
use crate::store::rows::{JOB_COLUMNS, JobRow, TransitionRow, convert, parse_id, parse_state};
use crate::store::stats::Samples;
use crate::store::{
    BatchInfo, CancelOutcome, ClaimParams, Claimed, Completion, DETAIL_LOG_LINES, Error, Failure,
    JobFilter, JobStore, LeaseId, LogPage, LogQuery, NewBatch, NewJob, Page, Renewal, Result,
    Submitted,
};
use async_trait::async_trait;
use serde_json::{Value, json};
use sqlx::{FromRow, PgConnection, Postgres, QueryBuilder, Row};
use std::sync::Arc;
use tokio::sync::oneshot;

/// The columns of a new job, read from a JSON array of objects built by [`new_rows`].
const NEW_JOBS: &str = "INSERT INTO jobs (id, plugin, args, queue, priority, state, \
    max_attempts, run_at, created_at, repository_path, state_at, state_reason, unique_key, \
    agent_id) \
    SELECT id, plugin, args, queue, priority, state, max_attempts, run_at, now, repo, now, \
    reason, unique_key, agent \
    FROM jsonb_to_recordset($1::jsonb) AS j(id text, plugin text, args text, queue text, \
    priority bigint, state text, max_attempts bigint, run_at bigint, now bigint, repo text, \
    reason text, unique_key text, agent text, n bigint) ORDER BY n";

/// `jobs` as the JSON array [`NEW_JOBS`] reads, each stored at `now`.
fn new_rows(jobs: &[NewJob], now: Millis) -> String {
    let items: Vec<Value> = jobs
        .iter()
        .enumerate()
        .map(|(n, job)| {
            let state = initial_state(job, now);
            json!({
                "id": job.id.to_string(), "plugin": job.plugin, "args": job.args.as_str(),
                "queue": job.queue, "priority": job.priority, "state": state.as_str(),
                "max_attempts": job.max_attempts, "run_at": job.run_at.unwrap_or(now),
                "now": now, "repo": job.repository_path, "reason": initial_reason(state),
                "unique_key": job.unique_key, "agent": job.agent_id, "n": n,
            })
        })
        .collect();
    Value::Array(items).to_string()
}

/// Inserts `jobs` on `conn`, inside the caller's transaction, in one statement.
///
/// # Errors
/// A database error when a unique key is held by an unfinished job.
pub(super) async fn insert(conn: &mut PgConnection, jobs: &[NewJob], now: Millis) -> Result<()> {
    if jobs.is_empty() {
        return Ok(());
    }
    sqlx::query(NEW_JOBS)
        .bind(new_rows(jobs, now))
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// The stored job `id`, read on `conn`.
pub(super) async fn fetch_job(conn: &mut PgConnection, id: JobId) -> Result<Job> {
    let row: JobRow = sqlx::query_as(&format!("SELECT {JOB_COLUMNS} FROM jobs WHERE id = $1"))
        .bind(id.to_string())
        .fetch_one(&mut *conn)
        .await?;
    Job::try_from(row)
}

/// Stores `job` unless an unfinished job holds its unique key (then returns that one),
/// linking it to its parents if it has any. Two hosts storing the same key at once
/// cannot both succeed: the loser's insert does nothing, and it returns the winner's job.
async fn enqueue_checked(conn: &mut PgConnection, job: NewJob, now: Millis) -> Result<Submitted> {
    let inserted = sqlx::query(&format!(
        "{NEW_JOBS} ON CONFLICT (unique_key) WHERE unique_key IS NOT NULL \
         AND state IN ('awaiting', 'scheduled', 'enqueued', 'processing') DO NOTHING"
    ))
    .bind(new_rows(std::slice::from_ref(&job), now))
    .execute(&mut *conn)
    .await?;
    if inserted.rows_affected() == 0 {
        let holder: JobRow = sqlx::query_as(&format!(
            "SELECT {JOB_COLUMNS} FROM jobs WHERE unique_key = $1 \
             AND state IN ('awaiting', 'scheduled', 'enqueued', 'processing')"
        ))
        .bind(&job.unique_key)
        .fetch_one(&mut *conn)
        .await?;
        return Ok(Submitted {
            job: Job::try_from(holder)?,
            created: false,
            changes: Changes::default(),
        });
    }
    continuations::link_all(conn, std::slice::from_ref(&job), now).await?;
    Ok(Submitted {
        job: fetch_job(conn, job.id).await?,
        created: true,
        changes: Changes::default(),
    })
}

/// The state of job `id`, its row locked until the transaction ends.
async fn locked_state(conn: &mut PgConnection, id: JobId) -> Result<JobState> {
    let state: Option<String> =
        sqlx::query_scalar("SELECT state FROM jobs WHERE id = $1 FOR UPDATE")
            .bind(id.to_string())
            .fetch_optional(&mut *conn)
            .await?;
    match state {
        Some(state) => parse_state(&state),
        None => Err(Error::NotFound(id)),
    }
}

/// Moves the `processing` jobs `owner` holds back to `enqueued` or, when cancellation
/// was requested, to `cancelled`; the interrupted attempt is not counted.
async fn requeue(conn: &mut PgConnection, owner: &str, now: Millis) -> Result<()> {
    sqlx::query(
        "UPDATE jobs SET \
         state = CASE WHEN cancel_requested THEN 'cancelled' ELSE 'enqueued' END, \
         state_at = $1, \
         state_reason = CASE WHEN cancel_requested THEN 'cancelled while running' \
                        ELSE 'released at host shutdown' END, \
         attempt = CASE WHEN cancel_requested THEN attempt ELSE attempt - 1 END, \
         finished_at = CASE WHEN cancel_requested THEN $1 END, \
         lease_id = NULL, lease_owner = NULL, lease_expires_at = NULL \
         WHERE state = 'processing' AND lease_owner = $2",
    )
    .bind(now)
    .bind(owner)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// The report of a deletion that removed `jobs`.
fn removed(jobs: Vec<JobChange>) -> Changed<()> {
    Changed {
        value: (),
        changes: Changes {
            jobs,
            batches: Vec::new(),
        },
    }
}

/// A job deleted, as `DELETE … RETURNING` gives it.
#[derive(FromRow)]
struct RemovedRow {
    id: String,
    state: String,
    queue: String,
    plugin: String,
    attempt: i64,
    batch_id: Option<String>,
    agent_id: Option<String>,
    task_id: Option<String>,
}

/// Deletes the jobs `ids` that are not running, with their history, log and parent
/// links; returns their moves out of existence.
async fn remove(
    conn: &mut PgConnection,
    ids: &[String],
    reason: &str,
    now: Millis,
) -> Result<Vec<JobChange>> {
    let rows: Vec<RemovedRow> = sqlx::query_as(
        "WITH gone AS (DELETE FROM jobs WHERE id = ANY($1) AND state <> 'processing' \
         RETURNING id, state, queue, plugin, attempt, batch_id, agent_id), \
         tasks_gone AS (SELECT t.job_id, t.id FROM tasks t WHERE t.job_id = ANY($1)) \
         SELECT g.*, t.id AS task_id FROM gone g LEFT JOIN tasks_gone t ON t.job_id = g.id",
    )
    .bind(ids)
    .fetch_all(&mut *conn)
    .await?;
    let gone: Vec<&str> = rows.iter().map(|row| row.id.as_str()).collect();
    for sql in [
        "DELETE FROM job_logs WHERE job_id = ANY($1)",
        "DELETE FROM job_history WHERE job_id = ANY($1)",
        "DELETE FROM job_parents WHERE job_id = ANY($1)",
    ] {
        sqlx::query(sql).bind(&gone).execute(&mut *conn).await?;
    }
    rows.into_iter()
        .map(|row| {
            Ok(JobChange {
                task: row.task_id.as_deref().map(parse_id).transpose()?,
                id: parse_id(&row.id)?,
                from: Some(parse_state(&row.state)?),
                to: None,
                reason: reason.to_owned(),
                at: now,
                queue: row.queue,
                plugin: row.plugin,
                attempt: u32::try_from(row.attempt).unwrap_or(0),
                batch: row.batch_id.as_deref().map(parse_id).transpose()?,
                agent: row.agent_id,
                lease: None,
            })
        })
        .collect()
}

#[async_trait]
impl JobStore for PostgresStore {
    async fn enqueue(&self, job: NewJob, now: Millis) -> Result<Submitted> {
        if job.unique_key.is_some() || job.parents.is_some() {
            let checked = self
                .exec_changing(move |conn| {
                    Box::pin(async move { enqueue_checked(conn, job, now).await })
                })
                .await?;
            return Ok(Submitted {
                changes: checked.changes,
                ..checked.value
            });
        }
        let stored = moves::stored(&job, now);
        let changes = self.enqueue_many(vec![job], now).await?;
        Ok(Submitted {
            job: stored,
            created: true,
            changes,
        })
    }

    async fn enqueue_many(&self, jobs: Vec<NewJob>, now: Millis) -> Result<Changes> {
        let created = Changes {
            jobs: jobs.iter().map(|job| moves::created(job, now)).collect(),
            batches: Vec::new(),
        };
        let linked = jobs.iter().any(|job| job.parents.is_some());
        let stored = self
            .exec_reporting(move |conn| {
                Box::pin(async move {
                    insert(conn, &jobs, now).await?;
                    if linked {
                        continuations::link_all(conn, &jobs, now).await?;
                        let changes = super::journal::mine(conn).await?;
                        return Ok(Changed { value: (), changes });
                    }
                    Ok(Changed {
                        value: (),
                        changes: created,
                    })
                })
            })
            .await?;
        Ok(stored.changes)
    }

    async fn claim(&self, params: &ClaimParams, now: Millis) -> Result<Vec<Claimed>> {
        let params = params.clone();
        let claimed = self
            .exec_reporting(move |conn| {
                Box::pin(async move { claims::claim(conn, &params, now).await })
            })
            .await?;
        let mut samples = Samples::default();
        for started in &claimed.value {
            samples.started(&started.job);
        }
        let _ = self.writer.send(Command::Counted(samples));
        Ok(claimed.value)
    }

    async fn heartbeat(&self, leases: &[(JobId, LeaseId)], until: Millis) -> Result<Renewal> {
        if leases.is_empty() {
            return Ok(Renewal::default());
        }
        let ids: Vec<String> = leases.iter().map(|(id, _)| id.to_string()).collect();
        let held: Vec<String> = leases.iter().map(|(_, lease)| lease.to_string()).collect();
        // A job locked now is being written by this host's writer (its outcome): renewing
        // it would wait for that, and could deadlock with it; it is skipped instead, and
        // renewed next time if it still runs. The renewal never waits, however long the
        // writer's queue.
        let renewed: Vec<(String, bool)> = sqlx::query_as(
            "UPDATE jobs SET lease_expires_at = $1 WHERE id IN ( \
                 SELECT jobs.id FROM jobs JOIN unnest($2::text[], $3::text[]) AS l(id, lease) \
                 ON jobs.id = l.id AND jobs.lease_id = l.lease \
                 WHERE jobs.state = 'processing' FOR UPDATE OF jobs SKIP LOCKED) \
             RETURNING id, cancel_requested",
        )
        .bind(until)
        .bind(ids)
        .bind(held)
        .fetch_all(&self.pool)
        .await?;
        Renewal::of(&renewed)
    }

    async fn complete(
        &self,
        id: JobId,
        lease: LeaseId,
        done: Completion,
        now: Millis,
    ) -> Result<Changes> {
        self.request(|reply| Command::Complete {
            id,
            lease,
            done,
            now,
            reply,
        })
        .await
    }

    async fn fail(
        &self,
        id: JobId,
        lease: LeaseId,
        failure: Failure,
        now: Millis,
    ) -> Result<Changes> {
        self.request(|reply| Command::Fail {
            id,
            lease,
            failure,
            now,
            reply,
        })
        .await
    }

    fn record_progress(&self, id: JobId, lease: LeaseId, progress: Progress) {
        let _ = self.writer.send(Command::Progress {
            id,
            lease,
            progress,
        });
    }

    fn append_logs(&self, id: JobId, attempt: u32, lines: Vec<LogLine>) {
        let _ = self.writer.send(Command::Logs { id, attempt, lines });
    }

    async fn promote_due(&self, now: Millis, limit: u32) -> Result<Changes> {
        let promoted = self.exec_changing(move |conn| {
            Box::pin(async move {
                sqlx::query(
                    "UPDATE jobs SET state = 'enqueued', state_at = $1, state_reason = 'due' \
                     WHERE id IN (SELECT id FROM jobs WHERE state = 'scheduled' AND run_at <= $1 \
                                  ORDER BY run_at LIMIT $2 FOR UPDATE SKIP LOCKED)",
                )
                .bind(now)
                .bind(i64::from(limit))
                .execute(&mut *conn)
                .await?;
                Ok(())
            })
        });
        Ok(promoted.await?.changes)
    }

    async fn expired_leases(&self, now: Millis, limit: u32) -> Result<Vec<Claimed>> {
        let rows = sqlx::query(&format!(
            "SELECT lease_id, {JOB_COLUMNS} FROM jobs \
             WHERE state = 'processing' AND lease_expires_at < $1 LIMIT $2"
        ))
        .bind(now)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(Claimed {
                    lease: parse_id(&row.try_get::<String, _>("lease_id")?)?,
                    job: Job::try_from(JobRow::from_row(row)?)?,
                })
            })
            .collect()
    }

    async fn release(&self, owner: &str, now: Millis) -> Result<Changes> {
        let owner = owner.to_owned();
        let released = self
            .exec_changing(move |conn| Box::pin(async move { requeue(conn, &owner, now).await }))
            .await?;
        Ok(released.changes)
    }

    async fn cancel(&self, id: JobId, now: Millis) -> Result<Changed<CancelOutcome>> {
        self.exec_changing(move |conn| {
            Box::pin(async move {
                match locked_state(conn, id).await? {
                    JobState::Awaiting | JobState::Scheduled | JobState::Enqueued => {
                        sqlx::query(
                            "UPDATE jobs SET state = 'cancelled', state_at = $2, \
                             state_reason = 'cancelled by request', finished_at = $2, \
                             error_kind = 'cancelled', error_message = 'cancelled by request' \
                             WHERE id = $1",
                        )
                        .bind(id.to_string())
                        .bind(now)
                        .execute(&mut *conn)
                        .await?;
                        Ok(CancelOutcome::Cancelled)
                    }
                    JobState::Processing => {
                        sqlx::query("UPDATE jobs SET cancel_requested = true WHERE id = $1")
                            .bind(id.to_string())
                            .execute(&mut *conn)
                            .await?;
                        Ok(CancelOutcome::Requested)
                    }
                    state => Err(Error::Conflict(format!("job {id} is already {state}"))),
                }
            })
        })
        .await
    }

    async fn retry(&self, id: JobId, now: Millis) -> Result<Changed<Job>> {
        self.exec_changing(move |conn| {
            Box::pin(async move {
                match locked_state(conn, id).await? {
                    JobState::Failed | JobState::Cancelled => {
                        sqlx::query(
                            "UPDATE jobs SET state = 'enqueued', state_at = $2, \
                             state_reason = 'retried by request', attempt = 0, run_at = $2, \
                             finished_at = NULL, cancel_requested = false, result = NULL \
                             WHERE id = $1",
                        )
                        .bind(id.to_string())
                        .bind(now)
                        .execute(&mut *conn)
                        .await?;
                        fetch_job(conn, id).await
                    }
                    state => Err(Error::Conflict(format!(
                        "job {id} is {state}: only failed or cancelled jobs can be retried"
                    ))),
                }
            })
        })
        .await
    }

    async fn delete(&self, id: JobId, now: Millis) -> Result<Changes> {
        let deleted = self.exec_reporting(move |conn| {
            Box::pin(async move {
                if locked_state(conn, id).await? == JobState::Processing {
                    return Err(Error::Conflict(format!(
                        "job {id} is processing: cancel it before deleting it"
                    )));
                }
                let jobs = remove(conn, &[id.to_string()], "deleted by request", now).await?;
                Ok(removed(jobs))
            })
        });
        Ok(deleted.await?.changes)
    }

    async fn get(&self, id: JobId) -> Result<Option<JobDetail>> {
        let mut conn = self.pool.acquire().await?;
        let row: Option<JobRow> =
            sqlx::query_as(&format!("SELECT {JOB_COLUMNS} FROM jobs WHERE id = $1"))
                .bind(id.to_string())
                .fetch_optional(&mut *conn)
                .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let history: Vec<TransitionRow> = sqlx::query_as(
            "SELECT state, at, reason FROM job_history WHERE job_id = $1 ORDER BY seq",
        )
        .bind(id.to_string())
        .fetch_all(&mut *conn)
        .await?;
        let log_counts = logs::counts(&mut conn, id).await?;
        Ok(Some(JobDetail {
            job: Job::try_from(row)?,
            links: links::of(&mut conn, id).await?,
            history: convert::<_, Transition>(history)?,
            logs: logs::latest(&mut conn, id, DETAIL_LOG_LINES).await?,
            log_count: log_counts.iter().map(|c| c.count).sum(),
            log_counts,
        }))
    }

    async fn logs(&self, id: JobId, query: &LogQuery) -> Result<Option<LogPage>> {
        let mut conn = self.pool.acquire().await?;
        let known: Option<i32> = sqlx::query_scalar("SELECT 1 FROM jobs WHERE id = $1")
            .bind(id.to_string())
            .fetch_optional(&mut *conn)
            .await?;
        if known.is_none() {
            return Ok(None);
        }
        logs::page(&mut conn, id, query).await.map(Some)
    }

    async fn list(&self, filter: &JobFilter) -> Result<Page> {
        let mut query = QueryBuilder::new(format!("SELECT {JOB_COLUMNS} FROM jobs WHERE true"));
        matching(&mut query, filter);
        if let Some(before) = filter.before {
            query.push(" AND id < ").push_bind(before.to_string());
        }
        query
            .push(" ORDER BY id DESC LIMIT ")
            .push_bind(i64::from(filter.limit) + 1);
        let rows: Vec<JobRow> = query.build_query_as().fetch_all(&self.pool).await?;
        let mut jobs = convert::<_, Job>(rows)?;
        let next_cursor = if jobs.len() > filter.limit as usize {
            jobs.truncate(filter.limit as usize);
            jobs.last().map(|job| job.id)
        } else {
            None
        };
        Ok(Page { jobs, next_cursor })
    }

    async fn count(&self, filter: &JobFilter, most: u64) -> Result<u64> {
        let mut query = QueryBuilder::new("SELECT count(*) FROM (SELECT 1 FROM jobs WHERE true");
        matching(&mut query, filter);
        query
            .push(" LIMIT ")
            .push_bind(i64::try_from(most).unwrap_or(i64::MAX))
            .push(") AS matching");
        let count: i64 = query.build_query_scalar().fetch_one(&self.pool).await?;
        Ok(u64::try_from(count).unwrap_or(0))
    }

    async fn search_backlog(&self) -> Result<u64> {
        // The trigram index is kept by every write: nothing waits to be indexed.
        Ok(0)
    }

    async fn create_batch(&self, batch: NewBatch, now: Millis) -> Result<Changes> {
        let created = self.exec_changing(move |conn| {
            Box::pin(async move { continuations::create_batch(conn, batch, now).await })
        });
        Ok(created.await?.changes)
    }

    async fn batch(&self, id: JobId) -> Result<Option<BatchInfo>> {
        let mut conn = self.pool.acquire().await?;
        continuations::batch(&mut conn, id).await
    }

    async fn cancel_batch(&self, id: JobId, now: Millis) -> Result<Changed<Vec<JobId>>> {
        self.exec_changing(move |conn| {
            Box::pin(async move { continuations::cancel_batch(conn, id, now).await })
        })
        .await
    }

    async fn delete_finished(
        &self,
        succeeded_before: Millis,
        failed_before: Millis,
        limit: u32,
        now: Millis,
    ) -> Result<Changes> {
        let deleted = self.exec_reporting(move |conn| {
            Box::pin(async move {
                let ids: Vec<String> = sqlx::query_scalar(
                    "SELECT id FROM jobs \
                     WHERE (state = 'succeeded' AND finished_at < $1) \
                        OR (state IN ('failed', 'cancelled') AND finished_at < $2) \
                     LIMIT $3 FOR UPDATE SKIP LOCKED",
                )
                .bind(succeeded_before)
                .bind(failed_before)
                .bind(i64::from(limit))
                .fetch_all(&mut *conn)
                .await?;
                let jobs = remove(conn, &ids, "deleted: past its retention", now).await?;
                Ok(removed(jobs))
            })
        });
        Ok(deleted.await?.changes)
    }

    fn report_to(&self, sink: Arc<dyn ChangeSink>) {
        if self.sink.set(sink).is_err() {
            tracing::warn!("the store already reports its changes elsewhere");
        }
    }

    fn health(&self) -> Result<()> {
        Ok(())
    }

    async fn close(&self) {
        let (tx, rx) = oneshot::channel();
        if self.writer.send(Command::Close(tx)).is_ok() {
            let _ = rx.await;
        }
        self.closed.cancel();
        self.pool.close().await;
    }
}

/// Adds `filter`'s conditions (but its cursor) to `query`. A text is looked up in the
/// trigram index over id, args and error first, then checked against each column.
fn matching(query: &mut QueryBuilder<'static, Postgres>, filter: &JobFilter) {
    let mut equal = |column: &str, value: String| {
        query
            .push(format_args!(" AND {column} = "))
            .push_bind(value);
    };
    if let Some(state) = filter.state {
        equal("state", state.as_str().to_owned());
    }
    if let Some(queue) = &filter.queue {
        equal("queue", queue.clone());
    }
    if let Some(plugin) = &filter.plugin {
        equal("plugin", plugin.clone());
    }
    if let Some(agent) = &filter.agent {
        equal("agent_id", agent.clone());
    }
    if let Some(text) = &filter.text {
        let escaped = text
            .replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_");
        let within = format!("%{escaped}%");
        query
            .push(" AND (id || ' ' || args || ' ' || coalesce(error_message, '')) ILIKE ")
            .push_bind(within.clone())
            .push(" AND (id ILIKE ")
            .push_bind(format!("{escaped}%"))
            .push(" OR args ILIKE ")
            .push_bind(within.clone())
            .push(" OR error_message ILIKE ")
            .push_bind(within)
            .push(")");
    }
}
