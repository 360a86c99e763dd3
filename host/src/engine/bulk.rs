//! Bulk actions: retry, cancel or delete many jobs at once, the ones a client picked or
//! every one a filter matches, each as the single action would (a job it does not apply
//! to is skipped, with why).

use super::Scheduler;
use crate::model::{JobId, Millis};
use crate::store::{self, JobFilter};

/// Most jobs one bulk action over a filter takes.
pub const MAX_BULK: usize = 100_000;
/// Jobs read per page while collecting a filter's matches.
const PAGE: u32 = 1000;
/// Skipped jobs an outcome names (it counts them all).
const NAMED_SKIPS: usize = 20;

/// What a bulk action does to each job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BulkAction {
    /// Send a failed or cancelled job back to `enqueued`.
    Retry,
    /// Cancel a waiting job, interrupt a running one.
    Cancel,
    /// Remove a job that is not running.
    Delete,
}

impl BulkAction {
    /// The action named `name` (`retry`, `cancel`, `delete`).
    pub fn parse(name: &str) -> Option<BulkAction> {
        match name {
            "retry" => Some(BulkAction::Retry),
            "cancel" => Some(BulkAction::Cancel),
            "delete" => Some(BulkAction::Delete),
            _ => None,
        }
    }
}

/// What a bulk action did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BulkOutcome {
    /// Jobs it was asked to act on.
    pub matched: u64,
    /// Jobs it changed.
    pub changed: u64,
    /// Jobs it skipped.
    pub skipped: u64,
    /// The first skipped jobs, with why.
    pub skips: Vec<(JobId, String)>,
}

impl Scheduler {
    /// Does `action` to each of `ids`.
    pub async fn bulk(&self, action: BulkAction, ids: &[JobId], now: Millis) -> BulkOutcome {
        let mut outcome = BulkOutcome {
            matched: ids.len() as u64,
            ..BulkOutcome::default()
        };
        for id in ids {
            let done = match action {
                BulkAction::Retry => self.retry(*id, now).await.map(drop),
                BulkAction::Cancel => self.cancel(*id, now).await.map(drop),
                BulkAction::Delete => self.delete(*id, now).await,
            };
            match done {
                Ok(()) => outcome.changed += 1,
                Err(e) => {
                    outcome.skipped += 1;
                    if outcome.skips.len() < NAMED_SKIPS {
                        outcome.skips.push((*id, e.to_string()));
                    }
                }
            }
        }
        outcome
    }

    /// The ids of the jobs `filter` matches (its page size and cursor aside), newest
    /// first, at most [`MAX_BULK`].
    ///
    /// # Errors
    /// As [`store::JobStore::list`].
    pub async fn matching(&self, filter: &JobFilter) -> store::Result<Vec<JobId>> {
        let mut filter = JobFilter {
            limit: PAGE,
            before: None,
            ..filter.clone()
        };
        let mut ids = Vec::new();
        loop {
            let page = self.shared.store.list(&filter).await?;
            ids.extend(page.jobs.iter().map(|job| job.id));
            match page.next_cursor {
                Some(cursor) if ids.len() < MAX_BULK => filter.before = Some(cursor),
                _ => break,
            }
        }
        ids.truncate(MAX_BULK);
        Ok(ids)
    }
}
