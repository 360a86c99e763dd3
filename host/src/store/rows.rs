//! Mapping between stored rows and model types, for every backend.

use crate::model::JobId;
use crate::model::{
    ErrorKind, Job, JobError, JobState, JsonText, LogLine, Progress, StoredLogLine, Transition,
    Usage,
};
use crate::store::{Error, Result};
use sqlx::FromRow;

/// The `jobs` columns every read selects, in [`JobRow`] order.
pub(crate) const JOB_COLUMNS: &str = "id, plugin, args, queue, priority, state, attempt, \
    max_attempts, run_at, created_at, started_at, finished_at, repository_path, result, \
    error_kind, error_message, progress_percent, progress_message, progress_updated_at, \
    plugin_digest, fuel_consumed, wall_ms, memory_peak_bytes, agent_id";

/// A `jobs` row as the database returns it.
#[derive(Debug, FromRow)]
pub(crate) struct JobRow {
    id: String,
    plugin: String,
    args: String,
    queue: String,
    priority: i64,
    state: String,
    attempt: i64,
    max_attempts: i64,
    run_at: i64,
    created_at: i64,
    started_at: Option<i64>,
    finished_at: Option<i64>,
    repository_path: Option<String>,
    result: Option<String>,
    error_kind: Option<String>,
    error_message: Option<String>,
    progress_percent: Option<i64>,
    progress_message: Option<String>,
    progress_updated_at: Option<i64>,
    plugin_digest: Option<String>,
    fuel_consumed: Option<i64>,
    wall_ms: Option<i64>,
    memory_peak_bytes: Option<i64>,
    agent_id: Option<String>,
}

/// A stored value that does not decode: the database was written by something else.
pub(crate) fn corrupt(what: &str, detail: impl std::fmt::Display) -> Error {
    Error::Database(sqlx::Error::Decode(
        format!("stored {what} is invalid: {detail}").into(),
    ))
}

/// Parses a stored state name.
pub(crate) fn parse_state(s: &str) -> Result<JobState> {
    s.parse().map_err(|e| corrupt("state", e))
}

fn parse_json(what: &str, text: &str) -> Result<serde_json::Value> {
    serde_json::from_str(text).map_err(|e| corrupt(what, e))
}

/// A job's stored error, if it has one.
pub(crate) fn job_error(kind: Option<String>, message: Option<String>) -> Result<Option<JobError>> {
    kind.map(|kind| {
        Ok(JobError {
            kind: kind
                .parse::<ErrorKind>()
                .map_err(|e| corrupt("error kind", e))?,
            message: message.unwrap_or_default(),
        })
    })
    .transpose()
}

/// A job's stored progress, if it reported any.
pub(crate) fn progress(
    percent: Option<i64>,
    message: Option<String>,
    updated_at: Option<i64>,
) -> Result<Option<Progress>> {
    match (percent, updated_at) {
        (Some(percent), Some(updated_at)) => Ok(Some(Progress {
            percent: u8::try_from(percent).map_err(|e| corrupt("progress", e))?,
            message: message.unwrap_or_default(),
            updated_at,
        })),
        _ => Ok(None),
    }
}

impl TryFrom<JobRow> for Job {
    type Error = Error;

    fn try_from(row: JobRow) -> Result<Job> {
        let error = job_error(row.error_kind, row.error_message)?;
        let progress = progress(
            row.progress_percent,
            row.progress_message,
            row.progress_updated_at,
        )?;
        let usage = row.wall_ms.map(|wall_ms| Usage {
            fuel_consumed: row.fuel_consumed.unwrap_or(0).max(0) as u64,
            wall_ms: wall_ms.max(0) as u64,
            memory_peak_bytes: row.memory_peak_bytes.unwrap_or(0).max(0) as u64,
        });
        Ok(Job {
            id: row.id.parse().map_err(|e| corrupt("id", e))?,
            plugin: row.plugin,
            args: JsonText::parse(row.args).map_err(|e| corrupt("args", e))?,
            queue: row.queue,
            priority: row.priority as i32,
            state: parse_state(&row.state)?,
            attempt: row.attempt.max(0) as u32,
            max_attempts: row.max_attempts.max(0) as u32,
            run_at: row.run_at,
            created_at: row.created_at,
            started_at: row.started_at,
            finished_at: row.finished_at,
            repository_path: row.repository_path,
            agent_id: row.agent_id,
            result: row
                .result
                .as_deref()
                .map(|r| parse_json("result", r))
                .transpose()?,
            error,
            progress,
            plugin_digest: row.plugin_digest,
            usage,
        })
    }
}

/// A `job_history` row.
#[derive(Debug, FromRow)]
pub(crate) struct TransitionRow {
    state: String,
    at: i64,
    reason: String,
}

impl TryFrom<TransitionRow> for Transition {
    type Error = Error;

    fn try_from(row: TransitionRow) -> Result<Transition> {
        Ok(Transition {
            state: parse_state(&row.state)?,
            at: row.at,
            reason: row.reason,
        })
    }
}

/// A `job_logs` row.
#[derive(Debug, FromRow)]
pub(crate) struct LogRow {
    seq: i64,
    attempt: i64,
    at: i64,
    level: String,
    message: String,
}

impl From<LogRow> for StoredLogLine {
    fn from(row: LogRow) -> StoredLogLine {
        StoredLogLine {
            seq: row.seq,
            attempt: row.attempt.max(0) as u32,
            line: LogLine {
                at: row.at,
                level: row.level,
                message: row.message,
            },
        }
    }
}

/// Converts rows, failing on the first that does not decode.
pub(crate) fn convert<R, T: TryFrom<R, Error = Error>>(rows: Vec<R>) -> Result<Vec<T>> {
    rows.into_iter().map(T::try_from).collect()
}

/// Parses a stored job id.
pub(crate) fn parse_id(id: &str) -> Result<JobId> {
    id.parse::<uuid::Uuid>()
        .map_err(|e| Error::Database(sqlx::Error::Decode(Box::new(e))))
}
