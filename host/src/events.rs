//! The in-process event bus: job lifecycle events for whoever listens.
//!
//! Publishing never blocks: a subscriber that falls behind misses events (and is told
//! so by its receiver), it never slows the host.

use crate::model::{JobId, JobState};
use tokio::sync::broadcast;

/// Events kept for slow subscribers before they start missing some.
const CAPACITY: usize = 4096;

/// Something that happened to a job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobEvent {
    /// A run started.
    Started {
        /// The job.
        id: JobId,
        /// Which attempt.
        attempt: u32,
    },
    /// A run ended; `state` is where the job went.
    Finished {
        /// The job.
        id: JobId,
        /// Its new state.
        state: JobState,
    },
}

/// Publishes [`JobEvent`]s to any number of subscribers. Cheap to clone.
#[derive(Debug, Clone)]
pub struct EventBus {
    sender: broadcast::Sender<JobEvent>,
}

impl Default for EventBus {
    fn default() -> Self {
        Self {
            sender: broadcast::channel(CAPACITY).0,
        }
    }
}

impl EventBus {
    /// Sends `event` to current subscribers, if any.
    pub fn publish(&self, event: JobEvent) {
        let _ = self.sender.send(event);
    }

    /// Receives every event published from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<JobEvent> {
        self.sender.subscribe()
    }
}
