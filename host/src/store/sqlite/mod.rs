//! [`JobStore`] on an SQLite file in WAL mode.
//!
//! Writes go through one writer task that group-commits them (see `writer.rs`); reads use
//! a small pool of their own connections, which WAL lets run beside the writer.
//!
//! This file holds [`SqliteStore`]: its opening, and the plumbing every write goes
//! through. Each area of the store is an `impl` of its trait in a file of its own:
//! - `jobs.rs`: jobs and batches ([`JobStore`]);
//! - `queues.rs`: queue controls ([`QueueStore`]);
//! - `recurring.rs`: recurring jobs ([`RecurringStore`]);
//! - `workflows.rs`: workflows ([`WorkflowStore`]);
//! - `agents.rs`: agents ([`AgentStore`]);
//! - `locks.rs`: agent locks ([`AgentLocks`]);
//! - `tasks.rs`: tasks ([`TaskStore`]);
//! - `tokens.rs` and `audit.rs`: API tokens and the audit log;
//! - `alerts.rs`: alert rules and incidents ([`AlertStore`]);
//! - `stats.rs`: the rollup behind the analytics ([`StatsStore`]), which each group
//!   commit adds its runs to.
//!
//! Where both backends run the same SQL (`$1` placeholders, which SQLite takes too), the
//! area's module in `store/` holds the one implementation, as a macro that a backend's
//! file invokes with its store and connection types: queues, agents, tasks, tokens, the
//! audit log, a job's log and its links.
//!
//! Beneath them: the writer (`writer.rs`) and its group commits (`batch.rs`), the search
//! index it keeps while idle (`search.rs`), parent links and batches (`continuations.rs`),
//! what a write changed (`journal.rs`), reading a job's log (`logs.rs`), mapping rows to
//! model types (`store/rows.rs`, shared), the database file's lock and identity check
//! (`file.rs`), and
//! the result codes that are storage faults (`faults.rs`).
//!
//! [`AgentLocks`]: crate::store::AgentLocks
//! [`AlertStore`]: crate::store::AlertStore
//! [`AgentStore`]: crate::store::AgentStore
//! [`JobStore`]: crate::store::JobStore
//! [`QueueStore`]: crate::store::QueueStore
//! [`RecurringStore`]: crate::store::RecurringStore
//! [`StatsStore`]: crate::store::StatsStore
//! [`TaskStore`]: crate::store::TaskStore
//! [`WorkflowStore`]: crate::store::WorkflowStore

mod agents;
mod alerts;
mod audit;
mod batch;
mod continuations;
mod faults;
mod file;
mod jobs;
mod journal;
mod leader;
mod links;
mod locks;
mod logs;
mod queues;
mod recurring;
mod search;
mod stats;
mod tasks;
mod tokens;
mod workflows;
mod writer;

use super::rows;
use crate::store::changes::Changed;
use crate::store::{Durability, Error, Result};
use file::{FileCheck, ProcessLock};
use search::Indexer;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{ConnectOptions, SqliteConnection, SqlitePool};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use writer::{BoxFuture, Command, Sink, in_transaction, with_changes};

pub(crate) use faults::fault_of;

/// Connections kept for reads.
const READERS: u32 = 4;
/// How often the database file is looked at, writes or not.
const FILE_CHECK_EVERY: Duration = Duration::from_secs(1);

/// The SQLite job store. Cheap to share behind an `Arc`.
#[derive(Debug)]
pub struct SqliteStore {
    writer: mpsc::UnboundedSender<Command>,
    readers: SqlitePool,
    /// Whether the file at the database's path is still the one opened: writes are
    /// refused while it is not, and checked against it before they are acknowledged.
    file: Arc<FileCheck>,
    /// Where committed changes go.
    sink: Sink,
    /// Who leads, until when (see [`crate::store::Leadership`]).
    lead: std::sync::Mutex<Option<(String, crate::model::Millis)>>,
    /// While set, the writer indexes nothing for search.
    #[cfg(test)]
    search_held: Arc<AtomicBool>,
    /// Keeps other processes off the database while this store lives.
    _lock: ProcessLock,
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path` and migrates it.
    ///
    /// # Errors
    /// [`Error::InUse`] when another process has it open; else the file cannot be
    /// opened or the schema cannot be migrated.
    pub async fn open(path: &Path, durability: Durability) -> Result<SqliteStore> {
        let lock = ProcessLock::take(path)?;
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(match durability {
                Durability::Normal => SqliteSynchronous::Normal,
                Durability::Full => SqliteSynchronous::Full,
            })
            .busy_timeout(Duration::from_secs(10))
            .pragma("temp_store", "memory")
            .pragma("recursive_triggers", "ON");
        let mut conn = options.connect().await?;
        sqlx::migrate!("../migrations/sqlite")
            .run(&mut conn)
            .await?;
        let readers = SqlitePoolOptions::new()
            .max_connections(READERS)
            .connect_with(options.read_only(true))
            .await?;
        let file = Arc::new(FileCheck::new(path)?);
        tokio::spawn(watch_file(Arc::downgrade(&file)));
        let (tx, rx) = mpsc::unbounded_channel();
        let sink = Sink::default();
        let search_held = Arc::new(AtomicBool::new(false));
        let search = Indexer::new(search_held.clone());
        tokio::spawn(writer::run(conn, rx, file.clone(), sink.clone(), search));
        Ok(SqliteStore {
            writer: tx,
            #[cfg(test)]
            search_held,
            readers,
            file,
            sink,
            lead: std::sync::Mutex::default(),
            _lock: lock,
        })
    }

    /// Holds (or lets go of) the writer's indexing for search, so that tests can search
    /// jobs that wait to be indexed.
    #[cfg(test)]
    pub(crate) fn hold_search_index(&self, held: bool) {
        self.search_held
            .store(held, std::sync::atomic::Ordering::Relaxed);
    }

    /// Queues a command for the writer; refused while the database file is not the
    /// one opened.
    fn send(&self, command: Command) -> Result<()> {
        if !matches!(command, Command::Close(_)) {
            self.file.known()?;
        }
        self.writer.send(command).map_err(|_| Error::Closed)
    }

    /// Queues a command built around a reply channel and awaits the reply.
    async fn request<T>(&self, build: impl FnOnce(writer::Reply<T>) -> Command) -> Result<T> {
        let (tx, rx) = oneshot::channel();
        self.send(build(tx))?;
        rx.await.map_err(|_| Error::Closed)?
    }

    /// Runs `op` like [`SqliteStore::exec`], and reads back and reports what it changed.
    async fn exec_changing<T, F>(&self, op: F) -> Result<Changed<T>>
    where
        T: Send + 'static,
        F: for<'t> FnOnce(&'t mut SqliteConnection) -> BoxFuture<'t, Result<T>> + Send + 'static,
    {
        self.exec_reporting(move |conn| Box::pin(with_changes(conn, op)))
            .await
    }

    /// Runs `op`, which says what it changed, like [`SqliteStore::exec`]; once it
    /// committed, reports its changes to the sink before returning.
    async fn exec_reporting<T, F>(&self, op: F) -> Result<Changed<T>>
    where
        T: Send + 'static,
        F: for<'t> FnOnce(&'t mut SqliteConnection) -> BoxFuture<'t, Result<Changed<T>>>
            + Send
            + 'static,
    {
        let file = self.file.clone();
        let sink = self.sink.clone();
        self.request(move |reply| {
            Command::Exec(Box::new(move |conn| {
                Box::pin(async move {
                    let done = in_transaction(conn, op).await.map_err(|e| file.refine(e));
                    let done = done.and_then(|changed| file.check().map(|()| changed));
                    if let Ok(changed) = &done {
                        writer::report(&sink, &changed.changes);
                    }
                    let _ = reply.send(done);
                })
            }))
        })
        .await
    }

    /// Runs `op` on the writer's connection in a transaction of its own.
    async fn exec<T, F>(&self, op: F) -> Result<T>
    where
        T: Send + 'static,
        F: for<'t> FnOnce(&'t mut SqliteConnection) -> BoxFuture<'t, Result<T>> + Send + 'static,
    {
        let file = self.file.clone();
        self.request(move |reply| {
            Command::Exec(Box::new(move |conn| {
                Box::pin(async move {
                    let done = in_transaction(conn, op).await.map_err(|e| file.refine(e));
                    let _ = reply.send(done.and_then(|value| file.check().map(|()| value)));
                })
            }))
        })
        .await
    }
}

/// Looks at the database file every [`FILE_CHECK_EVERY`] until the store is gone.
async fn watch_file(file: std::sync::Weak<FileCheck>) {
    let mut every = tokio::time::interval(FILE_CHECK_EVERY);
    loop {
        every.tick().await;
        let Some(file) = file.upgrade() else { return };
        let _ = file.check();
    }
}
