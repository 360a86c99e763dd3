//! The ordered writes of one host: progress, log lines, completions and failures.
//!
//! They go through one task, so that a job's progress and log lines land before its
//! completion, and whatever is waiting is applied in one transaction (a group commit):
//! each kind of write is one set-based statement over a JSON array, whatever the number
//! of jobs. Completion is guarded: a job moves only while it is `processing` under the
//! caller's lease, and a host that lost the lease (to another host's rescue, or to a
//! cancel) gets [`Error::LeaseLost`]. What they change is told to the other hosts in the
//! same transaction (see `notices.rs`).

use super::{journal, notices, stats};
use crate::model::{JobId, JobState, LogLine, Millis, Progress};
use crate::store::changes::{BatchProgress, Changes, JobChange, Sink, report};
use crate::store::moves::{attribute, failure_target};
use crate::store::rows::{parse_id, parse_state};
use crate::store::stats::Samples;
use crate::store::{Completion, Error, Failure, LeaseId, Result};
use serde_json::{Value, json};
use sqlx::{Connection, FromRow, PgConnection, PgPool};
use std::collections::HashMap;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

/// Most commands applied in one transaction.
const MAX_BATCH: usize = 1024;

/// Where a command's outcome goes.
pub(super) type Reply<T> = oneshot::Sender<Result<T>>;

/// A write queued for the writer.
pub(super) enum Command {
    Complete {
        id: JobId,
        lease: LeaseId,
        done: Completion,
        now: Millis,
        reply: Reply<Changes>,
    },
    Fail {
        id: JobId,
        lease: LeaseId,
        failure: Failure,
        now: Millis,
        reply: Reply<Changes>,
    },
    Progress {
        id: JobId,
        lease: LeaseId,
        progress: Progress,
    },
    Logs {
        id: JobId,
        attempt: u32,
        lines: Vec<LogLine>,
    },
    /// Runs that claims started, for the rollup.
    Counted(Samples),
    /// Write the runs counted for the rollup now (before a read of it).
    WriteStats(Reply<()>),
    Close(oneshot::Sender<()>),
}

/// How long counted runs may wait before they are added to the rollup: every host adds
/// its own a few times a second, in a short transaction of its own, rather than with each
/// claim and commit (which would make every host wait for the rollup's few rows).
const STATS_EVERY: Duration = Duration::from_millis(250);
/// Most times a group commit is tried when the database broke a deadlock by aborting it.
const TRIES: u32 = 5;

/// Runs counted for the rollup and not yet written.
#[derive(Default)]
struct Pending {
    samples: Samples,
    /// When the oldest of them was counted.
    since: Option<Instant>,
}

impl Pending {
    fn add(&mut self, samples: Samples) {
        if !samples.is_empty() {
            self.samples.absorb(samples);
            self.since.get_or_insert_with(Instant::now);
        }
    }

    /// When they are due to be written, if any wait.
    fn deadline(&self) -> Option<Instant> {
        self.since.map(|since| since + STATS_EVERY)
    }

    /// Writes what waits, in a transaction of its own; on failure it keeps waiting.
    async fn write(&mut self, pool: &PgPool) -> Result<()> {
        if self.since.is_none() {
            return Ok(());
        }
        let mut conn = pool.acquire().await?;
        stats::add(&mut conn, &self.samples).await?;
        *self = Pending::default();
        Ok(())
    }

    /// Writes what waits; a failure is logged, and they wait for the next try.
    async fn write_or_warn(&mut self, pool: &PgPool) {
        if let Err(e) = self.write(pool).await {
            tracing::warn!(error = %e, "writing run statistics failed; will retry");
        }
    }
}

/// Runs the writer until every sender is gone or a `Close` arrives (after the writes
/// queued before it).
pub(super) async fn run(
    pool: PgPool,
    mut rx: mpsc::UnboundedReceiver<Command>,
    sink: Sink,
    origin: Uuid,
) {
    let mut pending = Vec::with_capacity(MAX_BATCH);
    let mut stats = Pending::default();
    loop {
        let received = match stats.deadline() {
            None => rx.recv_many(&mut pending, MAX_BATCH).await,
            Some(at) => {
                let next = rx.recv_many(&mut pending, MAX_BATCH);
                match tokio::time::timeout_at(at.into(), next).await {
                    Ok(received) => received,
                    Err(_due) => {
                        stats.write_or_warn(&pool).await;
                        continue;
                    }
                }
            }
        };
        if received == 0 {
            stats.write_or_warn(&pool).await;
            return;
        }
        let mut group = Group::default();
        let mut closed = None;
        let mut write_stats = Vec::new();
        for command in pending.drain(..) {
            match command {
                Command::Close(done) => closed = Some(done),
                Command::Counted(samples) => stats.add(samples),
                Command::WriteStats(reply) => write_stats.push(reply),
                other => group.add(other),
            }
        }
        stats.add(group.flush(&pool, &sink, origin).await);
        if !write_stats.is_empty() || closed.is_some() {
            let written = stats.write(&pool).await;
            for reply in write_stats {
                let _ = reply.send(
                    written
                        .as_ref()
                        .map(|_| ())
                        .map_err(|e| Error::WriteFailed(e.to_string())),
                );
            }
        }
        if let Some(done) = closed {
            let _ = done.send(());
            return;
        }
    }
}

/// Whether `e` is the database breaking a deadlock or a serialization conflict by
/// aborting the transaction, which may then be tried again.
fn is_transient(e: &Error) -> bool {
    let Error::Database(sqlx::Error::Database(e)) = e else {
        return false;
    };
    matches!(e.code().as_deref(), Some("40P01" | "40001"))
}

/// Writes waiting for one transaction.
#[derive(Default)]
struct Group {
    progress: Vec<(JobId, LeaseId, Progress)>,
    logs: Vec<(JobId, u32, Vec<LogLine>)>,
    completions: Vec<(JobId, LeaseId, Completion, Millis, Reply<Changes>)>,
    failures: Vec<(JobId, LeaseId, Failure, Millis, Reply<Changes>)>,
}

/// What a committed group owes its callers.
struct Outcomes {
    /// What each completion changed, by job.
    completed: HashMap<JobId, Changes>,
    /// What each failure changed, by job.
    failed: HashMap<JobId, Changes>,
    /// The runs the group ended, for the rollup.
    samples: Samples,
}

/// A completed or failed job, as its `RETURNING` row gives it.
#[derive(FromRow)]
struct MovedRow {
    id: String,
    state: String,
    reason: String,
    at: Millis,
    queue: String,
    plugin: String,
    attempt: i64,
    batch_id: Option<String>,
    agent_id: Option<String>,
    task_id: Option<String>,
    has_children: bool,
    wall_ms: Option<i64>,
    error_kind: Option<String>,
}

impl MovedRow {
    /// The job's move out of `processing`.
    fn change(self) -> Result<JobChange> {
        Ok(JobChange {
            id: parse_id(&self.id)?,
            from: Some(JobState::Processing),
            to: Some(parse_state(&self.state)?),
            reason: self.reason,
            at: self.at,
            queue: self.queue,
            plugin: self.plugin,
            attempt: u32::try_from(self.attempt).unwrap_or(0),
            batch: self.batch_id.as_deref().map(parse_id).transpose()?,
            agent: self.agent_id,
            task: self.task_id.as_deref().map(parse_id).transpose()?,
            lease: None,
        })
    }
}

/// Columns a completion or failure returns: its job's move.
const MOVED: &str = "RETURNING jobs.id, jobs.state, jobs.state_reason AS reason, \
    jobs.state_at AS at, jobs.queue, jobs.plugin, jobs.attempt, jobs.batch_id, jobs.agent_id, \
    (SELECT t.id FROM tasks t WHERE t.job_id = jobs.id) AS task_id, jobs.has_children, \
    jobs.wall_ms, jobs.error_kind";

/// Saturates a count into PostgreSQL's signed integers.
fn sql_int(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

impl Group {
    fn add(&mut self, command: Command) {
        match command {
            Command::Progress {
                id,
                lease,
                progress,
            } => self.progress.push((id, lease, progress)),
            Command::Logs { id, attempt, lines } => self.logs.push((id, attempt, lines)),
            Command::Complete {
                id,
                lease,
                done,
                now,
                reply,
            } => self.completions.push((id, lease, done, now, reply)),
            Command::Fail {
                id,
                lease,
                failure,
                now,
                reply,
            } => self.failures.push((id, lease, failure, now, reply)),
            Command::Counted(_) | Command::WriteStats(_) | Command::Close(_) => {
                unreachable!("the writer handles these itself")
            }
        }
    }

    /// Applies every write in one transaction (again, when the database aborted it to
    /// break a deadlock), then reports what it changed and answers the callers; returns
    /// the runs it ended, for the rollup.
    async fn flush(self, pool: &PgPool, sink: &Sink, origin: Uuid) -> Samples {
        let mut tries = 1;
        let applied = loop {
            match self.try_apply(pool, origin).await {
                Err(e) if is_transient(&e) && tries < TRIES => {
                    tracing::debug!(error = %e, tries, "group commit aborted; trying again");
                    tries += 1;
                }
                applied => break applied,
            }
        };
        match applied {
            Ok(Outcomes {
                mut completed,
                mut failed,
                samples,
            }) => {
                for (id, ..) in &self.completions {
                    if let Some(changes) = completed.get(id) {
                        report(sink, changes);
                    }
                }
                for (id, ..) in &self.failures {
                    if let Some(changes) = failed.get(id) {
                        report(sink, changes);
                    }
                }
                for (id, _, _, _, reply) in self.completions {
                    let _ = reply.send(completed.remove(&id).ok_or(Error::LeaseLost { id }));
                }
                for (id, _, _, _, reply) in self.failures {
                    let _ = reply.send(failed.remove(&id).ok_or(Error::LeaseLost { id }));
                }
                samples
            }
            Err(e) => {
                tracing::error!(error = %e, "group commit failed");
                let lines: usize = self.logs.iter().map(|(_, _, lines)| lines.len()).sum();
                if lines > 0 {
                    tracing::warn!(lines, "log lines dropped: the database took no writes");
                }
                for (_, _, _, _, reply) in self.completions {
                    let _ = reply.send(Err(Error::WriteFailed(e.to_string())));
                }
                for (_, _, _, _, reply) in self.failures {
                    let _ = reply.send(Err(Error::WriteFailed(e.to_string())));
                }
                Samples::default()
            }
        }
    }

    /// Applies every write in one transaction of its own.
    async fn try_apply(&self, pool: &PgPool, origin: Uuid) -> Result<Outcomes> {
        let mut conn = pool.acquire().await?;
        let mut tx = conn.begin().await?;
        match self.apply(&mut tx, origin).await {
            Ok(outcomes) => {
                tx.commit().await?;
                Ok(outcomes)
            }
            Err(e) => {
                tx.rollback().await?;
                Err(e)
            }
        }
    }

    /// Runs the group's statements in order, adding the runs that ended to the rollup;
    /// returns what each completion and failure changed, by job.
    async fn apply(&self, conn: &mut PgConnection, origin: Uuid) -> Result<Outcomes> {
        if !self.progress.is_empty() {
            self.update_progress(conn).await?;
        }
        if !self.logs.is_empty() {
            self.insert_logs(conn).await?;
        }
        let mut cascades = false;
        let mut completed = HashMap::new();
        let mut failed = HashMap::new();
        let mut samples = Samples::default();
        for (rows, outcomes) in [
            (self.complete(conn).await?, &mut completed),
            (self.fail(conn).await?, &mut failed),
        ] {
            for row in rows {
                cascades |= row.has_children;
                let (wall_ms, kind) = (row.wall_ms, row.error_kind.clone());
                let change = row.change()?;
                samples.ended(&change, wall_ms, kind.as_deref());
                let changes = Changes {
                    jobs: vec![change.clone()],
                    batches: Vec::new(),
                };
                outcomes.insert(change.id, changes);
            }
        }
        if cascades {
            let all = journal::mine(conn).await?;
            attribute(all.jobs, &mut completed, &mut failed);
        }
        // Where the batches stand after the group, read once for all its writes.
        let ended: Vec<JobChange> = (completed.values().chain(failed.values()))
            .flat_map(|changes| changes.jobs.iter().filter(|c| c.batch.is_some()).cloned())
            .collect();
        let progress = journal::progress(conn, &ended).await?;
        for changes in completed.values_mut().chain(failed.values_mut()) {
            let touched = |p: &&BatchProgress| {
                let finished = |c: &JobChange| c.to.is_some_and(JobState::is_terminal);
                changes
                    .jobs
                    .iter()
                    .any(|c| c.batch == Some(p.id) && finished(c))
            };
            changes.batches = progress.iter().filter(touched).copied().collect();
        }
        let told: Vec<&Changes> = (self.completions.iter().map(|(id, ..)| completed.get(id)))
            .chain(self.failures.iter().map(|(id, ..)| failed.get(id)))
            .flatten()
            .collect();
        notices::send_all(conn, origin, told).await?;
        Ok(Outcomes {
            completed,
            failed,
            samples,
        })
    }

    /// Sets the latest progress per job and lease, for jobs still held under it.
    async fn update_progress(&self, conn: &mut PgConnection) -> Result<()> {
        let mut latest: HashMap<(JobId, LeaseId), &Progress> = HashMap::new();
        for (id, lease, progress) in &self.progress {
            latest.insert((*id, *lease), progress);
        }
        let items: Vec<Value> = latest
            .into_iter()
            .map(|((id, lease), p)| {
                json!({"id": id.to_string(), "lease": lease.to_string(), "percent": p.percent,
                       "message": p.message, "at": p.updated_at})
            })
            .collect();
        sqlx::query(
            "UPDATE jobs SET progress_percent = p.percent, progress_message = p.message, \
             progress_updated_at = p.at \
             FROM jsonb_to_recordset($1::jsonb) \
                 AS p(id text, lease text, percent bigint, message text, at bigint) \
             WHERE jobs.id = p.id AND jobs.state = 'processing' AND jobs.lease_id = p.lease",
        )
        .bind(Value::Array(items).to_string())
        .execute(&mut *conn)
        .await?;
        Ok(())
    }

    /// Appends the log lines, in the order they were written.
    async fn insert_logs(&self, conn: &mut PgConnection) -> Result<()> {
        let items: Vec<Value> = self
            .logs
            .iter()
            .flat_map(|(id, attempt, lines)| {
                lines.iter().map(move |line| {
                    json!({"id": id.to_string(), "attempt": attempt, "at": line.at,
                           "level": line.level, "message": line.message})
                })
            })
            .enumerate()
            .map(|(n, mut item)| {
                item["n"] = json!(n);
                item
            })
            .collect();
        sqlx::query(
            "INSERT INTO job_logs (job_id, attempt, at, level, message) \
             SELECT id, attempt, at, level, message FROM jsonb_to_recordset($1::jsonb) \
                 AS l(id text, attempt bigint, at bigint, level text, message text, n bigint) \
             ORDER BY n",
        )
        .bind(Value::Array(items).to_string())
        .execute(&mut *conn)
        .await?;
        Ok(())
    }

    /// Records the completions of jobs still held under their lease.
    async fn complete(&self, conn: &mut PgConnection) -> Result<Vec<MovedRow>> {
        if self.completions.is_empty() {
            return Ok(Vec::new());
        }
        let items: Vec<Value> = self
            .completions
            .iter()
            .map(|(id, lease, done, now, _)| {
                json!({"id": id.to_string(), "lease": lease.to_string(),
                       "result": done.result.as_str(), "now": now, "digest": done.plugin_digest,
                       "fuel": sql_int(done.usage.fuel_consumed),
                       "wall": sql_int(done.usage.wall_ms),
                       "mem": sql_int(done.usage.memory_peak_bytes)})
            })
            .collect();
        Ok(sqlx::query_as(&format!(
            "UPDATE jobs SET state = 'succeeded', state_at = c.now, state_reason = 'completed', \
             result = c.result, finished_at = c.now, plugin_digest = c.digest, \
             fuel_consumed = c.fuel, wall_ms = c.wall, memory_peak_bytes = c.mem, \
             error_kind = NULL, error_message = NULL, lease_id = NULL, lease_owner = NULL, \
             lease_expires_at = NULL, cancel_requested = false \
             FROM jsonb_to_recordset($1::jsonb) AS c(id text, lease text, result text, \
                 now bigint, digest text, fuel bigint, wall bigint, mem bigint) \
             WHERE jobs.id = c.id AND jobs.state = 'processing' AND jobs.lease_id = c.lease \
             {MOVED}"
        ))
        .bind(Value::Array(items).to_string())
        .fetch_all(&mut *conn)
        .await?)
    }

    /// Records the failures of jobs still held under their lease: a job whose
    /// cancellation was requested ends `cancelled`, whatever the failure.
    async fn fail(&self, conn: &mut PgConnection) -> Result<Vec<MovedRow>> {
        if self.failures.is_empty() {
            return Ok(Vec::new());
        }
        let items: Vec<Value> = self
            .failures
            .iter()
            .map(|(id, lease, f, now, _)| {
                let (state, run_at, reason) = failure_target(f);
                json!({"id": id.to_string(), "lease": lease.to_string(), "state": state.as_str(),
                       "run_at": run_at, "now": now, "kind": f.error.kind.as_str(),
                       "message": f.error.message, "digest": f.plugin_digest, "reason": reason,
                       "fuel": sql_int(f.usage.fuel_consumed), "wall": sql_int(f.usage.wall_ms),
                       "mem": sql_int(f.usage.memory_peak_bytes)})
            })
            .collect();
        Ok(sqlx::query_as(&format!(
            "UPDATE jobs SET \
             state = CASE WHEN jobs.cancel_requested THEN 'cancelled' ELSE f.state END, \
             state_at = f.now, \
             state_reason = CASE WHEN jobs.cancel_requested THEN 'cancelled while running' \
                            ELSE f.reason END, \
             run_at = COALESCE(f.run_at, jobs.run_at), \
             finished_at = CASE WHEN f.state = 'scheduled' AND NOT jobs.cancel_requested \
                           THEN NULL ELSE f.now END, \
             error_kind = f.kind, error_message = f.message, \
             plugin_digest = COALESCE(f.digest, jobs.plugin_digest), fuel_consumed = f.fuel, \
             wall_ms = f.wall, memory_peak_bytes = f.mem, \
             lease_id = NULL, lease_owner = NULL, lease_expires_at = NULL \
             FROM jsonb_to_recordset($1::jsonb) AS f(id text, lease text, state text, \
                 run_at bigint, now bigint, kind text, message text, digest text, reason text, \
                 fuel bigint, wall bigint, mem bigint) \
             WHERE jobs.id = f.id AND jobs.state = 'processing' AND jobs.lease_id = f.lease \
             {MOVED}"
        ))
        .bind(Value::Array(items).to_string())
        .fetch_all(&mut *conn)
        .await?)
    }
}
