//! Jobs: their ids, states, errors, progress, usage, logs, history and links.

use super::rules::DEFAULT_MAX_ATTEMPTS;
use super::{JsonText, Millis, rfc3339};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;
use utoipa::ToSchema;
use uuid::Uuid;

/// A job's id: a UUID v7, so ids sort by creation time.
pub type JobId = Uuid;

/// A new, time-ordered job id.
pub fn new_job_id() -> JobId {
    Uuid::now_v7()
}

/// Where a job is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    /// Waiting for its parents to finish (a continuation or batch callback). The last
    /// parent to finish moves it to `enqueued`; with `on: success`, a parent that
    /// fails or is cancelled moves it to `cancelled`.
    Awaiting,
    /// Waiting for `run_at`: a delayed job or a retry's wait. The promoter moves it to
    /// `enqueued` once due; cancel moves it to `cancelled`.
    Scheduled,
    /// Ready to run. A worker's claim moves it to `processing`; cancel to `cancelled`.
    Enqueued,
    /// Held by a worker under a lease. The worker moves it to `succeeded`, `failed`,
    /// `scheduled` (retry) or `cancelled`; lease expiry moves it back to `enqueued`.
    Processing,
    /// Terminal: the handler returned a result.
    Succeeded,
    /// Terminal (the dead-letter list): attempts exhausted or a fatal error. Retry
    /// moves it back to `enqueued`.
    Failed,
    /// Terminal: cancelled by a client. Retry moves it back to `enqueued`.
    Cancelled,
}

impl JobState {
    /// Every state, in life order.
    pub const ALL: [JobState; 7] = [
        JobState::Awaiting,
        JobState::Scheduled,
        JobState::Enqueued,
        JobState::Processing,
        JobState::Succeeded,
        JobState::Failed,
        JobState::Cancelled,
    ];

    /// The state's name as stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Awaiting => "awaiting",
            JobState::Scheduled => "scheduled",
            JobState::Enqueued => "enqueued",
            JobState::Processing => "processing",
            JobState::Succeeded => "succeeded",
            JobState::Failed => "failed",
            JobState::Cancelled => "cancelled",
        }
    }

    /// Whether no worker will move the job again.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            JobState::Succeeded | JobState::Failed | JobState::Cancelled
        )
    }
}

impl fmt::Display for JobState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for JobState {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        JobState::ALL
            .into_iter()
            .find(|state| state.as_str() == s)
            .ok_or_else(|| format!("unknown job state `{s}`"))
    }
}

/// Why a run did not succeed, as stored in `error.kind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The handler returned `job-error::retryable`.
    Retryable,
    /// The handler returned `job-error::fatal`: no more attempts.
    Fatal,
    /// The guest trapped (panic, unreachable, bad memory access…).
    Trap,
    /// The run used its whole fuel budget.
    OutOfFuel,
    /// The run passed its wall-clock deadline.
    Timeout,
    /// The guest was refused memory beyond its limit.
    MemoryLimit,
    /// The handler's result was larger than its limit: no more attempts.
    ResultTooLarge,
    /// The guest wrote more under `/repo` than its disk quota allows, and gave up.
    DiskQuota,
    /// A client cancelled the job.
    Cancelled,
    /// The host running the job stopped renewing its lease (it died).
    LeaseExpired,
}

impl ErrorKind {
    /// Every kind.
    pub const ALL: [ErrorKind; 10] = [
        ErrorKind::Retryable,
        ErrorKind::Fatal,
        ErrorKind::Trap,
        ErrorKind::OutOfFuel,
        ErrorKind::Timeout,
        ErrorKind::MemoryLimit,
        ErrorKind::ResultTooLarge,
        ErrorKind::DiskQuota,
        ErrorKind::Cancelled,
        ErrorKind::LeaseExpired,
    ];

    /// The kind's name as stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Retryable => "retryable",
            ErrorKind::Fatal => "fatal",
            ErrorKind::Trap => "trap",
            ErrorKind::OutOfFuel => "out_of_fuel",
            ErrorKind::Timeout => "timeout",
            ErrorKind::MemoryLimit => "memory_limit",
            ErrorKind::ResultTooLarge => "result_too_large",
            ErrorKind::DiskQuota => "disk_quota",
            ErrorKind::Cancelled => "cancelled",
            ErrorKind::LeaseExpired => "lease_expired",
        }
    }

    /// Whether a failure of this kind may be retried while attempts remain.
    pub fn is_retryable(self) -> bool {
        !matches!(
            self,
            ErrorKind::Fatal
                | ErrorKind::ResultTooLarge
                | ErrorKind::DiskQuota
                | ErrorKind::Cancelled
        )
    }
}

impl FromStr for ErrorKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ErrorKind::ALL
            .into_iter()
            .find(|kind| kind.as_str() == s)
            .ok_or_else(|| format!("unknown error kind `{s}`"))
    }
}

/// A run's failure: what kind, and what happened.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct JobError {
    /// The kind of failure.
    pub kind: ErrorKind,
    /// A human-readable description.
    pub message: String,
}

impl JobError {
    /// A failure of `kind` described by `message`.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }
}

/// The latest progress a running job reported.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Progress {
    /// 0 to 100.
    pub percent: u8,
    /// What the handler is doing.
    pub message: String,
    /// When it was reported.
    #[serde(with = "rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: Millis,
}

/// Resources a job's last run used: the per-job account.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Usage {
    /// Fuel (roughly, wasm instructions) the run consumed. For a run stopped by its
    /// deadline this undercounts; see `wall_ms`.
    pub fuel_consumed: u64,
    /// Wall-clock time of the run, instantiation included.
    pub wall_ms: u64,
    /// The largest linear memory the guest had.
    pub memory_peak_bytes: u64,
}

/// One line of a job's log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct LogLine {
    /// When it was written.
    #[serde(with = "rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub at: Millis,
    /// `trace`, `debug`, `info`, `warn`, `error`, or `stdout`/`stderr` for guest output.
    pub level: String,
    /// The text.
    pub message: String,
}

/// A log line as stored: its place in the job's log and the attempt that wrote it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct StoredLogLine {
    /// Its cursor: a job's lines are read by attempt, then in the order written (`seq`).
    pub seq: i64,
    /// The attempt that wrote it; lines written while the job waited belong to its last
    /// attempt (0 before the first).
    pub attempt: u32,
    /// The line.
    #[serde(flatten)]
    pub line: LogLine,
}

/// How many lines one attempt logged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AttemptLogCount {
    /// The attempt.
    pub attempt: u32,
    /// Its lines.
    pub count: u64,
}

/// One recorded state change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Transition {
    /// The state entered.
    pub state: JobState,
    /// When.
    #[serde(with = "rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub at: Millis,
    /// Why, in words.
    pub reason: String,
}

/// A job as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Job {
    /// Its id.
    #[schema(value_type = Uuid)]
    pub id: JobId,
    /// The plugin that handles it.
    pub plugin: String,
    /// Arguments handed to the handler: a JSON object, as the client sent it.
    pub args: JsonText,
    /// The queue it waits in.
    pub queue: String,
    /// -100..=100, higher first within a queue.
    pub priority: i32,
    /// Where it is in its life.
    pub state: JobState,
    /// Attempts started so far (the running one included).
    pub attempt: u32,
    /// Attempts allowed in all.
    pub max_attempts: u32,
    /// When it may run (for `scheduled` jobs: when it is promoted).
    #[serde(with = "rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub run_at: Millis,
    /// When it was accepted.
    #[serde(with = "rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Millis,
    /// When its last run started.
    #[serde(with = "rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub started_at: Option<Millis>,
    /// When it reached a terminal state.
    #[serde(with = "rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub finished_at: Option<Millis>,
    /// Host directory mounted at `/repo` for its runs.
    pub repository_path: Option<String>,
    /// The agent it is bound to.
    pub agent_id: Option<String>,
    /// The handler's result (on success).
    pub result: Option<serde_json::Value>,
    /// The last run's failure.
    pub error: Option<JobError>,
    /// The latest progress report.
    pub progress: Option<Progress>,
    /// sha256 of the module that ran it last.
    pub plugin_digest: Option<String>,
    /// What its last run used.
    pub usage: Option<Usage>,
}

/// A job named by another, with its state: a parent, a continuation, a batch's job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct JobRef {
    /// The job.
    #[schema(value_type = Uuid)]
    pub id: JobId,
    /// Its state.
    pub state: JobState,
}

/// The step of a workflow run a job was started for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct StepRef {
    /// The run.
    #[schema(value_type = Uuid)]
    pub run_id: JobId,
    /// The step's id in the run's workflow.
    pub step_id: String,
}

/// Most parents, and most continuations, a job's [`JobLinks`] name.
pub const MAX_LINKED_JOBS: usize = 100;

/// What a job is linked to: the jobs it waits for and that wait for it, its batch and
/// its workflow run. Linked jobs no longer stored (deleted) are left out.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct JobLinks {
    /// The jobs it waits (or waited) for, oldest first; at most [`MAX_LINKED_JOBS`]
    /// (100), the oldest.
    pub parents: Vec<JobRef>,
    /// The jobs that wait (or waited) for it: its continuations, batch callbacks among
    /// them; oldest first, at most [`MAX_LINKED_JOBS`] (100), the oldest.
    pub continuations: Vec<JobRef>,
    /// The batch it is one of the jobs of; `null` if none.
    #[schema(value_type = Option<Uuid>)]
    pub batch_id: Option<JobId>,
    /// The workflow run step it runs; `null` if none.
    pub workflow_run: Option<StepRef>,
}

impl JobLinks {
    /// Whether the job is linked to nothing.
    pub fn is_empty(&self) -> bool {
        self == &JobLinks::default()
    }
}

/// A job with its history, the end of its log and its links, as `GET /api/jobs/{id}`
/// shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct JobDetail {
    /// The job.
    #[serde(flatten)]
    pub job: Job,
    /// What it is linked to.
    #[serde(flatten)]
    pub links: JobLinks,
    /// Every state change, oldest first.
    pub history: Vec<Transition>,
    /// The latest log lines (a bounded number), in reading order; the whole log is read
    /// page by page from `GET /api/jobs/{id}/logs`.
    pub logs: Vec<StoredLogLine>,
    /// Lines in the whole log.
    pub log_count: u64,
    /// Lines in the whole log per attempt, by attempt.
    pub log_counts: Vec<AttemptLogCount>,
}

/// A job to be stored.
#[derive(Debug, Clone)]
pub struct NewJob {
    /// Its id (callers make it with [`new_job_id`]).
    pub id: JobId,
    /// The plugin that handles it.
    pub plugin: String,
    /// Arguments for the handler: a JSON object.
    pub args: JsonText,
    /// The queue.
    pub queue: String,
    /// -100..=100.
    pub priority: i32,
    /// Attempts allowed.
    pub max_attempts: u32,
    /// When it may run: `None` or a past time enqueues it, a future time schedules it.
    pub run_at: Option<Millis>,
    /// Host directory to mount at `/repo`.
    pub repository_path: Option<String>,
    /// The agent the job is bound to: its runs hold the agent and may run commands on it.
    pub agent_id: Option<String>,
    /// While a job with this key is unfinished, submitting another returns that job.
    pub unique_key: Option<String>,
    /// Jobs that must finish first: the job waits in `awaiting` until they have.
    pub parents: Option<Parents>,
}

impl NewJob {
    /// A job of `plugin` on `queue` with a new id and the defaults: priority 0,
    /// [`DEFAULT_MAX_ATTEMPTS`] attempts, at once, no repository, agent,
    /// unique key or parents. Set the rest with struct update syntax.
    pub fn new(plugin: impl Into<String>, args: JsonText, queue: impl Into<String>) -> NewJob {
        NewJob {
            id: new_job_id(),
            plugin: plugin.into(),
            args,
            queue: queue.into(),
            priority: 0,
            max_attempts: DEFAULT_MAX_ATTEMPTS,
            run_at: None,
            repository_path: None,
            agent_id: None,
            unique_key: None,
            parents: None,
        }
    }
}

/// The jobs a continuation waits for, and on what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parents {
    /// The parent jobs.
    pub ids: Vec<JobId>,
    /// Whether every parent must succeed, or only finish.
    pub on: AwaitOn,
}

/// What a continuation waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AwaitOn {
    /// Every parent succeeded; a parent that fails or is cancelled cancels the job.
    Success,
    /// Every parent finished, however it ended.
    Finish,
}

impl AwaitOn {
    /// The name as stored and accepted by the API.
    pub fn as_str(self) -> &'static str {
        match self {
            AwaitOn::Success => "success",
            AwaitOn::Finish => "finish",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_names_round_trip() {
        for state in JobState::ALL {
            assert_eq!(state.as_str().parse::<JobState>(), Ok(state));
            assert_eq!(
                serde_json::to_value(state).expect("serialises"),
                serde_json::json!(state.as_str())
            );
        }
        assert!("running".parse::<JobState>().is_err());
    }

    #[test]
    fn only_finished_states_are_terminal() {
        let terminal: Vec<_> = JobState::ALL
            .into_iter()
            .filter(|s| s.is_terminal())
            .collect();
        assert_eq!(
            terminal,
            [JobState::Succeeded, JobState::Failed, JobState::Cancelled]
        );
    }

    #[test]
    fn error_kinds_round_trip_and_classify() {
        for kind in ErrorKind::ALL {
            assert_eq!(kind.as_str().parse::<ErrorKind>(), Ok(kind));
        }
        assert!(!ErrorKind::Fatal.is_retryable());
        assert!(!ErrorKind::Cancelled.is_retryable());
        assert!(!ErrorKind::ResultTooLarge.is_retryable());
        assert!(ErrorKind::MemoryLimit.is_retryable());
        assert!(ErrorKind::OutOfFuel.is_retryable());
    }
}
