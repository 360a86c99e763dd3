//! Retention: finished jobs are removed once old enough, in bounded batches, so that
//! cleaning never holds the writer for long.

use super::Shared;
use crate::model::{Millis, now_ms};
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

/// Jobs removed per transaction.
const BATCH: u32 = 500;

/// What one cleanup removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cleanup {
    /// Jobs removed.
    pub removed: u64,
    /// Succeeded jobs finished before this were removed.
    pub succeeded_before: Millis,
    /// Failed and cancelled jobs finished before this were removed.
    pub failed_before: Millis,
}

fn before(now: Millis, age: Duration) -> Millis {
    now.saturating_sub(i64::try_from(age.as_millis()).unwrap_or(i64::MAX))
}

/// Removes every finished job older than the retention, a batch at a time.
pub(super) async fn clean(shared: &Shared) -> crate::store::Result<Cleanup> {
    let now = now_ms();
    let retention = shared.config.retention;
    let mut cleanup = Cleanup {
        removed: 0,
        succeeded_before: before(now, retention.succeeded),
        failed_before: before(now, retention.failed),
    };
    loop {
        let removed = shared
            .store
            .delete_finished(cleanup.succeeded_before, cleanup.failed_before, BATCH)
            .await?;
        cleanup.removed += removed;
        if removed < u64::from(BATCH) {
            return Ok(cleanup);
        }
        // Let the queue's own writes go first.
        tokio::task::yield_now().await;
    }
}
