//! One group commit: the writes gathered by the writer, applied as one SQL script.
//!
//! Each kind of write becomes one set-based statement over a JSON array (`json_each`),
//! whatever the number of jobs, and the whole script goes to SQLite in a single call, so
//! a batch of a thousand completions costs about what one does. The runs the script
//! starts and ends are counted for the analytics rollup, which a later group's script
//! adds (one upsert, see `stats.rs`) a few times a second. History rows are written by triggers (see the migration). Statements run in an
//! order that respects causality: a job's progress and log lines land before its
//! completion, and new jobs are visible to the claim of the same batch. The updates
//! write `+jobs.state` so that SQLite walks the JSON array and looks each job up by id,
//! rather than scanning every `processing` job and re-reading the array for each.

use super::file::FileCheck;
use super::journal;
use super::rows::{JOB_COLUMNS, JobRow, parse_id};
use super::stats::{Pending, upsert};
use super::writer::{Command, Reply, Sink, listening, report, write_failed};
use crate::model::{Job, JobId, JobState, LogLine, Millis, Progress};
use crate::store::changes::{Changes, JobChange};
use crate::store::moves::{
    attribute, created, failure_target, initial_reason, initial_state, sort_for_dispatch,
};
use crate::store::stats::Samples;
use crate::store::{ClaimParams, Claimed, Completion, Error, Failure, LeaseId};
use crate::store::{Fault, NewJob, Result};
use serde_json::{Value, json};
use sqlx::{FromRow, Row, SqliteConnection};
use std::collections::HashMap;
use uuid::Uuid;

/// Writes waiting for one transaction.
#[derive(Default)]
pub(super) struct Group {
    enqueues: Vec<(Vec<NewJob>, Millis, Reply<Changes>)>,
    progress: Vec<(JobId, LeaseId, Progress)>,
    logs: Vec<(JobId, u32, Vec<LogLine>)>,
    completions: Vec<(JobId, LeaseId, Completion, Millis, Reply<Changes>)>,
    failures: Vec<(JobId, LeaseId, Failure, Millis, Reply<Changes>)>,
    claims: Vec<(ClaimParams, Millis, Reply<Vec<Claimed>>)>,
}

/// What a committed group owes its callers.
#[derive(Default)]
struct Outcomes {
    /// What each completed job's completion changed, by job.
    completed: HashMap<JobId, Changes>,
    /// What each failed job's failure changed, by job.
    failed: HashMap<JobId, Changes>,
    claimed: Vec<Vec<Claimed>>,
    /// The moves the claims made, in order.
    started: Vec<JobChange>,
    /// The newest history row before the group.
    mark: i64,
    /// Whether a finished job had children, whose moves only the history shows.
    cascades: bool,
    /// The runs it started and ended, for the rollup.
    samples: Samples,
}

/// An SQL script with anonymous parameters (`?`), bound in the order they appear.
///
/// (Numbered parameters would be clearer, but sqlx binds them wrongly when the
/// statements of one script use different numbers.)
#[derive(Default)]
struct Script {
    sql: String,
    binds: Vec<Bind>,
}

enum Bind {
    Text(String),
    Int(i64),
}

impl Script {
    /// Adds a parameter and returns its placeholder: call it for each placeholder, in
    /// the order they appear in the SQL.
    fn param(&mut self, bind: Bind) -> &'static str {
        self.binds.push(bind);
        "?"
    }

    /// Adds a parameter holding a JSON array.
    fn json(&mut self, items: Vec<Value>) -> &'static str {
        self.param(Bind::Text(Value::Array(items).to_string()))
    }

    /// The script as a query with its parameters bound.
    fn query(&self) -> sqlx::query::Query<'_, sqlx::Sqlite, sqlx::sqlite::SqliteArguments<'_>> {
        let mut query = sqlx::query(&self.sql);
        for bind in &self.binds {
            query = match bind {
                Bind::Text(text) => query.bind(text.as_str()),
                Bind::Int(n) => query.bind(*n),
            };
        }
        query
    }

    fn push(&mut self, statement: &str) {
        self.sql.push_str(statement);
        self.sql.push_str(";\n");
    }
}

/// Most log lines kept in memory while the database takes no writes.
const MAX_CARRIED_LINES: usize = 100_000;

/// Tags on `RETURNING` rows, telling which statement produced them.
const TAG_COMPLETED: &str = "completed";
const TAG_FAILED: &str = "failed";
const TAG_MARK: &str = "mark";

/// Columns a completion or failure returns: its job's move.
const MOVED_COLUMNS: &str = "jobs.id AS id, jobs.state AS state, jobs.state_reason AS reason, \
    jobs.state_at AS at, jobs.queue AS queue, jobs.plugin AS plugin, jobs.attempt AS attempt, \
    jobs.batch_id AS batch_id, jobs.agent_id AS agent_id, jobs.has_children AS has_children, \
    jobs.wall_ms AS wall_ms, jobs.error_kind AS error_kind";

/// The task a job runs, for jobs bound to an agent (a column of a `RETURNING` list).
const TASK_ID: &str = "CASE WHEN jobs.agent_id IS NULL THEN NULL \
    ELSE (SELECT t.id FROM tasks t WHERE t.job_id = jobs.id) END AS task_id";

impl Group {
    /// Adds a batchable command (not `Exec`, `WriteStats` or `Close`).
    pub(super) fn add(&mut self, command: Command) {
        match command {
            Command::Enqueue { jobs, now, reply } => self.enqueues.push((jobs, now, reply)),
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
            Command::Claim { params, now, reply } => self.claims.push((params, now, reply)),
            Command::Exec(_) | Command::WriteStats(_) | Command::Close(_) => {
                unreachable!("the writer runs Exec, WriteStats and Close itself")
            }
        }
    }

    /// How many writes the group carries.
    fn len(&self) -> usize {
        self.enqueues.len()
            + self.progress.len()
            + self.logs.len()
            + self.completions.len()
            + self.failures.len()
            + self.claims.len()
    }

    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Applies every write in one transaction, then answers the callers (with an
    /// error if `file` is no longer the database's file: what was written is not kept).
    /// Returns what is left to write: after a storage fault, the writes no caller waits
    /// for (progress, log lines), to go with the next group.
    /// The runs it records are counted into `stats`; the ones counted before go with it
    /// once due.
    pub(super) async fn flush(
        self,
        conn: &mut SqliteConnection,
        file: &FileCheck,
        sink: &Sink,
        stats: &mut Pending,
    ) -> Group {
        if self.is_empty() {
            return self;
        }
        let (writes, began) = (self.len(), std::time::Instant::now());
        let starts = listening(sink);
        let rollup = stats.due();
        let applied = self
            .apply(conn, starts, rollup.as_deref())
            .await
            .map_err(|e| file.refine(e));
        let applied = match applied {
            Ok(mut outcomes) => match self.follow_up(conn, &mut outcomes).await {
                Ok(()) => Ok(outcomes),
                Err(e) => {
                    // Committed: the writes stand, only their report is short.
                    tracing::error!(error = %e, "reading what a group commit changed failed");
                    Ok(outcomes)
                }
            },
            failed => failed,
        };
        match applied.and_then(|outcomes| file.check().map(|()| outcomes)) {
            Ok(mut outcomes) => {
                if rollup.is_some() {
                    stats.written();
                }
                stats.add(std::mem::take(&mut outcomes.samples));
                self.answer(outcomes, sink);
                if let Some(sink) = sink.get() {
                    sink.committed(writes, began.elapsed());
                }
                Group::default()
            }
            Err(
                e @ Error::Unavailable {
                    fault: Fault::Replaced,
                    ..
                },
            ) => {
                self.answer_error(&e);
                Group::default()
            }
            Err(e) => {
                tracing::error!(error = %e, "group commit failed");
                if let Err(rollback) = sqlx::query("ROLLBACK").execute(&mut *conn).await {
                    tracing::debug!(error = %rollback, "nothing to roll back");
                }
                let fault = matches!(e, Error::Unavailable { .. });
                let unanswered = self.answer_error(&e);
                if fault { unanswered } else { Group::default() }
            }
        }
    }

    /// Builds the script for the whole group, with the rollup's `rows` (JSON) if any
    /// are due.
    fn script(&self, rows: Option<&str>) -> Script {
        let mut script = Script::default();
        script.push("BEGIN");
        script.push(&format!(
            "SELECT '{TAG_MARK}' AS tag, coalesce(max(seq), 0) AS seq FROM job_history"
        ));
        if !self.enqueues.is_empty() {
            let jobs = self.enqueues.iter();
            insert_jobs(
                &mut script,
                jobs.flat_map(|(jobs, now, _)| jobs.iter().map(|j| (j, *now))),
            );
        }
        if !self.progress.is_empty() {
            update_progress(&mut script, &self.progress);
        }
        if !self.logs.is_empty() {
            insert_logs(&mut script, &self.logs);
        }
        if !self.completions.is_empty() {
            complete_jobs(&mut script, &self.completions);
        }
        if !self.failures.is_empty() {
            fail_jobs(&mut script, &self.failures);
        }
        for (index, (params, now, _)) in self.claims.iter().enumerate() {
            claim_jobs(&mut script, index, params, *now);
        }
        if let Some(rows) = rows {
            let rows = script.param(Bind::Text(rows.to_owned()));
            script.push(&upsert(rows));
        }
        script.push("COMMIT");
        script
    }

    /// Runs the group's script (with the rollup's due `rows`) and counts the runs it
    /// recorded; the claims' moves are kept only if `starts` (someone listens for them:
    /// no caller needs them).
    async fn apply(
        &self,
        conn: &mut SqliteConnection,
        starts: bool,
        rows: Option<&str>,
    ) -> Result<Outcomes> {
        let script = self.script(rows);
        let rows = script.query().fetch_all(&mut *conn).await?;
        let mut out = Outcomes {
            claimed: vec![Vec::new(); self.claims.len()],
            ..Outcomes::default()
        };
        for row in rows {
            let tag: String = row.try_get("tag")?;
            match tag.as_str() {
                TAG_MARK => out.mark = row.try_get("seq")?,
                TAG_COMPLETED | TAG_FAILED => {
                    out.cascades |= row.try_get::<bool, _>("has_children")?;
                    let change = moved(&row)?;
                    out.samples.ended(
                        &change,
                        row.try_get("wall_ms")?,
                        row.try_get::<Option<String>, _>("error_kind")?.as_deref(),
                    );
                    let outcomes = if tag == TAG_COMPLETED {
                        &mut out.completed
                    } else {
                        &mut out.failed
                    };
                    outcomes.insert(
                        change.id,
                        Changes {
                            jobs: vec![change],
                            batches: Vec::new(),
                        },
                    );
                }
                claim => {
                    let index: usize = claim.parse().map_err(|_| decode_error("row tag"))?;
                    let lease = parse_id(&row.try_get::<String, _>("lease_id")?)?;
                    let job = Job::try_from(JobRow::from_row(&row)?)?;
                    out.samples.started(&job);
                    if starts {
                        out.started
                            .push(JobChange::started(&job, lease, task_of(&row)?));
                    }
                    out.claimed[index].push(Claimed { job, lease });
                }
            }
        }
        Ok(out)
    }

    /// Adds to each completion's and failure's changes the moves its job's end caused
    /// (read from the history, when a finished job had children) and the progress of
    /// its job's batch. Runs after the commit, before the writer's next transaction.
    async fn follow_up(&self, conn: &mut SqliteConnection, out: &mut Outcomes) -> Result<()> {
        if out.cascades {
            let all = journal::since(conn, out.mark).await?;
            attribute(all.jobs, &mut out.completed, &mut out.failed);
        }
        for changes in out.completed.values_mut().chain(out.failed.values_mut()) {
            if changes.jobs.iter().any(|c| c.batch.is_some()) {
                changes.batches = journal::progress(conn, &changes.jobs).await?;
            }
        }
        Ok(())
    }

    /// Reports what the group changed, in the order its statements ran, then answers
    /// each caller.
    fn answer(self, mut out: Outcomes, sink: &Sink) {
        let created: Vec<Changes> = self
            .enqueues
            .iter()
            .map(|(jobs, now, _)| Changes {
                jobs: jobs.iter().map(|job| created(job, *now)).collect(),
                batches: Vec::new(),
            })
            .collect();
        for changes in &created {
            report(sink, changes);
        }
        for (id, ..) in &self.completions {
            if let Some(changes) = out.completed.get(id) {
                report(sink, changes);
            }
        }
        for (id, ..) in &self.failures {
            if let Some(changes) = out.failed.get(id) {
                report(sink, changes);
            }
        }
        let started = Changes {
            jobs: std::mem::take(&mut out.started),
            batches: Vec::new(),
        };
        report(sink, &started);
        for ((_, _, reply), changes) in self.enqueues.into_iter().zip(created) {
            let _ = reply.send(Ok(changes));
        }
        for (id, _, _, _, reply) in self.completions {
            let _ = reply.send(guarded(&mut out.completed, id));
        }
        for (id, _, _, _, reply) in self.failures {
            let _ = reply.send(guarded(&mut out.failed, id));
        }
        for ((params, _, reply), mut claimed) in self.claims.into_iter().zip(out.claimed) {
            sort_for_dispatch(&params, &mut claimed);
            let _ = reply.send(Ok(claimed));
        }
    }

    /// Answers every caller with `e`; returns the writes no caller waits for, the
    /// oldest log lines dropped beyond [`MAX_CARRIED_LINES`].
    fn answer_error(self, e: &Error) -> Group {
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
        let mut logs = self.logs;
        let mut lines: usize = logs.iter().map(|(_, _, lines)| lines.len()).sum();
        let mut dropped = 0;
        while lines > MAX_CARRIED_LINES && !logs.is_empty() {
            let (_, _, oldest) = logs.remove(0);
            lines -= oldest.len();
            dropped += oldest.len();
        }
        if dropped > 0 {
            tracing::warn!(
                lines = dropped,
                "log lines dropped: the database takes no writes"
            );
        }
        Group {
            progress: self.progress,
            logs,
            ..Group::default()
        }
    }
}

fn decode_error(what: &str) -> Error {
    Error::Database(sqlx::Error::Decode(format!("unexpected {what}").into()))
}

/// What the guarded update changed, or [`Error::LeaseLost`] when it changed nothing.
fn guarded(changed: &mut HashMap<JobId, Changes>, id: JobId) -> Result<Changes> {
    changed.remove(&id).ok_or(Error::LeaseLost { id })
}

/// A completed or failed job's move, from its `RETURNING` row.
fn moved(row: &sqlx::sqlite::SqliteRow) -> Result<JobChange> {
    Ok(JobChange {
        id: parse_id(&row.try_get::<String, _>("id")?)?,
        from: Some(JobState::Processing),
        to: Some(super::rows::parse_state(
            &row.try_get::<String, _>("state")?,
        )?),
        reason: row.try_get("reason")?,
        at: row.try_get("at")?,
        queue: row.try_get("queue")?,
        plugin: row.try_get("plugin")?,
        attempt: row.try_get("attempt")?,
        batch: row
            .try_get::<Option<String>, _>("batch_id")?
            .as_deref()
            .map(parse_id)
            .transpose()?,
        agent: row.try_get("agent_id")?,
        task: task_of(row)?,
        lease: None,
    })
}

/// The `task_id` column of a `RETURNING` row.
fn task_of(row: &sqlx::sqlite::SqliteRow) -> Result<Option<JobId>> {
    let task: Option<String> = row.try_get("task_id")?;
    task.as_deref().map(parse_id).transpose()
}

/// Saturates a count into SQLite's signed integers.
fn sql_int(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn insert_jobs<'a>(script: &mut Script, jobs: impl IntoIterator<Item = (&'a NewJob, Millis)>) {
    let items = jobs
        .into_iter()
        .map(|(job, now)| {
            let state = initial_state(job, now);
            let reason = initial_reason(state);
            json!({
                "id": job.id.to_string(), "plugin": job.plugin, "args": job.args.as_str(),
                "queue": job.queue, "priority": job.priority, "state": state.as_str(),
                "max_attempts": job.max_attempts, "run_at": job.run_at.unwrap_or(now),
                "now": now, "repo": job.repository_path, "reason": reason,
                "unique_key": job.unique_key, "agent": job.agent_id,
            })
        })
        .collect();
    let items = script.json(items);
    script.push(&format!(
        "INSERT INTO jobs (id, plugin, args, queue, priority, state, max_attempts, run_at, \
         created_at, repository_path, state_at, state_reason, unique_key, agent_id) \
         SELECT value->>'id', value->>'plugin', value->>'args', value->>'queue', \
         value->>'priority', value->>'state', value->>'max_attempts', value->>'run_at', \
         value->>'now', value->>'repo', value->>'now', value->>'reason', value->>'unique_key', \
         value->>'agent' \
         FROM json_each(jsonb({items}))"
    ));
}

/// Inserts `jobs` on `conn`, inside the caller's transaction.
pub(super) async fn insert(
    conn: &mut SqliteConnection,
    jobs: &[NewJob],
    now: Millis,
) -> Result<()> {
    let mut script = Script::default();
    insert_jobs(&mut script, jobs.iter().map(|job| (job, now)));
    script.query().execute(&mut *conn).await?;
    Ok(())
}

fn update_progress(script: &mut Script, updates: &[(JobId, LeaseId, Progress)]) {
    // UPDATE … FROM picks an arbitrary source row when several match: keep the latest
    // per lease (an update under a stale lease must not hide a valid one).
    let mut latest: HashMap<(JobId, LeaseId), &Progress> = HashMap::new();
    for (id, lease, progress) in updates {
        latest.insert((*id, *lease), progress);
    }
    let items = latest
        .into_iter()
        .map(|((id, lease), p)| {
            json!({"id": id.to_string(), "lease": lease.to_string(), "percent": p.percent,
                   "message": p.message, "at": p.updated_at})
        })
        .collect();
    let items = script.json(items);
    script.push(&format!(
        "UPDATE jobs SET progress_percent = p.percent, progress_message = p.message, \
         progress_updated_at = p.at \
         FROM (SELECT value->>'id' AS id, value->>'lease' AS lease, value->>'percent' AS percent, \
               value->>'message' AS message, value->>'at' AS at FROM json_each(jsonb({items}))) AS p \
         WHERE jobs.id = p.id AND +jobs.state = 'processing' AND jobs.lease_id = p.lease"
    ));
}

fn insert_logs(script: &mut Script, logs: &[(JobId, u32, Vec<LogLine>)]) {
    let items = logs
        .iter()
        .flat_map(|(id, attempt, lines)| {
            lines.iter().map(move |line| {
                json!({"id": id.to_string(), "attempt": attempt, "at": line.at,
                       "level": line.level, "message": line.message})
            })
        })
        .collect();
    let items = script.json(items);
    script.push(&format!(
        "INSERT INTO job_logs (job_id, attempt, at, level, message) \
         SELECT value->>'id', value->>'attempt', value->>'at', value->>'level', value->>'message' \
         FROM json_each(jsonb({items})) ORDER BY key"
    ));
}

fn complete_jobs(
    script: &mut Script,
    completions: &[(JobId, LeaseId, Completion, Millis, Reply<Changes>)],
) {
    let items = completions
        .iter()
        .map(|(id, lease, done, now, _)| {
            json!({"id": id.to_string(), "lease": lease.to_string(), "result": done.result.as_str(),
                   "now": now, "digest": done.plugin_digest, "fuel": sql_int(done.usage.fuel_consumed),
                   "wall": sql_int(done.usage.wall_ms), "mem": sql_int(done.usage.memory_peak_bytes)})
        })
        .collect();
    let items = script.json(items);
    script.push(&format!(
        "UPDATE jobs SET state = 'succeeded', state_at = c.now, state_reason = 'completed', \
         result = c.result, finished_at = c.now, plugin_digest = c.digest, \
         fuel_consumed = c.fuel, wall_ms = c.wall, memory_peak_bytes = c.mem, \
         error_kind = NULL, error_message = NULL, lease_id = NULL, lease_owner = NULL, \
         lease_expires_at = NULL, cancel_requested = 0 \
         FROM (SELECT value->>'id' AS id, value->>'lease' AS lease, value->>'result' AS result, \
               value->>'now' AS now, value->>'digest' AS digest, value->>'fuel' AS fuel, \
               value->>'wall' AS wall, value->>'mem' AS mem FROM json_each(jsonb({items}))) AS c \
         WHERE jobs.id = c.id AND +jobs.state = 'processing' AND jobs.lease_id = c.lease \
         RETURNING '{TAG_COMPLETED}' AS tag, {MOVED_COLUMNS}, {TASK_ID}"
    ));
}

fn fail_jobs(script: &mut Script, failures: &[(JobId, LeaseId, Failure, Millis, Reply<Changes>)]) {
    let items = failures
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
    let items = script.json(items);
    // A job whose cancellation was requested ends `cancelled`, whatever the failure.
    script.push(&format!(
        "UPDATE jobs SET \
         state = CASE WHEN jobs.cancel_requested = 1 THEN 'cancelled' ELSE f.state END, \
         state_at = f.now, \
         state_reason = CASE WHEN jobs.cancel_requested = 1 THEN 'cancelled while running' \
                        ELSE f.reason END, \
         run_at = COALESCE(f.run_at, jobs.run_at), \
         finished_at = CASE WHEN f.state = 'scheduled' AND jobs.cancel_requested = 0 \
                       THEN NULL ELSE f.now END, \
         error_kind = f.kind, error_message = f.message, \
         plugin_digest = COALESCE(f.digest, jobs.plugin_digest), fuel_consumed = f.fuel, \
         wall_ms = f.wall, memory_peak_bytes = f.mem, \
         lease_id = NULL, lease_owner = NULL, lease_expires_at = NULL \
         FROM (SELECT value->>'id' AS id, value->>'lease' AS lease, value->>'state' AS state, \
               value->>'run_at' AS run_at, value->>'now' AS now, value->>'kind' AS kind, \
               value->>'message' AS message, value->>'digest' AS digest, \
               value->>'reason' AS reason, value->>'fuel' AS fuel, value->>'wall' AS wall, \
               value->>'mem' AS mem FROM json_each(jsonb({items}))) AS f \
         WHERE jobs.id = f.id AND +jobs.state = 'processing' AND jobs.lease_id = f.lease \
         RETURNING '{TAG_FAILED}' AS tag, {MOVED_COLUMNS}, {TASK_ID}"
    ));
}

/// The conditions that leave out jobs bound to parked agents and jobs of plugins still
/// compiling (none if there are none).
fn waiting_left_out(script: &mut Script, params: &ClaimParams) -> String {
    let mut list = |names: &[String]| -> String {
        let names: Vec<&str> = names
            .iter()
            .map(|name| script.param(Bind::Text(name.clone())))
            .collect();
        names.join(", ")
    };
    let mut sql = String::new();
    if !params.parked_agents.is_empty() {
        let agents = list(&params.parked_agents);
        sql.push_str(&format!(
            " AND (agent_id IS NULL OR agent_id NOT IN ({agents}))"
        ));
    }
    if !params.waiting_plugins.is_empty() {
        let plugins = list(&params.waiting_plugins);
        sql.push_str(&format!(" AND plugin NOT IN ({plugins})"));
    }
    sql
}

/// One statement claims from every queue: each queue's candidates come from its own
/// index range (at most `limit` rows each, fewer under a concurrency cap, none when
/// paused), then precedence, priority and age decide. The queue's controls are read from
/// the `queues` table by the statement itself.
fn claim_jobs(script: &mut Script, index: usize, params: &ClaimParams, now: Millis) {
    if params.queues.is_empty() {
        return;
    }
    let lease = Uuid::now_v7().to_string();
    let limit = i64::from(params.limit);
    let mut sql = format!(
        "UPDATE jobs SET state = 'processing', state_at = {}, \
         state_reason = 'attempt ' || (attempt + 1) || ' of ' || max_attempts || \
                        ' started by ' || {}, \
         attempt = attempt + 1, started_at = {}, finished_at = NULL, lease_id = {}, \
         lease_owner = {}, lease_expires_at = {}, progress_percent = NULL, \
         progress_message = NULL, progress_updated_at = NULL \
         WHERE id IN (SELECT id FROM (",
        script.param(Bind::Int(now)),
        script.param(Bind::Text(params.owner.clone())),
        script.param(Bind::Int(now)),
        script.param(Bind::Text(lease)),
        script.param(Bind::Text(params.owner.clone())),
        script.param(Bind::Int(params.lease_until)),
    );
    for (precedence, queue) in params.queues.iter().enumerate() {
        if precedence > 0 {
            sql.push_str(" UNION ALL ");
        }
        sql.push_str(&format!(
            "SELECT * FROM (SELECT id, {} AS precedence, priority, run_at \
             FROM jobs WHERE state = 'enqueued' AND queue = {}{} \
             AND NOT EXISTS (SELECT 1 FROM queues WHERE name = {} AND paused) \
             ORDER BY priority DESC, run_at, id LIMIT \
             (SELECT CASE WHEN c.concurrency IS NULL THEN {} \
                     ELSE max(0, min({}, c.concurrency - (SELECT count(*) FROM jobs \
                          WHERE state = 'processing' AND queue = c.name))) END \
              FROM (SELECT {} AS name) AS q LEFT JOIN queues AS c ON c.name = q.name))",
            script.param(Bind::Int(sql_int(precedence as u64))),
            script.param(Bind::Text(queue.clone())),
            waiting_left_out(script, params),
            script.param(Bind::Text(queue.clone())),
            script.param(Bind::Int(limit)),
            script.param(Bind::Int(limit)),
            script.param(Bind::Text(queue.clone())),
        ));
    }
    sql.push_str(&format!(
        ") ORDER BY precedence, priority DESC, run_at, id LIMIT {}) \
         RETURNING {} AS tag, lease_id, {TASK_ID}, {JOB_COLUMNS}",
        script.param(Bind::Int(limit)),
        script.param(Bind::Text(index.to_string())),
    ));
    script.push(&sql);
}
