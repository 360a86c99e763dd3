//! The rollup on SQLite: the `stats_rollup` table, one row per resolution, bucket and
//! key. A group commit counts the runs it records in [`Samples`]; the writer keeps them
//! ([`Pending`]) and a later group commit adds them with one upsert inside its
//! transaction; histograms are added bin by bin in SQL.

use super::SqliteStore;
use super::rows::corrupt;
use super::writer::{Command, in_transaction};
use crate::model::stats::{Histogram, Resolution, Rollup, RollupKey, RollupRow};
use crate::model::{ErrorKind, Job, JobState, Millis};
use crate::store::Result;
use crate::store::changes::JobChange;
use crate::store::stats::{StatsStore, kept_for};
use async_trait::async_trait;
use serde_json::{Value, json};
use sqlx::SqliteConnection;
use std::collections::HashMap;
use std::time::{Duration, Instant};

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

    /// Adds `other`'s counts to these.
    fn absorb(&mut self, other: Samples) {
        for (key, buckets) in other.0 {
            let mine = self.0.entry(key).or_default();
            for (resolution, bucket, rollup) in buckets {
                match mine
                    .iter_mut()
                    .find(|(r, b, _)| (*r, *b) == (resolution, bucket))
                {
                    Some((_, _, kept)) => kept.merge(&rollup),
                    None => mine.push((resolution, bucket, rollup)),
                }
            }
        }
    }

    /// The rows to add, as the JSON array [`UPSERT`] reads.
    fn rows(&self) -> String {
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
        Value::Array(rows).to_string()
    }
}

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
        if samples.0.is_empty() {
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
        // What the writer counted but has not written yet goes first.
        self.request(Command::WriteStats).await?;
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
