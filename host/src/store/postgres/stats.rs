//! The rollup on PostgreSQL: the `stats_rollup` table, one row per resolution, bucket and
//! key. Each host counts the runs its claims and group commits record in [`Samples`]; its
//! writer adds them with [`add`] a few times a second, in a transaction of its own, and
//! before a read of the rollup through it. Hosts add to the same rows at once: one upsert
//! adds counts and histograms to whatever the row holds when it gets the row's lock.

use super::PostgresStore;
use super::writer::Command;
use crate::model::Millis;
use crate::model::stats::{Resolution, RollupRow};
use crate::store::Result;
use crate::store::stats::{Samples, StatsStore, StoredRollup, kept_for};
use async_trait::async_trait;
use sqlx::PgConnection;

/// Adds `samples` to the rollup, in the caller's transaction: one upsert, adding counts
/// and histograms (bin by bin) to the stored rows. Rows are written in key order, so two
/// hosts adding to the same rows wait for each other rather than deadlock.
pub(super) async fn add(conn: &mut PgConnection, samples: &Samples) -> Result<()> {
    if samples.is_empty() {
        return Ok(());
    }
    sqlx::query(&format!(
        "INSERT INTO stats_rollup \
         (resolution, bucket, plugin, queue, agent, succeeded, failed, run_ms, pickup_ms) \
         SELECT res, bucket, plugin, queue, agent, ok, failed, run, pickup \
         FROM jsonb_to_recordset($1::jsonb) AS r(res text, bucket bigint, plugin text, \
             queue text, agent text, ok bigint, failed bigint, run text, pickup text) \
         ORDER BY res, bucket, plugin, queue, agent \
         ON CONFLICT (resolution, bucket, plugin, queue, agent) DO UPDATE SET \
            succeeded = stats_rollup.succeeded + excluded.succeeded, \
            failed = stats_rollup.failed + excluded.failed, \
            run_ms = {}, pickup_ms = {}",
        added("run_ms"),
        added("pickup_ms")
    ))
    .bind(samples.rows())
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// SQL for the stored histogram `column` with the new row's added, bin by bin.
fn added(column: &str) -> String {
    format!(
        "(SELECT coalesce(jsonb_object_agg(key, n), '{{}}'::jsonb)::text FROM \
         (SELECT key, sum(value::bigint) AS n FROM \
          (SELECT key, value FROM jsonb_each_text(stats_rollup.{column}::jsonb) \
           UNION ALL SELECT key, value FROM jsonb_each_text(excluded.{column}::jsonb)) AS bins \
          GROUP BY key) AS sums)"
    )
}

#[async_trait]
impl StatsStore for PostgresStore {
    async fn rollup(
        &self,
        resolution: Resolution,
        from: Millis,
        to: Millis,
    ) -> Result<Vec<RollupRow>> {
        self.request(Command::WriteStats).await?;
        let rows: Vec<StoredRollup> = sqlx::query_as(
            "SELECT bucket, plugin, queue, agent, succeeded, failed, run_ms, pickup_ms \
             FROM stats_rollup WHERE resolution = $1 AND bucket >= $2 AND bucket < $3",
        )
        .bind(resolution.as_str())
        .bind(from)
        .bind(to)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(RollupRow::try_from).collect()
    }

    async fn prune_rollup(&self, now: Millis) -> Result<u64> {
        self.exec(move |conn| {
            Box::pin(async move {
                let mut removed = 0;
                for resolution in Resolution::ALL {
                    let done = sqlx::query(
                        "DELETE FROM stats_rollup WHERE resolution = $1 AND bucket < $2",
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
