//! The rollup behind the analytics (see [`crate::model::stats`]): every store counts
//! each run as it records it, in the same transaction, once per resolution; this is how
//! it is read back and pruned.

use super::Result;
use super::changes::JobChange;
use super::rows::corrupt;
use crate::model::stats::{Histogram, Resolution, Rollup, RollupKey, RollupRow};
use crate::model::{ErrorKind, Job, JobState, Millis};
use async_trait::async_trait;
use serde_json::{Value, json};
use std::collections::HashMap;

/// How long the rollup keeps its buckets, by resolution: minutes for a week, hours for
/// 90 days, days for ten years.
pub fn kept_for(resolution: Resolution) -> Millis {
    const DAY: Millis = 86_400_000;
    match resolution {
        Resolution::Minute => 7 * DAY,
        Resolution::Hour => 90 * DAY,
        Resolution::Day => 3650 * DAY,
    }
}

/// Reading and pruning the rollup; every [`super::JobStore`] is one.
#[async_trait]
pub trait StatsStore {
    /// The rows of `resolution` whose bucket starts in `[from, to)`.
    async fn rollup(
        &self,
        resolution: Resolution,
        from: Millis,
        to: Millis,
    ) -> Result<Vec<RollupRow>>;

    /// Removes the buckets older than each resolution keeps (see [`kept_for`]) as of
    /// `now`; returns how many rows went.
    async fn prune_rollup(&self, now: Millis) -> Result<u64>;
}

/// What one group commit adds to the rollup: each run counted in its bucket of every
/// resolution, by key.
#[derive(Debug, Default)]
pub(crate) struct Samples(HashMap<RollupKey, Vec<(Resolution, Millis, Rollup)>>);

impl Samples {
    /// Counts the run `change` ended (a job leaving `processing`): succeeded, or failed
    /// (retried or for good) after `wall_ms`, with error `kind`. A cancelled run is not
    /// counted, nor the run time of one whose host died (unknown).
    pub(crate) fn ended(&mut self, change: &JobChange, wall_ms: Option<i64>, kind: Option<&str>) {
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
    pub(crate) fn started(&mut self, job: &Job) {
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

    /// Counts with `count` in `key`'s bucket of every resolution at `at`.
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
    pub(crate) fn absorb(&mut self, other: Samples) {
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

    /// Whether nothing was counted.
    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The rows to add, as a JSON array of objects: `res`, `bucket`, `plugin`, `queue`,
    /// `agent` (`''` for none), `ok`, `failed`, and the histograms `run` and `pickup` as
    /// JSON text.
    pub(crate) fn rows(&self) -> String {
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

/// A `stats_rollup` row as reads select it.
#[derive(sqlx::FromRow)]
pub(crate) struct StoredRollup {
    bucket: Millis,
    plugin: String,
    queue: String,
    agent: String,
    succeeded: i64,
    failed: i64,
    run_ms: String,
    pickup_ms: String,
}

impl TryFrom<StoredRollup> for RollupRow {
    type Error = crate::store::Error;

    fn try_from(row: StoredRollup) -> Result<RollupRow> {
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
