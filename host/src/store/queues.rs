//! Queues as the store keeps them: their controls, which every host obeys, and what they
//! hold.

use super::Result;
use crate::model::{JobState, Millis};
use async_trait::async_trait;

/// A queue's controls, kept in the store so that every host obeys them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueueSettings {
    /// Paused queues accept jobs but run none.
    pub paused: bool,
    /// Most jobs of the queue running at once, across hosts; `None`: no cap.
    pub concurrency: Option<u32>,
}

/// What the store knows of one queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueInfo {
    /// The queue.
    pub name: String,
    /// Its controls.
    pub settings: QueueSettings,
    /// Jobs per state.
    pub counts: Vec<(JobState, u64)>,
    /// `run_at` of the longest-waiting enqueued job.
    pub oldest_enqueued_at: Option<Millis>,
}

/// Storage of queue controls; every [`super::JobStore`] is one.
#[async_trait]
pub trait QueueStore {
    /// Pauses or resumes a queue.
    async fn set_queue_paused(&self, name: &str, paused: bool) -> Result<()>;

    /// Caps (or with `None` uncaps) how many jobs of a queue run at once.
    async fn set_queue_concurrency(&self, name: &str, concurrency: Option<u32>) -> Result<()>;

    /// Every queue that has jobs or controls, with its counts, controls and oldest
    /// enqueued job.
    async fn queues(&self) -> Result<Vec<QueueInfo>>;

    /// Jobs that finished (succeeded, failed or were cancelled) at or after `since`, per
    /// queue: a queue's recent throughput.
    async fn finished_since(&self, since: Millis) -> Result<Vec<(String, u64)>>;
}
