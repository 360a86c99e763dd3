//! Durable job storage: the [`JobStore`] trait, its parameter types and errors.
//!
//! Methods are named by transition. Every write takes `now`, so tests control time, and
//! returns what it changed ([`Changes`]): every job it moved, including the moves its
//! rules caused in turn, for the engine to publish.
//! Completion is guarded: `complete` and `fail` change a job only while it is still
//! `processing` under the caller's lease, and report [`Error::LeaseLost`] otherwise.
//! Nothing above this module knows SQL.

pub mod agents;
pub mod alerts;
pub mod audit;
pub mod changes;
pub mod leader;
mod links;
pub mod locks;
mod logs;
mod moves;
pub mod postgres;
pub mod queues;
mod reads;
pub mod recurring;
mod rows;
pub mod sqlite;
pub mod stats;
pub mod tasks;
#[cfg(test)]
mod tests;
pub mod tokens;
pub mod workflows;

pub use crate::model::{AwaitOn, NewJob, Parents};
use crate::model::{
    Job, JobDetail, JobError, JobId, JobState, JsonText, LogLine, Millis, Progress, StoredLogLine,
    Usage,
};
pub use agents::AgentStore;
pub use alerts::AlertStore;
use async_trait::async_trait;
pub use audit::AuditStore;
pub use changes::{BatchProgress, ChangeSink, Changed, Changes, JobChange};
pub use leader::Leadership;
pub use locks::AgentLocks;
pub use queues::{QueueInfo, QueueSettings, QueueStore};
pub use reads::Reads;
pub use recurring::{Misfire, PutRecurring, RecurringDefinition, RecurringJob, RecurringStore};
pub use stats::StatsStore;
use std::sync::Arc;
pub use tasks::TaskStore;
pub use tokens::TokenStore;
use uuid::Uuid;
pub use workflows::WorkflowStore;

/// How durable a commit is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Durability {
    /// Survives a killed process, may lose the last commits on power loss (SQLite:
    /// `synchronous=NORMAL` in WAL mode).
    #[default]
    Normal,
    /// Survives power loss (SQLite: `synchronous=FULL`).
    Full,
}

/// Storage errors.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No job has that id.
    #[error("no job with id {0}")]
    NotFound(JobId),
    /// The caller no longer holds the job's lease: it expired, or the job was cancelled.
    #[error("lease lost for job {id}")]
    LeaseLost {
        /// The job.
        id: JobId,
    },
    /// The job is not in a state that allows the operation.
    #[error("{0}")]
    Conflict(String),
    /// The request refers to something that does not exist or cannot be used.
    #[error("{0}")]
    Invalid(String),
    /// No recurring job has that id.
    #[error("no recurring job with id {0}")]
    RecurringNotFound(String),
    /// No agent has that id.
    #[error("no agent with id {0}")]
    AgentNotFound(String),
    /// No token that may be used has that name.
    #[error("no token named {0}")]
    TokenNotFound(String),
    /// The database failed.
    #[error("database error: {0}")]
    Database(sqlx::Error),
    /// The database cannot take writes now; `detail` says what it reported.
    #[error("{fault}: {detail}")]
    Unavailable {
        /// What is wrong.
        fault: Fault,
        /// The database's own words.
        detail: String,
    },
    /// Another process uses the database, which only one may.
    #[error("{0}")]
    InUse(String),
    /// The schema could not be migrated.
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A group commit that carried this write failed.
    #[error("write failed: {0}")]
    WriteFailed(String),
    /// The store was shut down.
    #[error("job store is closed")]
    Closed,
}

/// A storage fault: why the database cannot take writes now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The disk holding the database is full (`SQLITE_FULL`).
    DiskFull,
    /// The database or its file system is read-only (`SQLITE_READONLY`).
    ReadOnly,
    /// Another process holds the database locked (`SQLITE_BUSY`, `SQLITE_LOCKED`).
    Busy,
    /// Reading or writing the database file failed (`SQLITE_IOERR`).
    Io,
    /// The database file was deleted or replaced under the running host.
    Replaced,
}

impl std::fmt::Display for Fault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Fault::DiskFull => "database disk full",
            Fault::ReadOnly => "database is read-only",
            Fault::Busy => "database is locked by another process",
            Fault::Io => "database I/O error",
            Fault::Replaced => "database file was deleted or replaced",
        })
    }
}

impl From<sqlx::Error> for Error {
    fn from(e: sqlx::Error) -> Self {
        match sqlite::fault_of(&e) {
            Some(fault) => Error::Unavailable {
                fault,
                detail: e.to_string(),
            },
            None => Error::Database(e),
        }
    }
}

/// Result of store operations.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A lease: proof that one worker holds one claimed job.
pub type LeaseId = Uuid;

/// Jobs created together, with callbacks that run when they are done.
#[derive(Debug, Clone)]
pub struct NewBatch {
    /// The batch's id.
    pub id: JobId,
    /// What the batch is for.
    pub description: String,
    /// Its jobs.
    pub jobs: Vec<NewJob>,
    /// Runs once when every job succeeded.
    pub on_success: Option<NewJob>,
    /// Runs once when every job finished, however.
    pub on_complete: Option<NewJob>,
}

/// A batch as stored, with where its jobs are.
#[derive(Debug, Clone)]
pub struct BatchInfo {
    /// The batch's id.
    pub id: JobId,
    /// What the batch is for.
    pub description: String,
    /// When it was created.
    pub created_at: Millis,
    /// Its jobs and their states, oldest first.
    pub jobs: Vec<(JobId, JobState)>,
    /// The success callback and its state.
    pub on_success: Option<(JobId, JobState)>,
    /// The completion callback and its state.
    pub on_complete: Option<(JobId, JobState)>,
    /// When it was cancelled, if it was.
    pub cancelled_at: Option<Millis>,
}

/// What [`JobStore::enqueue`] did.
#[derive(Debug, Clone)]
pub struct Submitted {
    /// The stored job: the new one, or the unfinished job that holds the unique key.
    pub job: Job,
    /// Whether a new job was stored.
    pub created: bool,
    /// What storing it changed (nothing when the key's holder was returned).
    pub changes: Changes,
}

/// What a worker asks of [`JobStore::claim`].
#[derive(Debug, Clone)]
pub struct ClaimParams {
    /// Queues in order of precedence: a later queue is served only when every earlier one
    /// has no job ready.
    pub queues: Vec<String>,
    /// Most jobs to claim.
    pub limit: u32,
    /// Who claims (this host), recorded on the lease.
    pub owner: String,
    /// When the lease expires unless renewed.
    pub lease_until: Millis,
    /// Agents that take no work now (offline or in error): jobs bound to them wait.
    pub parked_agents: Vec<String>,
    /// Plugins whose module is still compiling: their jobs wait.
    pub waiting_plugins: Vec<String>,
}

/// A job handed to a worker, with the lease that guards its completion.
#[derive(Debug, Clone)]
pub struct Claimed {
    /// The job, already `processing` with `attempt` counted.
    pub job: Job,
    /// The lease.
    pub lease: LeaseId,
}

/// What a heartbeat renewed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Renewal {
    /// How many of the leases given were still held, and now last longer.
    pub renewed: u64,
    /// The jobs of those whose cancellation was asked: the holder stops them even if it
    /// missed the cancel's notice.
    pub cancel_asked: Vec<JobId>,
}

impl Renewal {
    /// The renewal of the rows a heartbeat updated: each job's id and whether its
    /// cancellation was asked.
    pub(crate) fn of(rows: &[(String, bool)]) -> Result<Renewal> {
        let mut cancel_asked = Vec::new();
        for (id, asked) in rows {
            if *asked {
                cancel_asked.push(rows::parse_id(id)?);
            }
        }
        Ok(Renewal {
            renewed: rows.len() as u64,
            cancel_asked,
        })
    }
}

/// A successful run's outcome.
#[derive(Debug, Clone)]
pub struct Completion {
    /// The handler's result: validated JSON text, kept as text.
    pub result: JsonText,
    /// sha256 of the module that ran.
    pub plugin_digest: String,
    /// What the run used.
    pub usage: Usage,
}

/// What happens to a job after a failed run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterFailure {
    /// Back to `scheduled`, due at the given time.
    RetryAt(Millis),
    /// Terminal `failed`.
    Fail,
    /// Terminal `cancelled`.
    Cancel,
}

/// A failed run's outcome.
#[derive(Debug, Clone)]
pub struct Failure {
    /// What went wrong.
    pub error: JobError,
    /// Where the job goes next.
    pub then: AfterFailure,
    /// sha256 of the module that ran, if one was found.
    pub plugin_digest: Option<String>,
    /// What the run used.
    pub usage: Usage,
}

/// What [`JobStore::cancel`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CancelOutcome {
    /// The job was waiting and is now `cancelled`.
    Cancelled,
    /// The job is running: its cancellation is requested, and the worker that holds it
    /// will stop it and record it `cancelled`.
    Requested,
}

/// Filters for [`JobStore::list`].
#[derive(Debug, Clone, Default)]
pub struct JobFilter {
    /// Only jobs in this state.
    pub state: Option<JobState>,
    /// Only jobs in this queue.
    pub queue: Option<String>,
    /// Only jobs for this plugin.
    pub plugin: Option<String>,
    /// Only jobs bound to this agent.
    pub agent: Option<String>,
    /// Only jobs whose id starts with it, or whose args or error text hold it (ASCII
    /// letters in any case).
    pub text: Option<String>,
    /// Page size.
    pub limit: u32,
    /// Only jobs older than this id (the previous page's `next_cursor`).
    pub before: Option<JobId>,
}

/// One page of jobs, newest first.
#[derive(Debug, Clone)]
pub struct Page {
    /// The jobs.
    pub jobs: Vec<Job>,
    /// Pass as `before` for the next page; `None` on the last page.
    pub next_cursor: Option<JobId>,
}

/// Log lines [`JobStore::get`] returns with a job: its latest.
pub const DETAIL_LOG_LINES: u32 = 100;

/// Which lines [`JobStore::logs`] returns.
#[derive(Debug, Clone, Copy)]
pub struct LogQuery {
    /// Only lines of this attempt.
    pub attempt: Option<u32>,
    /// Only lines after this one (its `seq`, the previous page's `next_cursor`).
    pub after: Option<i64>,
    /// Page size.
    pub limit: u32,
}

/// One page of a job's log, in reading order.
#[derive(Debug, Clone)]
pub struct LogPage {
    /// The lines.
    pub lines: Vec<StoredLogLine>,
    /// Pass as `after` for the next page; `None` on the last page.
    pub next_cursor: Option<i64>,
}

/// Durable job storage. Implementations must pass the conformance suite in `store::tests`.
#[async_trait]
pub trait JobStore:
    WorkflowStore
    + AgentStore
    + AgentLocks
    + TaskStore
    + RecurringStore
    + QueueStore
    + TokenStore
    + AuditStore
    + StatsStore
    + AlertStore
    + Leadership
    + Send
    + Sync
    + 'static
{
    /// Stores a new job as `enqueued` (or `scheduled` when `run_at` is in the future),
    /// with its first history row; with a unique key held by an unfinished job, returns
    /// that job instead.
    async fn enqueue(&self, job: NewJob, now: Millis) -> Result<Submitted>;

    /// Stores many jobs at once, all or none.
    async fn enqueue_many(&self, jobs: Vec<NewJob>, now: Millis) -> Result<Changes>;

    /// Moves up to `limit` ready jobs to `processing` under new leases: queues in
    /// precedence order, then higher priority, then earlier `run_at`, then older.
    /// Paused queues are skipped, and no queue goes past its concurrency cap. Each
    /// claimed job is its own change (`enqueued` → `processing`, see
    /// [`JobChange::started`]).
    async fn claim(&self, params: &ClaimParams, now: Millis) -> Result<Vec<Claimed>>;

    /// Extends the given leases (job and lease) to `until`, those still held; returns
    /// how many, and which of their jobs were asked to cancel.
    async fn heartbeat(&self, leases: &[(JobId, LeaseId)], until: Millis) -> Result<Renewal>;

    /// Records a successful run: `processing` → `succeeded`.
    ///
    /// # Errors
    /// [`Error::LeaseLost`] when the job is no longer held under `lease`.
    async fn complete(
        &self,
        id: JobId,
        lease: LeaseId,
        done: Completion,
        now: Millis,
    ) -> Result<Changes>;

    /// Records a failed run: `processing` → `scheduled`, `failed` or `cancelled`.
    ///
    /// # Errors
    /// [`Error::LeaseLost`] when the job is no longer held under `lease`.
    async fn fail(
        &self,
        id: JobId,
        lease: LeaseId,
        failure: Failure,
        now: Millis,
    ) -> Result<Changes>;

    /// Queues a progress update of a running job. Writes from one caller apply in order,
    /// before that caller's later `complete` or `fail`; an update for a job no longer
    /// held under `lease` is dropped.
    fn record_progress(&self, id: JobId, lease: LeaseId, progress: Progress);

    /// Queues log lines that `attempt` of a job wrote, ordered like
    /// [`JobStore::record_progress`].
    fn append_logs(&self, id: JobId, attempt: u32, lines: Vec<LogLine>);

    /// Moves up to `limit` `scheduled` jobs due by `now` to `enqueued`.
    async fn promote_due(&self, now: Millis, limit: u32) -> Result<Changes>;

    /// Up to `limit` `processing` jobs whose lease expired before `now` (their host
    /// stopped), with those leases: the caller records each as failed, which uses up
    /// its attempt.
    async fn expired_leases(&self, now: Millis, limit: u32) -> Result<Vec<Claimed>>;

    /// Returns the jobs `owner` still holds to `enqueued` (on shutdown), not counting
    /// their interrupted attempts.
    async fn release(&self, owner: &str, now: Millis) -> Result<Changes>;

    /// Cancels a waiting job, or requests cancellation of a running one.
    ///
    /// # Errors
    /// [`Error::NotFound`]; [`Error::Conflict`] when the job already finished.
    async fn cancel(&self, id: JobId, now: Millis) -> Result<Changed<CancelOutcome>>;

    /// Sends a `failed` or `cancelled` job back to `enqueued` with its attempts reset.
    ///
    /// # Errors
    /// [`Error::NotFound`]; [`Error::Conflict`] in any other state.
    async fn retry(&self, id: JobId, now: Millis) -> Result<Changed<Job>>;

    /// Deletes a job that is not running, with its history and log.
    ///
    /// # Errors
    /// [`Error::NotFound`]; [`Error::Conflict`] while it is `processing`.
    async fn delete(&self, id: JobId, now: Millis) -> Result<Changes>;

    /// One job with its history, its latest [`DETAIL_LOG_LINES`] log lines, its log's
    /// line counts and its links (see [`crate::model::JobLinks`]).
    async fn get(&self, id: JobId) -> Result<Option<JobDetail>>;

    /// A page of a job's log, in reading order (by attempt, then as written); `None` for
    /// an unknown job.
    ///
    /// # Errors
    /// [`Error::Invalid`] when `after` is not a line of this job.
    async fn logs(&self, id: JobId, query: &LogQuery) -> Result<Option<LogPage>>;

    /// Jobs matching `filter`, newest first.
    async fn list(&self, filter: &JobFilter) -> Result<Page>;

    /// How many jobs match `filter` (its page size and cursor aside), counting no
    /// further than `most`.
    async fn count(&self, filter: &JobFilter, most: u64) -> Result<u64>;

    /// How many jobs wait to be indexed for searching by text (searches find them all the
    /// same, only slower).
    async fn search_backlog(&self) -> Result<u64>;

    /// Stores a batch's jobs and callbacks at once, all or none.
    ///
    /// # Errors
    /// [`Error::Invalid`] when a job names a parent that does not exist.
    async fn create_batch(&self, batch: NewBatch, now: Millis) -> Result<Changes>;

    /// A batch with its jobs' states.
    async fn batch(&self, id: JobId) -> Result<Option<BatchInfo>>;

    /// Cancels a batch: its waiting jobs are cancelled; returns the running ones, whose
    /// cancellation is requested.
    ///
    /// # Errors
    /// [`Error::NotFound`] for an unknown batch.
    async fn cancel_batch(&self, id: JobId, now: Millis) -> Result<Changed<Vec<JobId>>>;

    /// Deletes up to `limit` finished jobs, with their history and log: succeeded ones
    /// finished before `succeeded_before`, failed or cancelled ones before
    /// `failed_before`.
    async fn delete_finished(
        &self,
        succeeded_before: Millis,
        failed_before: Millis,
        limit: u32,
        now: Millis,
    ) -> Result<Changes>;

    /// Sends what every later write changes to `sink`, in the order the writes commit,
    /// before each write returns (see [`ChangeSink`]); set once, by the engine.
    fn report_to(&self, sink: Arc<dyn ChangeSink>);

    /// `Err` while the store knows it cannot keep what is written (its database file
    /// was deleted or replaced).
    fn health(&self) -> Result<()>;

    /// Applies every queued write, then closes the store.
    async fn close(&self);
}

/// Opens the store at `db`: a PostgreSQL database for a `postgres://` (or
/// `postgresql://`) URL, which several hosts may share, else the SQLite file at that path.
///
/// # Errors
/// As [`sqlite::SqliteStore::open`] and [`postgres::PostgresStore::open`].
pub async fn open(db: &std::path::Path, durability: Durability) -> Result<Arc<dyn JobStore>> {
    match db.to_str().filter(|db| is_postgres(db)) {
        Some(url) => Ok(Arc::new(postgres::PostgresStore::open(url).await?)),
        None => Ok(Arc::new(sqlite::SqliteStore::open(db, durability).await?)),
    }
}

/// Whether `db` names a PostgreSQL database rather than an SQLite file.
pub fn is_postgres(db: &str) -> bool {
    db.starts_with("postgres://") || db.starts_with("postgresql://")
}

/// `db` as it may be shown: a PostgreSQL URL without its password.
pub fn shown(db: &std::path::Path) -> String {
    let db = db.display().to_string();
    let Some((scheme, rest)) = db.split_once("://").filter(|_| is_postgres(&db)) else {
        return db;
    };
    match rest.split_once('@') {
        Some((user, host)) if user.contains(':') => {
            let user = user.split(':').next().unwrap_or_default();
            format!("{scheme}://{user}:***@{host}")
        }
        _ => db,
    }
}

impl std::fmt::Debug for dyn JobStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("JobStore")
    }
}
