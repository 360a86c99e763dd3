//! The rollup on SQLite: the `stats_rollup` table, one row per resolution, bucket and
//! key. A group commit counts the runs it records in [`Samples`]; the writer keeps them
//! ([`Pending`]) and a later group commit adds them with one upsert inside its
//! transaction; histograms are added bin by bin in SQL.

use super::SqliteStore;
use super::writer::{Command, in_transaction};
use crate::model::Millis;
use crate::model::stats::{Resolution, RollupRow};
use crate::store::Result;
use crate::store::stats::{Samples, StatsStore, StoredRollup, kept_for};
use async_trait::async_trait;
use sqlx::SqliteConnection;
use std::time::{Duration, Instant};

/// How long counted runs may wait in memory before a group commit writes them: the
/// rollup is written with the group commits, but not by every one of them, so that a
/// busy host pays for it a few times a second rather than once per commit.
const WRITE_EVERY: Duration = Duration::from_millis(250);

/// The runs the writer counted and has not written yet. A group commit writes them
/// once they are [`WRITE_EVERY`] old; so do an idle writer, a read of the rollup and the
/// store's close. A host that dies loses at most that much of its statistics, never a
/// job.
#[derive(Debug, Default)]
pub(super) struct Pending {
    samples: Samples,
    /// When the oldest of them was counted.
    since: Option<Instant>,
}

impl Pending {
    /// Keeps `samples` to write later.
    pub(super) fn add(&mut self, samples: Samples) {
        if samples.is_empty() {
            return;
        }
        self.samples.absorb(samples);
        self.since.get_or_insert_with(Instant::now);
    }

    /// When they are due to be written, if any wait.
    pub(super) fn deadline(&self) -> Option<Instant> {
        self.since.map(|since| since + WRITE_EVERY)
    }

    /// The rows a group commit should write now (JSON for [`UPSERT`]): `None` while
    /// nothing waits or nothing is due.
    pub(super) fn due(&self) -> Option<String> {
        let due = self.deadline().is_some_and(|at| at <= Instant::now());
        due.then(|| self.samples.rows())
    }

    /// Forgets what a committed group wrote.
    pub(super) fn written(&mut self) {
        *self = Pending::default();
    }

    /// Writes what waits, in a transaction of its own; on failure it keeps waiting.
    pub(super) async fn write_now(&mut self, conn: &mut SqliteConnection) -> Result<()> {
        if self.since.is_none() {
            return Ok(());
        }
        let rows = self.samples.rows();
        in_transaction(conn, move |tx| {
            Box::pin(async move {
                sqlx::query(&upsert("?1"))
                    .bind(rows)
                    .execute(&mut *tx)
                    .await?;
                Ok(())
            })
        })
        .await?;
        self.written();
        Ok(())
    }
}

/// The statement that adds the rows in the JSON array `param` to the rollup, adding
/// histograms bin by bin.
pub(super) fn upsert(param: &str) -> String {
    format!(
        "INSERT INTO stats_rollup \
         (resolution, bucket, plugin, queue, agent, succeeded, failed, run_ms, pickup_ms) \
         SELECT value->>'res', value->>'bucket', value->>'plugin', value->>'queue', \
                value->>'agent', value->>'ok', value->>'failed', value->>'run', \
                value->>'pickup' \
         FROM json_each({param}) WHERE true \
         ON CONFLICT DO UPDATE SET succeeded = succeeded + excluded.succeeded, \
            failed = failed + excluded.failed, \
            run_ms = {}, pickup_ms = {}",
        added("run_ms"),
        added("pickup_ms")
    )
}

/// SQL for the stored histogram `column` with the new row's added, bin by bin.
fn added(column: &str) -> String {
    format!(
        "(SELECT json_group_object(key, n) FROM (SELECT key, sum(value) AS n FROM \
         (SELECT key, value FROM json_each(stats_rollup.{column}) \
          UNION ALL SELECT key, value FROM json_each(excluded.{column})) GROUP BY key))"
    )
}

#[async_trait]
impl StatsStore for SqliteStore {
    async fn rollup(
        &self,
        resolution: Resolution,
        from: Millis,
        to: Millis,
    ) -> Result<Vec<RollupRow>> {
        // What the writer counted but has not written yet goes first.
        self.request(Command::WriteStats).await?;
        let rows: Vec<StoredRollup> = sqlx::query_as(
            "SELECT bucket, plugin, queue, agent, succeeded, failed, run_ms, pickup_ms \
             FROM stats_rollup WHERE resolution = ?1 AND bucket >= ?2 AND bucket < ?3",
        )
        .bind(resolution.as_str())
        .bind(from)
        .bind(to)
        .fetch_all(&self.readers)
        .await?;
        rows.into_iter().map(RollupRow::try_from).collect()
    }

    async fn prune_rollup(&self, now: Millis) -> Result<u64> {
        self.exec(move |conn| {
            Box::pin(async move {
                let mut removed = 0;
                for resolution in Resolution::ALL {
                    let done = sqlx::query(
                        "DELETE FROM stats_rollup WHERE resolution = ?1 AND bucket < ?2",
                    )
                    .bind(resolution.as_str())
                    .bind(now.saturating_sub(kept_for(resolution)))
                    .execute(&mut *conn)
                    .await?;
                    removed += done.rows_affected();
                }
                Ok(removed)
            })
        })
        .await
    }
}
