//! The rollup on SQLite: the `stats_rollup` table, one row per resolution, bucket and
//! key. A group commit gathers the runs it records in [`Samples`] and adds them with one
//! upsert, inside its transaction; histograms are added bin by bin in SQL.

use super::SqliteStore;
use super::rows::corrupt;
use crate::model::stats::{Histogram, Resolution, Rollup, RollupKey, RollupRow};
use crate::model::{ErrorKind, Job, JobState, Millis};
use crate::store::Result;
use crate::store::changes::JobChange;
use crate::store::stats::{StatsStore, kept_for};
use async_trait::async_trait;
use serde_json::{Value, json};
use sqlx::SqliteConnection;
use std::collections::HashMap;

/// What one group commit adds to the rollup: each run counted in its bucket of every
/// resolution, by key.
#[derive(Debug, Default)]
pub(super) struct Samples(HashMap<RollupKey, Vec<(Resolution, Millis, Rollup)>>);

impl Samples {
    /// Counts the run `change` ended (a job leaving `processing`): succeeded, or failed
    /// (retried or for good) after `wall_ms`, with error `kind`. A cancelled run is not
    /// counted, nor the run time of one whose host died (unknown).
    pub(super) fn ended(&mut self, change: &JobChange, wall_ms: Option<i64>, kind: Option<&str>) {
        let ok = match change.to {
            Some(JobState::Succeeded) => true,
            Some(JobState::Scheduled | JobState::Failed) => false,
            _ => return,
        };
        let known = kind != Some(ErrorKind::LeaseExpired.as_str());
        let run_ms = wall_ms
            .filter(|_| known)
            .map(|ms| u64::try_from(ms).unwrap_or(0));
        let key = RollupKey {
            plugin: change.plugin.clone(),
            queue: change.queue.clone(),
            agent: change.agent.clone(),
        };
        self.each(key, change.at, |rollup| {
            if ok {
                rollup.succeeded += 1;
            } else {
                rollup.failed += 1;
            }
            if let Some(ms) = run_ms {
                rollup.run_ms.add(ms);
            }
        });
    }

    /// Counts the run of `job` that just started, with the wait from when it was due.
    pub(super) fn started(&mut self, job: &Job) {
        let Some(started) = job.started_at else {
            return;
        };
        let due = job.run_at.max(job.created_at);
        let pickup_ms = u64::try_from(started - due).unwrap_or(0);
        let key = RollupKey {
            plugin: job.plugin.clone(),
            queue: job.queue.clone(),
            agent: job.agent_id.clone(),
        };
        self.each(key, started, |rollup| rollup.pickup_ms.add(pickup_ms));
    }

    fn each(&mut self, key: RollupKey, at: Millis, count: impl Fn(&mut Rollup)) {
        let buckets = self.0.entry(key).or_default();
        for resolution in Resolution::ALL {
            let bucket = resolution.bucket_of(at);
            let found = buckets
                .iter()
                .position(|(r, b, _)| (*r, *b) == (resolution, bucket));
            let index = found.unwrap_or_else(|| {
                buckets.push((resolution, bucket, Rollup::default()));
                buckets.len() - 1
            });
            count(&mut buckets[index].2);
        }
    }

    /// Adds the samples to the rollup, on the caller's transaction.
    pub(super) async fn write(self, conn: &mut SqliteConnection) -> Result<()> {
        if self.0.is_empty() {
            return Ok(());
        }
        let rows: Vec<Value> = self
            .0
            .iter()
            .flat_map(|(key, buckets)| {
                buckets.iter().map(move |(resolution, bucket, rollup)| {
                    json!({"res": resolution.as_str(), "bucket": bucket, "plugin": key.plugin,
                           "queue": key.queue, "agent": key.agent.as_deref().unwrap_or_default(),
                           "ok": rollup.succeeded, "failed": rollup.failed,
                           "run": rollup.run_ms.to_json(), "pickup": rollup.pickup_ms.to_json()})
                })
            })
            .collect();
        sqlx::query(&format!(
            "INSERT INTO stats_rollup \
             (resolution, bucket, plugin, queue, agent, succeeded, failed, run_ms, pickup_ms) \
             SELECT value->>'res', value->>'bucket', value->>'plugin', value->>'queue', \
                    value->>'agent', value->>'ok', value->>'failed', value->>'run', \
                    value->>'pickup' \
             FROM json_each(?1) WHERE true \
             ON CONFLICT DO UPDATE SET succeeded = succeeded + excluded.succeeded, \
                failed = failed + excluded.failed, \
                run_ms = {}, pickup_ms = {}",
            added("run_ms"),
            added("pickup_ms")
        ))
        .bind(Value::Array(rows).to_string())
        .execute(conn)
        .await?;
        Ok(())
    }
}

/// SQL for the stored histogram `column` with the new row's added, bin by bin.
fn added(column: &str) -> String {
    format!(
        "(SELECT json_group_object(key, n) FROM (SELECT key, sum(value) AS n FROM \
         (SELECT key, value FROM json_each(stats_rollup.{column}) \
          UNION ALL SELECT key, value FROM json_each(excluded.{column})) GROUP BY key))"
    )
}

/// A stored rollup row.
#[derive(sqlx::FromRow)]
struct Row {
    bucket: Millis,
    plugin: String,
    queue: String,
    agent: String,
    succeeded: i64,
    failed: i64,
    run_ms: String,
    pickup_ms: String,
}

impl TryFrom<Row> for RollupRow {
    type Error = crate::store::Error;

    fn try_from(row: Row) -> Result<RollupRow> {
        let histogram = |text: &str| Histogram::from_json(text).map_err(|e| corrupt("rollup", e));
        Ok(RollupRow {
            bucket: row.bucket,
            key: RollupKey {
                plugin: row.plugin,
                queue: row.queue,
                agent: Some(row.agent).filter(|agent| !agent.is_empty()),
            },
            rollup: Rollup {
                succeeded: u64::try_from(row.succeeded).unwrap_or(0),
                failed: u64::try_from(row.failed).unwrap_or(0),
                run_ms: histogram(&row.run_ms)?,
                pickup_ms: histogram(&row.pickup_ms)?,
            },
        })
    }
}

#[async_trait]
impl StatsStore for SqliteStore {
    async fn rollup(
        &self,
        resolution: Resolution,
        from: Millis,
        to: Millis,
    ) -> Result<Vec<RollupRow>> {
        let rows: Vec<Row> = sqlx::query_as(
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
