//! Searching jobs by text through the trigram index `job_search` (see migration 0014).
//!
//! Writes to jobs only note the job in `job_search_pending`; the writer indexes the noted
//! jobs a chunk at a time while it has nothing else to do ([`index_chunk`]). A search for
//! three characters or more that is rare enough ([`use_index`]) takes the index's matches
//! plus every job still noted as its candidates; either way each job is checked against its
//! current text, so a search finds exactly what a scan of every job would ([`push_text`]).

use sqlx::{QueryBuilder, Sqlite, SqliteConnection, SqlitePool};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Most jobs indexed per transaction: small enough that a write arriving meanwhile waits
/// only a few milliseconds.
pub(super) const CHUNK: u32 = 250;

/// How long the writer must have had no command before it indexes: under a steady stream
/// of jobs, indexing waits for a lull instead of taking the writer's time from them.
const QUIET: Duration = Duration::from_millis(50);

/// The trigram index matches nothing shorter.
const INDEXED_CHARS: usize = 3;

/// Most candidates a page is read through: past them, matches are dense enough that
/// reading jobs newest first fills a page sooner than sorting every candidate.
pub(super) const PAGE_CANDIDATES: u32 = 5_000;

/// Most candidates a count is read through: past them, reading every job is as fast.
pub(super) const COUNT_CANDIDATES: u32 = 50_000;

/// The noted jobs of the next chunk, oldest first.
const NEXT_CHUNK: &str = "SELECT job_rowid FROM job_search_pending ORDER BY job_rowid LIMIT ?1";

/// Whether a search for `text` should read the index: it is long enough, and the index's
/// matches plus the jobs waiting to be indexed are fewer than `most`.
pub(super) async fn use_index(readers: &SqlitePool, text: &str, most: u32) -> sqlx::Result<bool> {
    if text.chars().count() < INDEXED_CHARS {
        return Ok(false);
    }
    let candidates: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM (SELECT rowid FROM job_search WHERE job_search MATCH ?1 \
         UNION ALL SELECT job_rowid FROM job_search_pending LIMIT ?2)",
    )
    .bind(phrase(text))
    .bind(most)
    .fetch_one(readers)
    .await?;
    Ok(candidates < i64::from(most))
}

/// Adds the condition that a job's id starts with `text` or its args or error message
/// contain it (case-insensitive for ASCII; `%` and `_` stand for themselves); `by_index`,
/// only among the index's candidates.
pub(super) fn push_text(query: &mut QueryBuilder<'_, Sqlite>, text: &str, by_index: bool) {
    if by_index {
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

/// The writer's side of the index: whether jobs may be waiting to be indexed, and when
/// indexing them stops competing with writes.
#[derive(Debug)]
pub(super) struct Indexer {
    /// Set by every write, cleared once a chunk comes back short.
    due: bool,
    /// When the writer's last command came.
    written_at: Instant,
    /// While set, nothing is indexed (tests search a backlog with it).
    held: Arc<AtomicBool>,
}

impl Indexer {
    /// An indexer that looks for a backlog at once (a migration may have left one), and
    /// does nothing while `held` is set.
    pub(super) fn new(held: Arc<AtomicBool>) -> Indexer {
        Indexer {
            due: true,
            written_at: Instant::now(),
            held,
        }
    }

    /// Notes that writes happened, which may have noted jobs.
    pub(super) fn written(&mut self) {
        self.due = true;
        self.written_at = Instant::now();
    }

    /// When the next chunk should be indexed, if one may be waiting: once the writer has
    /// been quiet long enough.
    pub(super) fn ready_at(&self) -> Option<Instant> {
        let due = self.due && !self.held.load(Ordering::Relaxed);
        due.then(|| self.written_at + QUIET)
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
