//! One group commit: the writes gathered by the writer, applied as set-based statements.
//!
//! Each kind of write becomes one statement over a JSON array (`json_each`), whatever the
//! number of jobs, so a batch of a thousand completions costs about what one does.
//! Kinds apply in a fixed order that respects causality: a job's progress and log lines
//! land before its completion, and new jobs are visible to the claim of the same batch.

use super::rows::{JOB_COLUMNS, JobRow, parse_state};
use super::writer::{Command, Reply, write_failed};
use crate::model::{Job, JobId, JobState, LogLine, Millis, Progress};
use crate::store::{AfterFailure, ClaimParams, Claimed, Completion, Error, Failure, LeaseId};
use crate::store::{NewJob, Result};
use serde_json::{Value, json};
use sqlx::{Connection, SqliteConnection};
use std::collections::{HashMap, HashSet};
use std::sync::LazyLock;
use uuid::Uuid;

/// Writes waiting for one transaction.
#[derive(Default)]
pub(super) struct Group {
    enqueues: Vec<(Vec<NewJob>, Millis, Reply<()>)>,
    progress: Vec<(JobId, LeaseId, Progress)>,
    logs: Vec<(JobId, LogLine)>,
    completions: Vec<(JobId, LeaseId, Completion, Millis, Reply<()>)>,
    failures: Vec<(JobId, LeaseId, Failure, Millis, Reply<()>)>,
    claims: Vec<(ClaimParams, Millis, Reply<Vec<Claimed>>)>,
}

/// What a committed group owes its callers.
#[derive(Default)]
struct Outcomes {
    completed: HashSet<JobId>,
    failed: HashSet<JobId>,
    claimed: Vec<Vec<Claimed>>,
}

impl Group {
    /// Adds a batchable command (not `Exec` or `Close`).
    pub(super) fn add(&mut self, command: Command) {
        match command {
            Command::Enqueue { jobs, now, reply } => self.enqueues.push((jobs, now, reply)),
            Command::Progress {
                id,
                lease,
                progress,
            } => self.progress.push((id, lease, progress)),
            Command::Log { id, line } => self.logs.push((id, line)),
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
            Command::Claim { params, now, reply } => self.claims.push((params, now, reply)),
            Command::Exec(_) | Command::Close(_) => {
                unreachable!("the writer runs Exec and Close itself")
            }
        }
    }

    fn is_empty(&self) -> bool {
        self.enqueues.is_empty()
            && self.progress.is_empty()
            && self.logs.is_empty()
            && self.completions.is_empty()
            && self.failures.is_empty()
            && self.claims.is_empty()
    }

    /// Applies every write in one transaction, then answers the callers.
    pub(super) async fn flush(self, conn: &mut SqliteConnection) {
        if self.is_empty() {
            return;
        }
        match self.apply(conn).await {
            Ok(outcomes) => self.answer(outcomes),
            Err(e) => {
                tracing::error!(error = %e, "group commit failed");
                self.answer_error(&e);
            }
        }
    }

    async fn apply(&self, conn: &mut SqliteConnection) -> Result<Outcomes> {
        let mut tx = conn.begin().await?;
        let mut out = Outcomes::default();
        if !self.enqueues.is_empty() {
            insert_jobs(&mut tx, &self.enqueues).await?;
        }
        if !self.progress.is_empty() {
            update_progress(&mut tx, &self.progress).await?;
        }
        if !self.logs.is_empty() {
            insert_logs(&mut tx, &self.logs).await?;
        }
        if !self.completions.is_empty() {
            out.completed = complete_jobs(&mut tx, &self.completions).await?;
        }
        if !self.failures.is_empty() {
            out.failed = fail_jobs(&mut tx, &self.failures).await?;
        }
        for (params, now, _) in &self.claims {
            out.claimed.push(claim_jobs(&mut tx, params, *now).await?);
        }
        tx.commit().await?;
        Ok(out)
    }

    fn answer(self, mut out: Outcomes) {
        for (_, _, reply) in self.enqueues {
            let _ = reply.send(Ok(()));
        }
        for (id, _, _, _, reply) in self.completions {
            let _ = reply.send(guarded(&out.completed, id));
        }
        for (id, _, _, _, reply) in self.failures {
            let _ = reply.send(guarded(&out.failed, id));
        }
        for ((_, _, reply), claimed) in self.claims.into_iter().zip(out.claimed.drain(..)) {
            let _ = reply.send(Ok(claimed));
        }
    }

    fn answer_error(self, e: &Error) {
        for (_, _, reply) in self.enqueues {
            let _ = reply.send(Err(write_failed(e)));
        }
        for (_, _, _, _, reply) in self.completions {
            let _ = reply.send(Err(write_failed(e)));
        }
        for (_, _, _, _, reply) in self.failures {
            let _ = reply.send(Err(write_failed(e)));
        }
        for (_, _, reply) in self.claims {
            let _ = reply.send(Err(write_failed(e)));
        }
    }
}

/// `Ok` when the guarded update changed the job, else [`Error::LeaseLost`].
fn guarded(changed: &HashSet<JobId>, id: JobId) -> Result<()> {
    if changed.contains(&id) {
        Ok(())
    } else {
        Err(Error::LeaseLost { id })
    }
}

/// Appends history rows: one per `(job id, state, at, reason)`.
pub(super) async fn record_history(
    conn: &mut SqliteConnection,
    rows: impl IntoIterator<Item = (JobId, JobState, Millis, String)>,
) -> Result<()> {
    let items: Vec<Value> = rows
        .into_iter()
        .map(|(id, state, at, reason)| {
            json!({"id": id.to_string(), "state": state.as_str(), "at": at, "reason": reason})
        })
        .collect();
    if items.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "INSERT INTO job_history (job_id, state, at, reason) \
         SELECT value->>'id', value->>'state', value->>'at', value->>'reason' FROM json_each(?1)",
    )
    .bind(Value::Array(items).to_string())
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// The state a new job starts in.
pub(super) fn initial_state(job: &NewJob, now: Millis) -> JobState {
    match job.run_at {
        Some(at) if at > now => JobState::Scheduled,
        _ => JobState::Enqueued,
    }
}

async fn insert_jobs(
    conn: &mut SqliteConnection,
    enqueues: &[(Vec<NewJob>, Millis, Reply<()>)],
) -> Result<()> {
    let mut items = Vec::new();
    let mut history = Vec::new();
    for (jobs, now, _) in enqueues {
        for job in jobs {
            let state = initial_state(job, *now);
            items.push(json!({
                "id": job.id.to_string(), "plugin": job.plugin, "args": job.args.to_string(),
                "queue": job.queue, "priority": job.priority, "state": state.as_str(),
                "max_attempts": job.max_attempts, "run_at": job.run_at.unwrap_or(*now),
                "now": now, "repo": job.repository_path,
            }));
            let reason = match state {
                JobState::Scheduled => "submitted for later",
                _ => "submitted",
            };
            history.push((job.id, state, *now, reason.to_owned()));
        }
    }
    sqlx::query(
        "INSERT INTO jobs (id, plugin, args, queue, priority, state, max_attempts, run_at, \
         created_at, repository_path) \
         SELECT value->>'id', value->>'plugin', value->>'args', value->>'queue', \
         value->>'priority', value->>'state', value->>'max_attempts', value->>'run_at', \
         value->>'now', value->>'repo' FROM json_each(?1)",
    )
    .bind(Value::Array(items).to_string())
    .execute(&mut *conn)
    .await?;
    record_history(conn, history).await
}

async fn update_progress(
    conn: &mut SqliteConnection,
    updates: &[(JobId, LeaseId, Progress)],
) -> Result<()> {
    // UPDATE … FROM picks an arbitrary source row when several match: keep the latest
    // per lease (an update under a stale lease must not hide a valid one).
    let mut latest: HashMap<(JobId, LeaseId), &Progress> = HashMap::new();
    for (id, lease, progress) in updates {
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
         FROM (SELECT value->>'id' AS id, value->>'lease' AS lease, value->>'percent' AS percent, \
               value->>'message' AS message, value->>'at' AS at FROM json_each(?1)) AS p \
         WHERE jobs.id = p.id AND jobs.state = 'processing' AND jobs.lease_id = p.lease",
    )
    .bind(Value::Array(items).to_string())
    .execute(&mut *conn)
    .await?;
    Ok(())
}

async fn insert_logs(conn: &mut SqliteConnection, logs: &[(JobId, LogLine)]) -> Result<()> {
    let items: Vec<Value> = logs
        .iter()
        .map(|(id, line)| {
            json!({"id": id.to_string(), "at": line.at, "level": line.level, "message": line.message})
        })
        .collect();
    sqlx::query(
        "INSERT INTO job_logs (job_id, at, level, message) \
         SELECT value->>'id', value->>'at', value->>'level', value->>'message' \
         FROM json_each(?1) ORDER BY key",
    )
    .bind(Value::Array(items).to_string())
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Saturates a count into SQLite's signed integers.
fn sql_int(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

async fn complete_jobs(
    conn: &mut SqliteConnection,
    completions: &[(JobId, LeaseId, Completion, Millis, Reply<()>)],
) -> Result<HashSet<JobId>> {
    let items: Vec<Value> = completions
        .iter()
        .map(|(id, lease, done, now, _)| {
            json!({"id": id.to_string(), "lease": lease.to_string(), "result": done.result.to_string(),
                   "now": now, "digest": done.plugin_digest, "fuel": sql_int(done.usage.fuel_consumed),
                   "wall": sql_int(done.usage.wall_ms), "mem": sql_int(done.usage.memory_peak_bytes)})
        })
        .collect();
    let changed: Vec<(String,)> = sqlx::query_as(
        "UPDATE jobs SET state = 'succeeded', result = c.result, finished_at = c.now, \
         plugin_digest = c.digest, fuel_consumed = c.fuel, wall_ms = c.wall, \
         memory_peak_bytes = c.mem, error_kind = NULL, error_message = NULL, lease_id = NULL, \
         lease_owner = NULL, lease_expires_at = NULL, cancel_requested = 0 \
         FROM (SELECT value->>'id' AS id, value->>'lease' AS lease, value->>'result' AS result, \
               value->>'now' AS now, value->>'digest' AS digest, value->>'fuel' AS fuel, \
               value->>'wall' AS wall, value->>'mem' AS mem FROM json_each(?1)) AS c \
         WHERE jobs.id = c.id AND jobs.state = 'processing' AND jobs.lease_id = c.lease \
         RETURNING jobs.id",
    )
    .bind(Value::Array(items).to_string())
    .fetch_all(&mut *conn)
    .await?;
    let changed = parse_ids(changed.into_iter().map(|(id,)| id))?;
    let history = completions
        .iter()
        .filter(|(id, ..)| changed.contains(id))
        .map(|(id, _, _, now, _)| (*id, JobState::Succeeded, *now, "completed".to_owned()));
    record_history(conn, history).await?;
    Ok(changed)
}

fn parse_ids(ids: impl Iterator<Item = String>) -> Result<HashSet<JobId>> {
    ids.map(|id| {
        id.parse::<Uuid>()
            .map_err(|e| Error::Database(sqlx::Error::Decode(Box::new(e))))
    })
    .collect()
}

/// The state and wording a failure asks for.
fn failure_target(failure: &Failure) -> (JobState, Option<Millis>, String) {
    let kind = failure.error.kind.as_str();
    match failure.then {
        AfterFailure::RetryAt(at) => (
            JobState::Scheduled,
            Some(at),
            format!("{kind}: retry scheduled"),
        ),
        AfterFailure::Fail => (JobState::Failed, None, format!("{kind}: failed")),
        AfterFailure::Cancel => (
            JobState::Cancelled,
            None,
            "cancelled while running".to_owned(),
        ),
    }
}

async fn fail_jobs(
    conn: &mut SqliteConnection,
    failures: &[(JobId, LeaseId, Failure, Millis, Reply<()>)],
) -> Result<HashSet<JobId>> {
    let mut reasons = HashMap::new();
    let items: Vec<Value> = failures
        .iter()
        .map(|(id, lease, f, now, _)| {
            let (state, run_at, reason) = failure_target(f);
            reasons.insert(*id, (*now, reason));
            json!({"id": id.to_string(), "lease": lease.to_string(), "state": state.as_str(),
                   "run_at": run_at, "now": now, "kind": f.error.kind.as_str(),
                   "message": f.error.message, "digest": f.plugin_digest,
                   "fuel": sql_int(f.usage.fuel_consumed), "wall": sql_int(f.usage.wall_ms),
                   "mem": sql_int(f.usage.memory_peak_bytes)})
        })
        .collect();
    // A job whose cancellation was requested ends `cancelled`, whatever the failure.
    let changed: Vec<(String, String)> = sqlx::query_as(
        "UPDATE jobs SET \
         state = CASE WHEN jobs.cancel_requested = 1 THEN 'cancelled' ELSE f.state END, \
         run_at = COALESCE(f.run_at, jobs.run_at), \
         finished_at = CASE WHEN f.state = 'scheduled' AND jobs.cancel_requested = 0 \
                       THEN NULL ELSE f.now END, \
         error_kind = f.kind, error_message = f.message, \
         plugin_digest = COALESCE(f.digest, jobs.plugin_digest), fuel_consumed = f.fuel, \
         wall_ms = f.wall, memory_peak_bytes = f.mem, \
         lease_id = NULL, lease_owner = NULL, lease_expires_at = NULL \
         FROM (SELECT value->>'id' AS id, value->>'lease' AS lease, value->>'state' AS state, \
               value->>'run_at' AS run_at, value->>'now' AS now, value->>'kind' AS kind, \
               value->>'message' AS message, value->>'digest' AS digest, value->>'fuel' AS fuel, \
               value->>'wall' AS wall, value->>'mem' AS mem FROM json_each(?1)) AS f \
         WHERE jobs.id = f.id AND jobs.state = 'processing' AND jobs.lease_id = f.lease \
         RETURNING jobs.id, jobs.state",
    )
    .bind(Value::Array(items).to_string())
    .fetch_all(&mut *conn)
    .await?;
    let mut ids = HashSet::new();
    let mut history = Vec::new();
    for (id, state) in changed {
        let id: JobId = id
            .parse()
            .map_err(|e| Error::Database(sqlx::Error::Decode(Box::new(e))))?;
        let state = parse_state(&state)?;
        let (now, mut reason) = reasons.remove(&id).unwrap_or_default();
        if state == JobState::Cancelled {
            reason = "cancelled while running".to_owned();
        }
        history.push((id, state, now, reason));
        ids.insert(id);
    }
    record_history(conn, history).await?;
    Ok(ids)
}

static CLAIM_SQL: LazyLock<String> = LazyLock::new(|| {
    format!(
        "UPDATE jobs SET state = 'processing', attempt = attempt + 1, started_at = ?1, \
         finished_at = NULL, lease_id = ?2, lease_owner = ?3, lease_expires_at = ?4, \
         progress_percent = NULL, progress_message = NULL, progress_updated_at = NULL \
         WHERE id IN (SELECT id FROM jobs WHERE state = 'enqueued' AND queue = ?5 \
                      ORDER BY priority DESC, run_at, id LIMIT ?6) \
         RETURNING {JOB_COLUMNS}"
    )
});

async fn claim_jobs(
    conn: &mut SqliteConnection,
    params: &ClaimParams,
    now: Millis,
) -> Result<Vec<Claimed>> {
    let lease = Uuid::now_v7();
    let mut claimed: Vec<Job> = Vec::new();
    for queue in &params.queues {
        let room = params.limit as usize - claimed.len();
        if room == 0 {
            break;
        }
        let rows: Vec<JobRow> = sqlx::query_as(&CLAIM_SQL)
            .bind(now)
            .bind(lease.to_string())
            .bind(&params.owner)
            .bind(params.lease_until)
            .bind(queue)
            .bind(room as i64)
            .fetch_all(&mut *conn)
            .await?;
        let mut jobs = super::rows::convert::<_, Job>(rows)?;
        jobs.sort_by(|a, b| (b.priority, a.run_at, a.id).cmp(&(a.priority, b.run_at, b.id)));
        claimed.extend(jobs);
    }
    let history = claimed.iter().map(|job| {
        let reason = format!(
            "attempt {} of {} started by {}",
            job.attempt, job.max_attempts, params.owner
        );
        (job.id, JobState::Processing, now, reason)
    });
    record_history(conn, history).await?;
    Ok(claimed
        .into_iter()
        .map(|job| Claimed { job, lease })
        .collect())
}
