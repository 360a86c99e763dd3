//! Retention: finished jobs are removed once old enough, and so are resolved alert
//! incidents (kept as long as failed jobs), in bounded batches, so that cleaning never
//! holds the writer for long.
//!
//! Cleaning is a built-in job: the recurring job [`CLEANUP_ID`] enqueues, every hour on
//! the `maintenance` queue, a job of the host's own plugin [`CLEANUP_PLUGIN`], which the
//! executor runs in the host instead of a WASI component. Its result says how many jobs
//! it removed.

use crate::cron::Schedule;
use crate::model::{Millis, now_ms};
use crate::store::JobStore;
use crate::store::{Misfire, RecurringDefinition};
use std::time::Duration;

/// How long finished jobs are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// Succeeded jobs (default 7 days).
    pub succeeded: Duration,
    /// Failed and cancelled jobs (default 30 days).
    pub failed: Duration,
}

impl Default for Retention {
    fn default() -> Self {
        Self {
            succeeded: Duration::from_secs(7 * 24 * 3600),
            failed: Duration::from_secs(30 * 24 * 3600),
        }
    }
}

/// The built-in plugin that removes old jobs; clients cannot submit it themselves.
pub const CLEANUP_PLUGIN: &str = "orchestra.cleanup";
/// The recurring job that enqueues the cleanup every hour.
pub const CLEANUP_ID: &str = "orchestra-cleanup";

/// The hourly cleanup, on the `maintenance` queue.
pub fn cleanup_schedule() -> RecurringDefinition {
    RecurringDefinition {
        id: CLEANUP_ID.to_owned(),
        schedule: Schedule::parse("@hourly", "UTC").expect("a valid built-in schedule"),
        plugin: CLEANUP_PLUGIN.to_owned(),
        args: serde_json::json!({}),
        queue: "maintenance".to_owned(),
        priority: 0,
        max_attempts: 3,
        misfire: Misfire::RunOnce,
    }
}

/// Jobs removed per transaction.
const BATCH: u32 = 500;

/// What one cleanup removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cleanup {
    /// Jobs removed.
    pub removed: u64,
    /// Succeeded jobs finished before this were removed.
    pub succeeded_before: Millis,
    /// Failed and cancelled jobs finished before this were removed, and alert
    /// incidents resolved before it.
    pub failed_before: Millis,
    /// Rollup rows removed, past what each resolution keeps (see
    /// [`crate::store::stats::kept_for`]).
    pub rollup_removed: u64,
    /// Resolved alert incidents removed.
    pub incidents_removed: u64,
}

fn before(now: Millis, age: Duration) -> Millis {
    now.saturating_sub(i64::try_from(age.as_millis()).unwrap_or(i64::MAX))
}

/// Removes every finished job older than the retention, then every incident resolved
/// as long ago as a failed job is kept, a batch at a time, and the rollup's buckets past
/// what it keeps (the rollup outlives the jobs it counts).
pub(super) async fn clean(
    store: &dyn JobStore,
    retention: Retention,
) -> crate::store::Result<Cleanup> {
    let now = now_ms();
    let mut cleanup = Cleanup {
        removed: 0,
        succeeded_before: before(now, retention.succeeded),
        failed_before: before(now, retention.failed),
        rollup_removed: store.prune_rollup(now).await?,
        incidents_removed: 0,
    };
    loop {
        let removed = store
            .delete_finished(cleanup.succeeded_before, cleanup.failed_before, BATCH, now)
            .await?;
        let removed = removed.jobs.len();
        cleanup.removed += removed as u64;
        if removed < BATCH as usize {
            break;
        }
        // Let the queue's own writes go first.
        tokio::task::yield_now().await;
    }
    loop {
        let removed = store
            .delete_resolved_incidents(cleanup.failed_before, BATCH)
            .await?;
        cleanup.incidents_removed += removed;
        if removed < u64::from(BATCH) {
            return Ok(cleanup);
        }
        tokio::task::yield_now().await;
    }
}
