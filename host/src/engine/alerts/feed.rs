//! Jobs entering and leaving `failed`, handed from the change sink to the evaluator.
//!
//! The sink is on every write's path, so it looks at changes only while a `job_failed`
//! rule is enabled (one atomic load otherwise), and hands over only the moves into and
//! out of `failed`. The hand-over is bounded: when the evaluator falls far behind, moves
//! are dropped and counted, and the evaluator then checks its open incidents against the
//! jobs' states instead.

use super::WEBHOOK_PLUGIN;
use crate::model::{JobId, JobState};
use crate::store::Changes;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::sync::mpsc;

/// Moves kept for the evaluator before the sink drops them.
pub(super) const CAPACITY: usize = 16_384;

/// A job's move into or out of `failed`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(in crate::engine) struct FailedMove {
    /// The job.
    pub(super) job: JobId,
    /// Its plugin.
    pub(super) plugin: String,
    /// Its queue.
    pub(super) queue: String,
    /// Whether it entered `failed` (else it left: retried or deleted).
    pub(super) entered: bool,
    /// Why it moved, as its history says.
    pub(super) reason: String,
}

/// The sink's side of the hand-over.
#[derive(Debug)]
pub(in crate::engine) struct FailedJobs {
    /// Whether an enabled rule watches failed jobs (the lowest bit), and how often that
    /// was set (the rest): a pass of the evaluator that read the rules before a rule was
    /// stored cannot stop the watch that storing it started.
    watch: AtomicU64,
    /// Where moves go.
    sender: mpsc::Sender<FailedMove>,
    /// Moves dropped since the evaluator last asked.
    dropped: AtomicU64,
}

impl FailedJobs {
    /// A hand-over, and the evaluator's end of it.
    pub(in crate::engine) fn new() -> (FailedJobs, mpsc::Receiver<FailedMove>) {
        let (sender, receiver) = mpsc::channel(CAPACITY);
        let jobs = FailedJobs {
            watch: AtomicU64::new(0),
            sender,
            dropped: AtomicU64::new(0),
        };
        (jobs, receiver)
    }

    /// Hands over the moves into and out of `failed` among `changes`, while watched.
    /// Webhook deliveries are left out: a delivery that failed for good must not
    /// raise an alert that is delivered in turn.
    pub(in crate::engine) fn note(&self, changes: &Changes) {
        if self.watch.load(Ordering::Relaxed) & 1 == 0 {
            return;
        }
        for change in &changes.jobs {
            let entered = change.to == Some(JobState::Failed);
            let left = change.from == Some(JobState::Failed);
            if !(entered || left) || change.plugin == WEBHOOK_PLUGIN {
                continue;
            }
            let moved = FailedMove {
                job: change.id,
                plugin: change.plugin.clone(),
                queue: change.queue.clone(),
                entered,
                reason: change.reason.clone(),
            };
            if self.sender.try_send(moved).is_err() {
                self.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Starts watching now (a `job_failed` rule was just stored).
    pub(in crate::engine) fn watch(&self) {
        let _ = self
            .watch
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |w| Some((w + 2) | 1));
    }

    /// The watch as it is, to [`FailedJobs::settle`] after reading the rules.
    pub(super) fn seen(&self) -> u64 {
        self.watch.load(Ordering::Relaxed)
    }

    /// Watches while `on` (whether an enabled rule watches failed jobs, by the rules
    /// read after `seen`), unless the watch was started again since.
    pub(super) fn settle(&self, seen: u64, on: bool) {
        let settled = ((seen + 2) & !1) | u64::from(on);
        let _ = self
            .watch
            .compare_exchange(seen, settled, Ordering::Relaxed, Ordering::Relaxed);
    }

    /// How many moves were dropped since the last call.
    pub(super) fn take_dropped(&self) -> u64 {
        self.dropped.swap(0, Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::new_job_id;
    use crate::store::JobChange;

    fn change(plugin: &str, from: Option<JobState>, to: Option<JobState>) -> JobChange {
        JobChange {
            id: new_job_id(),
            from,
            to,
            reason: "fatal: failed".into(),
            at: 0,
            queue: "default".into(),
            plugin: plugin.into(),
            attempt: 1,
            batch: None,
            agent: None,
            task: None,
            lease: None,
        }
    }

    #[test]
    fn only_moves_into_and_out_of_failed_are_handed_over_while_watched() {
        use JobState::*;
        let (jobs, mut moves) = FailedJobs::new();
        let failed = change("echo", Some(Processing), Some(Failed));
        let changes = Changes {
            jobs: vec![
                failed.clone(),
                change("echo", Some(Processing), Some(Succeeded)),
                change(WEBHOOK_PLUGIN, Some(Processing), Some(Failed)),
                change("echo", Some(Failed), Some(Enqueued)),
                change("echo", Some(Failed), None),
            ],
            batches: Vec::new(),
        };
        jobs.note(&changes);
        assert!(moves.try_recv().is_err(), "nothing while unwatched");
        jobs.watch();
        jobs.note(&changes);
        let mut seen = Vec::new();
        while let Ok(moved) = moves.try_recv() {
            seen.push(moved.entered);
        }
        assert_eq!(seen, [true, false, false]);
        assert_eq!(jobs.take_dropped(), 0);
    }

    #[test]
    fn a_pass_that_read_the_rules_before_a_rule_was_stored_does_not_stop_its_watch() {
        let (jobs, mut moves) = FailedJobs::new();
        let failed = Changes {
            jobs: vec![change(
                "echo",
                Some(JobState::Processing),
                Some(JobState::Failed),
            )],
            batches: Vec::new(),
        };
        let before = jobs.seen();
        jobs.watch();
        jobs.settle(before, false);
        jobs.note(&failed);
        assert!(moves.try_recv().is_ok(), "still watched");
        jobs.settle(jobs.seen(), false);
        jobs.note(&failed);
        assert!(moves.try_recv().is_err(), "settled by a later pass");
        jobs.settle(jobs.seen(), true);
        jobs.note(&failed);
        assert!(moves.try_recv().is_ok());
    }

    #[test]
    fn moves_past_the_capacity_are_counted_as_dropped() {
        let (jobs, _moves) = FailedJobs::new();
        jobs.watch();
        let failed = change("echo", Some(JobState::Processing), Some(JobState::Failed));
        let changes = Changes {
            jobs: vec![failed; CAPACITY + 3],
            batches: Vec::new(),
        };
        jobs.note(&changes);
        assert_eq!(jobs.take_dropped(), 3);
        assert_eq!(jobs.take_dropped(), 0, "counted once");
    }
}
