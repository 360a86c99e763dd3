//! Jobs on SQLite: the [`JobStore`] methods, and the helpers only they use.
//!
//! Enqueues, claims, completions, failures, progress and log lines go to the writer as
//! commands of their own, which it group-commits (see [`super::batch`]); every other
//! write runs on the writer's connection in a transaction of its own. Reads use the
//! readers' pool.

use super::rows::{self, JOB_COLUMNS, JobRow, TransitionRow, convert};
use super::writer::Command;
use super::{SqliteStore, continuations, links, logs, search};
use crate::model::{Job, JobDetail, JobId, JobState, LogLine, Millis, Progress, Transition};
use crate::store::changes::{ChangeSink, Changed, Changes, JobChange};
use crate::store::moves;
use crate::store::{
    BatchInfo, CancelOutcome, ClaimParams, Claimed, Completion, Error, Failure, JobFilter,
    JobStore, LeaseId, NewBatch, NewJob, Page, Renewal, Result, Submitted,
};
use crate::store::{DETAIL_LOG_LINES, LogPage, LogQuery};
use async_trait::async_trait;
use sqlx::{FromRow, QueryBuilder, Row, Sqlite, SqliteConnection};
use std::sync::Arc;
use tokio::sync::oneshot;

/// Moves the `processing` jobs `owner` holds back to `enqueued` or, when cancellation
/// was requested, to `cancelled`; the interrupted attempt is not counted. Returns how
/// many moved.
async fn requeue(conn: &mut SqliteConnection, owner: &str, now: Millis) -> Result<u64> {
    let done = sqlx::query(
        "UPDATE jobs SET \
         state = CASE WHEN cancel_requested = 1 THEN 'cancelled' ELSE 'enqueued' END, \
         state_at = ?1, \
         state_reason = CASE WHEN cancel_requested = 1 THEN 'cancelled while running' \
                        ELSE 'released at host shutdown' END, \
         attempt = CASE WHEN cancel_requested = 1 THEN attempt ELSE attempt - 1 END, \
         finished_at = CASE WHEN cancel_requested = 1 THEN ?1 END, \
         lease_id = NULL, lease_owner = NULL, lease_expires_at = NULL \
         WHERE id IN (SELECT id FROM jobs WHERE state = 'processing' AND lease_owner = ?2)",
    )
    .bind(now)
    .bind(owner)
    .execute(&mut *conn)
    .await?;
    Ok(done.rows_affected())
}

/// Stores `job` unless an unfinished job holds its unique key (then returns that one),
/// linking it to its parents if it has any.
async fn enqueue_checked(
    conn: &mut SqliteConnection,
    job: NewJob,
    now: Millis,
) -> Result<Submitted> {
    let holder: Option<JobRow> = sqlx::query_as(&format!(
        "SELECT {JOB_COLUMNS} FROM jobs WHERE unique_key = ?1 \
         AND state IN ('awaiting', 'scheduled', 'enqueued', 'processing')"
    ))
    .bind(&job.unique_key)
    .fetch_optional(&mut *conn)
    .await?;
    if let Some(row) = holder {
        return Ok(Submitted {
            job: Job::try_from(row)?,
            created: false,
            changes: Changes::default(),
        });
    }
    continuations::insert_linked(conn, std::slice::from_ref(&job), now).await?;
    Ok(Submitted {
        job: fetch_job(conn, job.id).await?,
        created: true,
        changes: Changes::default(),
    })
}

async fn job_state(conn: &mut SqliteConnection, id: JobId) -> Result<JobState> {
    let row: Option<(String,)> = sqlx::query_as("SELECT state FROM jobs WHERE id = ?1")
        .bind(id.to_string())
        .fetch_optional(&mut *conn)
        .await?;
    match row {
        Some((state,)) => rows::parse_state(&state),
        None => Err(Error::NotFound(id)),
    }
}

async fn set_state(
    conn: &mut SqliteConnection,
    id: JobId,
    state: JobState,
    extra_sql: &str,
    now: Millis,
    reason: &str,
) -> Result<()> {
    sqlx::query(&format!(
        "UPDATE jobs SET state = ?1, state_at = ?3, state_reason = ?4 {extra_sql} WHERE id = ?2"
    ))
    .bind(state.as_str())
    .bind(id.to_string())
    .bind(now)
    .bind(reason)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// The stored job `id`, read on `conn`.
pub(super) async fn fetch_job(conn: &mut SqliteConnection, id: JobId) -> Result<Job> {
    let row: JobRow = sqlx::query_as(&format!("SELECT {JOB_COLUMNS} FROM jobs WHERE id = ?1"))
        .bind(id.to_string())
        .fetch_one(&mut *conn)
        .await?;
    Job::try_from(row)
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

/// Deletes the jobs listed in `ids` (a JSON array) with their history, log and parent
/// links; returns their moves out of existence.
async fn remove(
    conn: &mut SqliteConnection,
    ids: &str,
    reason: &str,
    now: Millis,
) -> Result<Vec<JobChange>> {
    let tasks: Vec<(String, String)> = sqlx::query_as(
        "SELECT job_id, id FROM tasks WHERE job_id IN (SELECT value FROM json_each(?1))",
    )
    .bind(ids)
    .fetch_all(&mut *conn)
    .await?;
    for table_sql in [
        "DELETE FROM job_logs WHERE job_id IN (SELECT value FROM json_each(?1))",
        "DELETE FROM job_history WHERE job_id IN (SELECT value FROM json_each(?1))",
        "DELETE FROM job_parents WHERE job_id IN (SELECT value FROM json_each(?1))",
    ] {
        sqlx::query(table_sql).bind(ids).execute(&mut *conn).await?;
    }
    type Removed = (
        String,
        String,
        String,
        String,
        i64,
        Option<String>,
        Option<String>,
    );
    let rows: Vec<Removed> = sqlx::query_as(
        "DELETE FROM jobs WHERE id IN (SELECT value FROM json_each(?1)) \
         RETURNING id, state, queue, plugin, attempt, batch_id, agent_id",
    )
    .bind(ids)
    .fetch_all(&mut *conn)
    .await?;
    let task_of = |job: &str| tasks.iter().find(|(of, _)| of == job).map(|(_, task)| task);
    rows.into_iter()
        .map(|(id, state, queue, plugin, attempt, batch, agent)| {
            Ok(JobChange {
                task: task_of(&id).map(|task| rows::parse_id(task)).transpose()?,
                id: rows::parse_id(&id)?,
                from: Some(rows::parse_state(&state)?),
                to: None,
                reason: reason.to_owned(),
                at: now,
                queue,
                plugin,
                attempt: u32::try_from(attempt).unwrap_or(0),
                batch: batch.as_deref().map(rows::parse_id).transpose()?,
                agent,
                lease: None,
            })
        })
        .collect()
}

#[async_trait]
impl JobStore for SqliteStore {
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
        if jobs
            .iter()
            .any(|job| job.unique_key.is_some() || job.parents.is_some())
        {
            // Its own transaction: a held key or a missing parent fails these jobs, not
            // a whole group commit.
            let linked = self
                .exec_changing(move |conn| {
                    Box::pin(async move { continuations::insert_linked(conn, &jobs, now).await })
                })
                .await?;
            return Ok(linked.changes);
        }
        self.request(|reply| Command::Enqueue { jobs, now, reply })
            .await
    }

    async fn claim(&self, params: &ClaimParams, now: Millis) -> Result<Vec<Claimed>> {
        let params = params.clone();
        self.request(|reply| Command::Claim { params, now, reply })
            .await
    }

    async fn heartbeat(&self, leases: &[(JobId, LeaseId)], until: Millis) -> Result<Renewal> {
        if leases.is_empty() {
            return Ok(Renewal::default());
        }
        let leases = serde_json::Value::Array(
            leases
                .iter()
                .map(|(id, lease)| serde_json::json!([id.to_string(), lease.to_string()]))
                .collect(),
        )
        .to_string();
        self.exec(move |conn| {
            Box::pin(async move {
                let renewed: Vec<(String, bool)> = sqlx::query_as(
                    "UPDATE jobs SET lease_expires_at = ?1 \
                     FROM (SELECT value->>0 AS id, value->>1 AS lease FROM json_each(?2)) AS l \
                     WHERE jobs.id = l.id AND +jobs.state = 'processing' \
                     AND jobs.lease_id = l.lease RETURNING id, cancel_requested",
                )
                .bind(until)
                .bind(leases)
                .fetch_all(&mut *conn)
                .await?;
                Renewal::of(&renewed)
            })
        })
        .await
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
        let _ = self.send(Command::Progress {
            id,
            lease,
            progress,
        });
    }

    fn append_logs(&self, id: JobId, attempt: u32, lines: Vec<LogLine>) {
        let _ = self.send(Command::Logs { id, attempt, lines });
    }

    async fn promote_due(&self, now: Millis, limit: u32) -> Result<Changes> {
        let promoted = self.exec_changing(move |conn| {
            Box::pin(async move {
                sqlx::query(
                    "UPDATE jobs SET state = 'enqueued', state_at = ?1, state_reason = 'due' \
                     WHERE id IN (SELECT id FROM jobs WHERE state = 'scheduled' AND run_at <= ?1 \
                                  ORDER BY run_at LIMIT ?2)",
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
             WHERE state = 'processing' AND lease_expires_at < ?1 LIMIT ?2"
        ))
        .bind(now)
        .bind(i64::from(limit))
        .fetch_all(&self.readers)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(Claimed {
                    lease: rows::parse_id(&row.try_get::<String, _>("lease_id")?)?,
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
                match job_state(conn, id).await? {
                    JobState::Awaiting | JobState::Scheduled | JobState::Enqueued => {
                        let extra = ", finished_at = ?3, error_kind = 'cancelled', \
                                     error_message = 'cancelled by request'";
                        set_state(
                            conn,
                            id,
                            JobState::Cancelled,
                            extra,
                            now,
                            "cancelled by request",
                        )
                        .await?;
                        Ok(CancelOutcome::Cancelled)
                    }
                    JobState::Processing => {
                        sqlx::query("UPDATE jobs SET cancel_requested = 1 WHERE id = ?1")
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
                match job_state(conn, id).await? {
                    JobState::Failed | JobState::Cancelled => {
                        let extra = ", attempt = 0, run_at = ?3, finished_at = NULL, \
                                     cancel_requested = 0, result = NULL";
                        set_state(
                            conn,
                            id,
                            JobState::Enqueued,
                            extra,
                            now,
                            "retried by request",
                        )
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
                if job_state(conn, id).await? == JobState::Processing {
                    return Err(Error::Conflict(format!(
                        "job {id} is processing: cancel it before deleting it"
                    )));
                }
                let list = serde_json::json!([id.to_string()]).to_string();
                let jobs = remove(conn, &list, "deleted by request", now).await?;
                Ok(removed(jobs))
            })
        });
        Ok(deleted.await?.changes)
    }

    async fn get(&self, id: JobId) -> Result<Option<JobDetail>> {
        let mut conn = self.readers.acquire().await?;
        let row: Option<JobRow> =
            sqlx::query_as(&format!("SELECT {JOB_COLUMNS} FROM jobs WHERE id = ?1"))
                .bind(id.to_string())
                .fetch_optional(&mut *conn)
                .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let history: Vec<TransitionRow> = sqlx::query_as(
            "SELECT state, at, reason FROM job_history WHERE job_id = ?1 ORDER BY seq",
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
        let mut conn = self.readers.acquire().await?;
        let known: Option<i64> = sqlx::query_scalar("SELECT 1 FROM jobs WHERE id = ?1")
            .bind(id.to_string())
            .fetch_optional(&mut *conn)
            .await?;
        if known.is_none() {
            return Ok(None);
        }
        logs::page(&mut conn, id, query).await.map(Some)
    }

    async fn list(&self, filter: &JobFilter) -> Result<Page> {
        let by_index = self.use_index(filter, search::PAGE_CANDIDATES).await?;
        let mut query = page_query(filter, by_index);
        let rows: Vec<JobRow> = query.build_query_as().fetch_all(&self.readers).await?;
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
        let by_index = self.use_index(filter, search::COUNT_CANDIDATES).await?;
        let mut query = count_query(filter, most, by_index);
        let count: i64 = query.build_query_scalar().fetch_one(&self.readers).await?;
        Ok(u64::try_from(count).unwrap_or(0))
    }

    async fn search_backlog(&self) -> Result<u64> {
        Ok(search::backlog(&self.readers).await?)
    }

    async fn create_batch(&self, batch: NewBatch, now: Millis) -> Result<Changes> {
        let created = self.exec_changing(move |conn| {
            Box::pin(async move { continuations::create_batch(conn, batch, now).await })
        });
        Ok(created.await?.changes)
    }

    async fn batch(&self, id: JobId) -> Result<Option<BatchInfo>> {
        let mut conn = self.readers.acquire().await?;
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
                     WHERE (state = 'succeeded' AND finished_at < ?1) \
                        OR (state IN ('failed', 'cancelled') AND finished_at < ?2) LIMIT ?3",
                )
                .bind(succeeded_before)
                .bind(failed_before)
                .bind(i64::from(limit))
                .fetch_all(&mut *conn)
                .await?;
                let list = serde_json::Value::from(ids).to_string();
                let jobs = remove(conn, &list, "deleted: past its retention", now).await?;
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
        self.file.known()
    }

    async fn close(&self) {
        let (tx, rx) = oneshot::channel();
        if self.send(Command::Close(tx)).is_ok() {
            let _ = rx.await;
        }
        self.readers.close().await;
    }
}

impl SqliteStore {
    /// Whether `filter`'s text is searched through the index (see [`search::use_index`]).
    async fn use_index(&self, filter: &JobFilter, most: u32) -> Result<bool> {
        match &filter.text {
            Some(text) => Ok(search::use_index(&self.readers, text, most).await?),
            None => Ok(false),
        }
    }
}

/// The query behind [`JobStore::list`]: `filter`'s page, newest first, with one job more
/// to tell whether another page follows; its text searched `by_index` or not.
fn page_query(filter: &JobFilter, by_index: bool) -> QueryBuilder<'static, Sqlite> {
    let mut query = QueryBuilder::new(format!("SELECT {JOB_COLUMNS} FROM jobs WHERE 1 = 1"));
    matching(&mut query, filter, by_index);
    if let Some(before) = filter.before {
        query.push(" AND id < ").push_bind(before.to_string());
    }
    query
        .push(" ORDER BY id DESC LIMIT ")
        .push_bind(i64::from(filter.limit) + 1);
    query
}

/// The query behind [`JobStore::count`]: how many jobs match `filter`, up to `most`; its
/// text searched `by_index` or not.
fn count_query(filter: &JobFilter, most: u64, by_index: bool) -> QueryBuilder<'static, Sqlite> {
    let mut query = QueryBuilder::new("SELECT count(*) FROM (SELECT 1 FROM jobs WHERE 1 = 1");
    matching(&mut query, filter, by_index);
    query
        .push(" LIMIT ")
        .push_bind(i64::try_from(most).unwrap_or(i64::MAX))
        .push(")");
    query
}

/// Adds `filter`'s conditions (but its cursor) to `query`. With its text searched
/// `by_index`, the index's candidates are the jobs read: the other conditions are kept off
/// their indexes (`+column`), which would otherwise lead the planner to scan every job of
/// a state or queue.
fn matching(query: &mut QueryBuilder<'static, Sqlite>, filter: &JobFilter, by_index: bool) {
    let unindexed = if by_index { "+" } else { "" };
    let mut equal = |column: &str, value: String| {
        query
            .push(format_args!(" AND {unindexed}{column} = "))
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
        search::push_text(query, text, by_index);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Durability;

    /// The plan SQLite picks for `query`, one step a line.
    async fn plan(store: &SqliteStore, query: &mut QueryBuilder<'static, Sqlite>) -> String {
        use sqlx::Execute;
        let mut built = query.build();
        let sql = format!("EXPLAIN QUERY PLAN {}", built.sql());
        let binds = built.take_arguments().unwrap().unwrap_or_default();
        let rows = sqlx::query_with(&sql, binds)
            .fetch_all(&store.readers)
            .await
            .unwrap();
        rows.iter()
            .map(|row| row.get::<String, _>("detail"))
            .collect::<Vec<_>>()
            .join("\n")
    }

    #[tokio::test]
    async fn searches_read_the_index_whatever_else_they_filter_on() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("jobs.db"), Durability::Normal)
            .await
            .unwrap();
        let text = |text: &str| JobFilter {
            text: Some(text.into()),
            limit: 50,
            ..JobFilter::default()
        };
        let filters = [
            text("acme"),
            JobFilter {
                state: Some(JobState::Failed),
                queue: Some("default".into()),
                plugin: Some("echo".into()),
                agent: Some("builder".into()),
                before: Some(crate::model::new_job_id()),
                ..text("acme")
            },
        ];
        for filter in &filters {
            for mut query in [page_query(filter, true), count_query(filter, 10_000, true)] {
                let plan = plan(&store, &mut query).await;
                assert!(plan.contains("VIRTUAL TABLE"), "{filter:?}:\n{plan}");
                assert!(
                    plan.contains("SEARCH jobs USING INTEGER PRIMARY KEY"),
                    "{filter:?}:\n{plan}"
                );
            }
        }
        let args = crate::model::JsonText::from_value(&serde_json::json!({"c": "acme"}));
        store
            .enqueue(NewJob::new("echo", args, "default"), 0)
            .await
            .unwrap();
        for (searched, by_index) in [("ac", false), ("acme", true)] {
            let chosen = store.use_index(&text(searched), 1).await.unwrap();
            assert!(
                !chosen,
                "{searched}: no index for a short text or many candidates"
            );
            let chosen = store.use_index(&text(searched), 2).await.unwrap();
            assert_eq!(chosen, by_index, "{searched}");
        }
        store.close().await;
    }
}
