//! Searching jobs by text through the trigram index `job_search` (see migration 0014).
//!
//! Writes to jobs only note the job in `job_search_pending`; the writer indexes the noted
//! jobs a chunk at a time while it has nothing else to do ([`index_chunk`]). A search for
//! three characters or more takes the index's matches plus every job still noted as its
//! candidates, then checks each against the job's current text, so it finds exactly what a
//! scan of every job would ([`push_text`]).

use sqlx::{QueryBuilder, Sqlite, SqliteConnection, SqlitePool};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// Most jobs indexed per transaction: small enough that a write arriving meanwhile waits
/// only a few milliseconds.
pub(super) const CHUNK: u32 = 500;

/// The trigram index matches nothing shorter.
const INDEXED_CHARS: usize = 3;

/// The noted jobs of the next chunk, oldest first.
const NEXT_CHUNK: &str = "SELECT job_rowid FROM job_search_pending ORDER BY job_rowid LIMIT ?1";

/// Whether a search for `text` reads the index (else it scans every job).
pub(super) fn indexed(text: &str) -> bool {
    text.chars().count() >= INDEXED_CHARS
}

/// Adds the condition that a job's id starts with `text` or its args or error message
/// contain it (case-insensitive for ASCII; `%` and `_` stand for themselves).
pub(super) fn push_text(query: &mut QueryBuilder<'_, Sqlite>, text: &str) {
    if indexed(text) {
        query
            .push(" AND jobs.rowid IN (SELECT rowid FROM job_search WHERE job_search MATCH ")
            .push_bind(phrase(text))
            .push(" UNION ALL SELECT job_rowid FROM job_search_pending)");
    }
    let escaped = text
        .replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_");
    query
        .push(" AND (id LIKE ")
        .push_bind(format!("{escaped}%"))
        .push(" ESCAPE '\\' OR args LIKE ")
        .push_bind(format!("%{escaped}%"))
        .push(" ESCAPE '\\' OR error_message LIKE ")
        .push_bind(format!("%{escaped}%"))
        .push(" ESCAPE '\\')");
}

/// `text` as one FTS5 phrase, so that no character of it is query syntax.
fn phrase(text: &str) -> String {
    format!("\"{}\"", text.replace('"', "\"\""))
}

/// Indexes the next [`CHUNK`] noted jobs in one transaction (replacing their entries);
/// returns how many it indexed, fewer than [`CHUNK`] once none are left.
pub(super) async fn index_chunk(conn: &mut SqliteConnection) -> sqlx::Result<u64> {
    use sqlx::Connection;
    let mut tx = conn.begin().await?;
    for sql in [
        format!("DELETE FROM job_search WHERE rowid IN ({NEXT_CHUNK})"),
        format!(
            "INSERT INTO job_search (rowid, id, args, error) \
             SELECT rowid, id, args, error_message FROM jobs WHERE rowid IN ({NEXT_CHUNK})"
        ),
    ] {
        sqlx::query(&sql).bind(CHUNK).execute(&mut *tx).await?;
    }
    let done = sqlx::query(&format!(
        "DELETE FROM job_search_pending WHERE job_rowid IN ({NEXT_CHUNK})"
    ))
    .bind(CHUNK)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(done.rows_affected())
}

/// How many jobs wait to be indexed.
pub(super) async fn backlog(readers: &SqlitePool) -> sqlx::Result<u64> {
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM job_search_pending")
        .fetch_one(readers)
        .await?;
    Ok(u64::try_from(count).unwrap_or(0))
}

/// The writer's side of the index: whether jobs may be waiting to be indexed.
#[derive(Debug)]
pub(super) struct Indexer {
    /// Set by every write, cleared once a chunk comes back short.
    due: bool,
    /// While set, nothing is indexed (tests search a backlog with it).
    held: Arc<AtomicBool>,
}

impl Indexer {
    /// An indexer that looks for a backlog at once (a migration may have left one), and
    /// does nothing while `held` is set.
    pub(super) fn new(held: Arc<AtomicBool>) -> Indexer {
        Indexer { due: true, held }
    }

    /// Notes that writes happened, which may have noted jobs.
    pub(super) fn written(&mut self) {
        self.due = true;
    }

    /// Whether a chunk may be waiting to be indexed.
    pub(super) fn due(&self) -> bool {
        self.due && !self.held.load(Ordering::Relaxed)
    }

    /// Indexes the next chunk; a failure is logged, and indexing resumes after the next
    /// write.
    pub(super) async fn step(&mut self, conn: &mut SqliteConnection) {
        match index_chunk(conn).await {
            Ok(indexed) => self.due = indexed >= u64::from(CHUNK),
            Err(e) => {
                tracing::warn!(error = %e, "indexing jobs for search failed; will retry");
                self.due = false;
            }
        }
    }
}
