//! The engine's [`ChangeSink`]: what each store write changed becomes one event per
//! change (and a task's job, as it is created, a `task.created` first), published as the
//! write commits, so a job's events come in the order its changes happened; the
//! dispatcher wakes when a job became ready; and moves into and out of `failed` go to
//! the alert rules that watch them. Changes written through other hosts of a shared
//! database are told the same way (but counted only by the host that wrote them), and a
//! cancel asked through another host stops the run here if this host holds it.

use super::alerts::FailedJobs;
use super::held::Held;
use crate::events::{Event, EventBus, Ids};
use crate::metrics::Metrics;
use crate::model::JobId;
use crate::store::{BatchProgress, ChangeSink, Changes, JobChange};
use std::sync::Arc;
use tokio::sync::Notify;

/// Publishes changes on `events` and wakes the dispatcher through `wake`.
#[derive(Debug)]
pub(super) struct Publisher {
    /// Where events go.
    pub(super) events: EventBus,
    /// Wakes the dispatcher.
    pub(super) wake: Arc<Notify>,
    /// Where job events are counted.
    pub(super) metrics: Arc<Metrics>,
    /// Where moves into and out of `failed` go, while an alert rule watches them.
    pub(super) failed_jobs: Arc<FailedJobs>,
    /// The jobs this host runs, which a cancel asked through another host stops.
    pub(super) held: Arc<Held>,
}

impl ChangeSink for Publisher {
    fn listening(&self) -> bool {
        self.events.is_heard()
    }

    fn committed(&self, writes: usize, took: std::time::Duration) {
        self.metrics.commit(writes, took);
    }

    fn changed(&self, changes: &Changes) {
        for change in &changes.jobs {
            // A run's start is counted by the run itself (see `filters::Measure`).
            if let Some(event) = counted(change) {
                self.metrics.job_event(&change.plugin, &change.queue, event);
            }
        }
        self.tell(changes);
    }

    fn changed_elsewhere(&self, changes: &Changes) {
        // Counted by the host that made them: each host's metrics count its own writes.
        self.tell(changes);
    }

    fn cancel_asked(&self, job: JobId) {
        self.held.interrupt_if_held(job);
    }
}

impl Publisher {
    /// Wakes the dispatcher if `changes` made a job ready, hands moves into and out of
    /// `failed` to the alert rules, and publishes one event per change.
    fn tell(&self, changes: &Changes) {
        if changes.any_ready() {
            self.wake.notify_one();
        }
        self.failed_jobs.note(changes);
        if !self.events.is_heard() {
            return;
        }
        for change in &changes.jobs {
            let Some(event) = event_of(change) else {
                continue;
            };
            let ids = ids_of(change);
            if change.task.is_some() && change.from.is_none() {
                let queue = change.queue.clone();
                self.events
                    .publish(ids.clone(), Event::TaskCreated { queue });
            }
            let freed = change.frees_agent().is_some();
            self.events.publish(ids.clone(), event);
            if freed {
                self.events.publish(ids, Event::AgentReleased);
            }
        }
        for batch in &changes.batches {
            self.events.publish(Ids::default(), progress_of(batch));
        }
    }
}

/// The name `change` is counted under in the metrics; none for a run's start.
fn counted(change: &JobChange) -> Option<&'static str> {
    use crate::model::JobState::*;
    Some(match (change.from, change.to) {
        (None, _) => "created",
        (_, None) => "deleted",
        (_, Some(Processing)) => return None,
        (Some(Processing), Some(Scheduled)) => "retried",
        (_, Some(Enqueued)) => "enqueued",
        (_, Some(Scheduled)) => "scheduled",
        (_, Some(Succeeded)) => "succeeded",
        (_, Some(Failed)) => "failed",
        (_, Some(Cancelled)) => "cancelled",
        (_, Some(Awaiting)) => "awaiting",
    })
}

/// The ids of `change`'s event: its job, task, agent, and the run it started.
fn ids_of(change: &JobChange) -> Ids {
    Ids {
        job: Some(change.id),
        task: change.task,
        agent: change.agent.as_deref().map(Into::into),
        correlation: change.lease,
    }
}

/// The event a job's move is (none for a change with no state on either side, which no
/// write makes).
fn event_of(change: &JobChange) -> Option<Event> {
    let queue = change.queue.clone();
    let reason = change.reason.clone();
    Some(match (change.from, change.to) {
        (None, Some(state)) => Event::JobCreated {
            state,
            queue,
            reason,
        },
        (Some(from), Some(to)) => Event::JobMoved {
            from,
            to,
            queue,
            attempt: change.attempt,
            reason,
        },
        (Some(from), None) => Event::JobDeleted {
            from,
            queue,
            reason,
        },
        (None, None) => return None,
    })
}

fn progress_of(batch: &BatchProgress) -> Event {
    Event::BatchProgress {
        batch: batch.id,
        total: batch.total,
        succeeded: batch.succeeded,
        failed: batch.failed,
        cancelled: batch.cancelled,
        done: batch.is_done(),
    }
}
