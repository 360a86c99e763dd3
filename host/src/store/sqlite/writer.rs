//! The single writer: every write goes through one connection, and whatever writes are
//! waiting are applied together in one transaction (a group commit).
//!
//! SQLite allows one writer at a time, so one connection loses nothing, avoids
//! `SQLITE_BUSY`, and turns many small transactions into a few large ones. Callers queue
//! a [`Command`] and, where they need to, await its reply, which is sent only after the
//! transaction that carried it committed.

use super::batch;
use super::file::FileCheck;
use super::journal;
use super::search::Indexer;
use super::stats::Pending;
use crate::model::{JobId, LogLine, Millis, Progress};
use crate::store::changes::{Changed, Changes};
pub(super) use crate::store::changes::{Sink, listening, report};
use crate::store::{ClaimParams, Claimed, Completion, Error, Failure, LeaseId, NewJob, Result};
use sqlx::{Connection, SqliteConnection};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::{mpsc, oneshot};

/// Most commands applied in one transaction.
const MAX_BATCH: usize = 1024;

/// Where a command's outcome goes.
pub(super) type Reply<T> = oneshot::Sender<Result<T>>;

/// A boxed future borrowing the writer's connection.
pub(super) type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A one-off operation run on the writer's connection, in its own transaction; it sends
/// its own reply.
pub(super) type Op = Box<dyn for<'c> FnOnce(&'c mut SqliteConnection) -> BoxFuture<'c, ()> + Send>;

/// A write queued for the writer.
pub(super) enum Command {
    Enqueue {
        jobs: Vec<NewJob>,
        now: Millis,
        reply: Reply<Changes>,
    },
    Claim {
        params: ClaimParams,
        now: Millis,
        reply: Reply<Vec<Claimed>>,
    },
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
    Exec(Op),
    /// Write the runs counted for the rollup now (before a read of it).
    WriteStats(Reply<()>),
    Close(oneshot::Sender<()>),
}

/// Runs the writer until every sender is gone or a `Close` arrives. A group is
/// acknowledged only while `file` is still the database's file. Once no command has come
/// for a while, it indexes jobs for search, a chunk at a time (see [`Indexer`]).
pub(super) async fn run(
    mut conn: SqliteConnection,
    mut rx: mpsc::UnboundedReceiver<Command>,
    file: Arc<FileCheck>,
    sink: Sink,
    mut search: Indexer,
) {
    let mut pending = Vec::with_capacity(MAX_BATCH);
    // Writes a storage fault held back, to go with the next group.
    let mut carried = batch::Group::default();
    // Runs counted for the rollup, written with a later group.
    let mut stats = Pending::default();
    loop {
        let index_at = search.ready_at();
        if index_at.is_some_and(|at| at <= Instant::now()) && rx.is_empty() && !rx.is_closed() {
            if stats.deadline().is_some_and(|due| due <= Instant::now()) {
                write_stats(&mut stats, &mut conn, &file).await;
            }
            search.step(&mut conn).await;
            continue;
        }
        let wake = [stats.deadline(), index_at].into_iter().flatten().min();
        let received = match wake {
            None => rx.recv_many(&mut pending, MAX_BATCH).await,
            Some(at) => {
                let next = rx.recv_many(&mut pending, MAX_BATCH);
                match tokio::time::timeout_at(at.into(), next).await {
                    Ok(received) => received,
                    Err(_idle) => {
                        if stats.deadline().is_some_and(|due| due <= Instant::now()) {
                            write_stats(&mut stats, &mut conn, &file).await;
                        }
                        continue;
                    }
                }
            }
        };
        if received == 0 {
            write_stats(&mut stats, &mut conn, &file).await;
            return;
        }
        let mut group = carried;
        for command in pending.drain(..) {
            match command {
                Command::Exec(op) => {
                    group = std::mem::take(&mut group)
                        .flush(&mut conn, &file, &sink, &mut stats)
                        .await;
                    op(&mut conn).await;
                }
                Command::WriteStats(reply) => {
                    group = std::mem::take(&mut group)
                        .flush(&mut conn, &file, &sink, &mut stats)
                        .await;
                    let written = stats.write_now(&mut conn).await;
                    let _ = reply.send(written.map_err(|e| file.refine(e)));
                }
                Command::Close(done) => {
                    std::mem::take(&mut group)
                        .flush(&mut conn, &file, &sink, &mut stats)
                        .await;
                    write_stats(&mut stats, &mut conn, &file).await;
                    if let Err(e) = conn.close().await {
                        tracing::warn!(error = %e, "closing the job database failed");
                    }
                    let _ = done.send(());
                    return;
                }
                other => group.add(other),
            }
        }
        carried = group.flush(&mut conn, &file, &sink, &mut stats).await;
        search.written();
    }
}

/// Writes the runs counted for the rollup; a failure is logged, and they wait for the
/// next try.
async fn write_stats(stats: &mut Pending, conn: &mut SqliteConnection, file: &FileCheck) {
    if let Err(e) = stats.write_now(conn).await {
        tracing::warn!(error = %file.refine(e), "writing run statistics failed; will retry");
    }
}

/// Runs `op` in a transaction of its own, committing when it returns `Ok`.
pub(super) async fn in_transaction<T, F>(conn: &mut SqliteConnection, op: F) -> Result<T>
where
    F: for<'t> FnOnce(&'t mut SqliteConnection) -> BoxFuture<'t, Result<T>>,
{
    let mut tx = conn.begin().await?;
    let value = op(&mut tx).await?;
    tx.commit().await?;
    Ok(value)
}

/// Runs `op` inside the caller's transaction and reads back what it changed.
pub(super) async fn with_changes<T, F>(conn: &mut SqliteConnection, op: F) -> Result<Changed<T>>
where
    F: for<'t> FnOnce(&'t mut SqliteConnection) -> BoxFuture<'t, Result<T>>,
{
    let mark = journal::mark(conn).await?;
    let value = op(conn).await?;
    let changes = journal::since(conn, mark).await?;
    Ok(Changed { value, changes })
}

/// Describes a failed group commit for each caller waiting on it: a storage fault as
/// that fault, anything else as [`Error::WriteFailed`].
pub(super) fn write_failed(e: &Error) -> Error {
    match e {
        Error::Unavailable { fault, detail } => Error::Unavailable {
            fault: *fault,
            detail: detail.clone(),
        },
        other => Error::WriteFailed(other.to_string()),
    }
}
