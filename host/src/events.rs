//! The in-process event bus: job lifecycle events for whoever listens (the live event
//! stream, the benchmark).
//!
//! Publishing never blocks: the bus keeps the last [`CAPACITY`] events, and a subscriber
//! that falls further behind misses events (its receiver says how many), so a slow
//! listener never slows the host or grows its memory.

use crate::model::{JobId, JobState, Millis, now_ms};
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::sync::broadcast;

/// Events kept for slow subscribers before they start missing some.
pub const CAPACITY: usize = 4096;

/// Something that happened to a job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobEvent {
    /// A job was stored, ready or waiting.
    Enqueued {
        /// The job.
        id: JobId,
        /// Its state (`enqueued`, `scheduled` or `awaiting`).
        state: JobState,
    },
    /// A run started.
    Started {
        /// The job.
        id: JobId,
        /// Which attempt.
        attempt: u32,
    },
    /// A running job reported progress (at most one event per job every 100 ms).
    Progress {
        /// The job.
        id: JobId,
        /// 0 to 100.
        percent: u8,
        /// What it is doing.
        message: String,
    },
    /// A running job wrote a log line.
    Log {
        /// The job.
        id: JobId,
        /// Its level, or `stdout`/`stderr`.
        level: String,
        /// The line.
        message: String,
    },
    /// A run ended; `state` is where the job went.
    Finished {
        /// The job.
        id: JobId,
        /// Its new state.
        state: JobState,
    },
}

impl JobEvent {
    /// The job the event is about.
    pub fn job_id(&self) -> JobId {
        match self {
            JobEvent::Enqueued { id, .. }
            | JobEvent::Started { id, .. }
            | JobEvent::Progress { id, .. }
            | JobEvent::Log { id, .. }
            | JobEvent::Finished { id, .. } => *id,
        }
    }

    /// The event's type as clients filter on it: `job.enqueued`, `job.started`,
    /// `job.progress`, `job.log`, `job.succeeded`, `job.failed`, `job.retrying`,
    /// `job.cancelled`.
    pub fn type_name(&self) -> &'static str {
        match self {
            JobEvent::Enqueued { .. } => "job.enqueued",
            JobEvent::Started { .. } => "job.started",
            JobEvent::Progress { .. } => "job.progress",
            JobEvent::Log { .. } => "job.log",
            JobEvent::Finished { state, .. } => match state {
                JobState::Succeeded => "job.succeeded",
                JobState::Failed => "job.failed",
                JobState::Cancelled => "job.cancelled",
                _ => "job.retrying",
            },
        }
    }

    fn details(&self) -> Value {
        match self {
            JobEvent::Enqueued { state, .. } | JobEvent::Finished { state, .. } => {
                json!({"state": state})
            }
            JobEvent::Started { attempt, .. } => json!({"attempt": attempt}),
            JobEvent::Progress {
                percent, message, ..
            } => json!({"percent": percent, "message": message}),
            JobEvent::Log { level, message, .. } => json!({"level": level, "message": message}),
        }
    }
}

/// An event as published: numbered in publishing order and timed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Published {
    /// Position in this host's stream, from 1.
    pub seq: u64,
    /// When it was published.
    pub at: Millis,
    /// What happened.
    pub event: JobEvent,
}

impl Published {
    /// The event as clients see it.
    pub fn to_json(&self) -> Value {
        let mut body = json!({
            "seq": self.seq,
            "type": self.event.type_name(),
            "at": crate::model::rfc3339::format(self.at),
            "job_id": self.event.job_id(),
        });
        if let (Value::Object(body), Value::Object(details)) = (&mut body, self.event.details()) {
            body.extend(details);
        }
        body
    }
}

/// Publishes [`JobEvent`]s to any number of subscribers. Cheap to clone.
#[derive(Debug, Clone)]
pub struct EventBus {
    sender: broadcast::Sender<Published>,
    seq: Arc<AtomicU64>,
}

impl Default for EventBus {
    fn default() -> Self {
        Self {
            sender: broadcast::channel(CAPACITY).0,
            seq: Arc::default(),
        }
    }
}

impl EventBus {
    /// Whether anyone listens: events need not even be built otherwise.
    pub fn is_heard(&self) -> bool {
        self.sender.receiver_count() > 0
    }

    /// Sends `event` to current subscribers, if any.
    pub fn publish(&self, event: JobEvent) {
        if !self.is_heard() {
            return;
        }
        let seq = self.seq.fetch_add(1, Ordering::Relaxed) + 1;
        let _ = self.sender.send(Published {
            seq,
            at: now_ms(),
            event,
        });
    }

    /// Receives every event published from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Published> {
        self.sender.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::new_job_id;

    #[tokio::test]
    async fn events_are_numbered_and_shown_with_their_type() {
        let bus = EventBus::default();
        let id = new_job_id();
        bus.publish(JobEvent::Started { id, attempt: 1 });
        let mut events = bus.subscribe();
        bus.publish(JobEvent::Progress {
            id,
            percent: 50,
            message: "half".into(),
        });
        bus.publish(JobEvent::Finished {
            id,
            state: JobState::Scheduled,
        });
        let progress = events.recv().await.unwrap();
        let retrying = events.recv().await.unwrap();
        assert_eq!(
            (progress.seq, retrying.seq),
            (1, 2),
            "unheard events are not numbered"
        );
        let json = progress.to_json();
        assert_eq!(json["type"], "job.progress");
        assert_eq!(json["percent"], 50);
        assert_eq!(json["job_id"], json!(id));
        assert_eq!(retrying.to_json()["type"], "job.retrying");
    }

    #[tokio::test]
    async fn a_subscriber_that_falls_behind_is_told_how_much_it_missed() {
        let bus = EventBus::default();
        let mut slow = bus.subscribe();
        let id = new_job_id();
        for attempt in 0..(CAPACITY as u32 + 10) {
            bus.publish(JobEvent::Started { id, attempt });
        }
        match slow.recv().await {
            Err(broadcast::error::RecvError::Lagged(missed)) => assert_eq!(missed, 10),
            other => panic!("expected a lag notice, got {other:?}"),
        }
    }
}
