//! [`JobStore`] on PostgreSQL, which several hosts share.
//!
//! Every host writes. Each write is one transaction on a pooled connection, its rules kept
//! by constraints, triggers and single statements (never a read and then a write that
//! trusts it), so that the writes of several hosts interleave safely. Claims take their
//! jobs with `FOR UPDATE SKIP LOCKED`. Progress, log lines, completions and failures go
//! through one writer task per host, which keeps them in order and group-commits them
//! (see `writer.rs`).
//!
//! Each area of the store is an `impl` of its trait in a file of its own, as for SQLite
//! (where both backends run the same SQL, that file invokes the one implementation the
//! area's module in `store/` holds):
//! `jobs.rs`, `queues.rs`, `recurring.rs`, `workflows.rs`, `agents.rs`, `locks.rs`,
//! `tasks.rs`, `tokens.rs`, `audit.rs`, `alerts.rs` and `stats.rs`. Beneath them: what a
//! write changed (`journal.rs`), parent links and batches (`continuations.rs`), a job's
//! log (`logs.rs`) and links (`links.rs`).
//!
//! [`JobStore`]: crate::store::JobStore

mod agents;
mod alerts;
mod audit;
mod claims;
mod continuations;
mod jobs;
mod journal;
mod leader;
mod links;
mod locks;
mod logs;
mod notices;
mod queues;
mod recurring;
mod stats;
mod tasks;
mod tokens;
mod workflows;
mod writer;

use crate::store::changes::{Changed, Sink, report};
use crate::store::{Error, Result};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Connection, PgConnection, PgPool};
use std::future::Future;
use std::pin::Pin;

use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;
use writer::Command;

/// Connections each host keeps to the database.
const CONNECTIONS: u32 = 8;

/// A boxed future borrowing a connection.
pub(super) type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The PostgreSQL job store. Cheap to share behind an `Arc`.
#[derive(Debug)]
pub struct PostgresStore {
    pool: PgPool,
    /// The ordered writes (progress, log lines, completions, failures).
    writer: mpsc::UnboundedSender<Command>,
    /// Where committed changes go.
    sink: Sink,
    /// This store's own id on the notices it sends, so it can tell other hosts' apart.
    origin: Uuid,
    /// Stops listening for other hosts' notices.
    closed: CancellationToken,
}

impl PostgresStore {
    /// Connects to the database at `url` (`postgres://…`) and migrates it.
    ///
    /// # Errors
    /// The database cannot be reached, or its schema cannot be migrated.
    pub async fn open(url: &str) -> Result<PostgresStore> {
        let options = url.parse::<PgConnectOptions>()?;
        // One connection first: a pool that cannot connect says only that it timed out.
        PgConnection::connect_with(&options).await?.close().await?;
        let pool = PgPoolOptions::new()
            .max_connections(CONNECTIONS)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options)
            .await?;
        sqlx::migrate!("../migrations/postgres").run(&pool).await?;
        // Listening before the store is handed out, so it misses no change made after.
        let listener = notices::connect(&pool).await?;
        let (tx, rx) = mpsc::unbounded_channel();
        let sink = Sink::default();
        let origin = Uuid::now_v7();
        let closed = CancellationToken::new();
        tokio::spawn(writer::run(pool.clone(), rx, sink.clone(), origin));
        let listening =
            notices::listen(listener, pool.clone(), origin, sink.clone(), closed.clone());
        tokio::spawn(listening);
        Ok(PostgresStore {
            pool,
            writer: tx,
            sink,
            origin,
            closed,
        })
    }

    /// Queues a command built around a reply channel for the writer, and awaits the reply.
    async fn request<T>(&self, build: impl FnOnce(writer::Reply<T>) -> Command) -> Result<T> {
        let (tx, rx) = oneshot::channel();
        self.writer.send(build(tx)).map_err(|_| Error::Closed)?;
        rx.await.map_err(|_| Error::Closed)?
    }

    /// Runs `op` in a transaction of its own, committing when it returns `Ok`.
    async fn exec<T, F>(&self, op: F) -> Result<T>
    where
        T: Send + 'static,
        F: for<'t> FnOnce(&'t mut PgConnection) -> BoxFuture<'t, Result<T>> + Send + 'static,
    {
        let mut conn = self.pool.acquire().await?;
        let mut tx = conn.begin().await?;
        match op(&mut tx).await {
            Ok(value) => {
                tx.commit().await?;
                Ok(value)
            }
            Err(e) => {
                // At once: a transaction merely dropped keeps its row locks until its
                // connection is next used, and claims would skip those rows meanwhile.
                tx.rollback().await?;
                Err(e)
            }
        }
    }

    /// Runs `op` like [`PostgresStore::exec`], reads back what it changed, and reports
    /// that once committed.
    async fn exec_changing<T, F>(&self, op: F) -> Result<Changed<T>>
    where
        T: Send + 'static,
        F: for<'t> FnOnce(&'t mut PgConnection) -> BoxFuture<'t, Result<T>> + Send + 'static,
    {
        self.exec_reporting(move |conn| {
            Box::pin(async move {
                let value = op(conn).await?;
                let changes = journal::mine(conn).await?;
                Ok(Changed { value, changes })
            })
        })
        .await
    }

    /// Runs `op`, which says what it changed, like [`PostgresStore::exec`], and tells the
    /// other hosts; once it committed, reports its changes before returning.
    async fn exec_reporting<T, F>(&self, op: F) -> Result<Changed<T>>
    where
        T: Send + 'static,
        F: for<'t> FnOnce(&'t mut PgConnection) -> BoxFuture<'t, Result<Changed<T>>>
            + Send
            + 'static,
    {
        let origin = self.origin;
        let changed = self
            .exec(move |conn| {
                Box::pin(async move {
                    let changed = op(conn).await?;
                    notices::send(conn, origin, &changed.changes).await?;
                    Ok(changed)
                })
            })
            .await?;
        report(&self.sink, &changed.changes);
        Ok(changed)
    }
}
