//! Answers about queues.

use crate::model::{JobState, Millis};
use crate::store::QueueInfo;
use serde::Serialize;
use std::collections::BTreeMap;
use utoipa::ToSchema;

/// `GET /api/queues`.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct QueueList {
    /// Every queue that holds jobs, has settings or is served here, by name.
    pub(crate) queues: Vec<QueueView>,
}

/// One queue of [`QueueList`].
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct QueueView {
    /// Its name.
    pub(crate) name: String,
    /// Whether a worker of this host serves it.
    pub(crate) served: bool,
    /// Whether it is paused.
    pub(crate) paused: bool,
    /// Most of its jobs that run at once; `null` for no cap.
    pub(crate) concurrency: Option<u32>,
    /// Its jobs per state, every state present (0 when none).
    pub(crate) counts: BTreeMap<&'static str, u64>,
    /// How long its oldest enqueued job has waited; `null` when none waits.
    #[schema(value_type = Option<i64>)]
    pub(crate) oldest_enqueued_age_ms: Option<Millis>,
    /// Its jobs that finished in the last five minutes: its throughput.
    pub(crate) finished_last_5m: u64,
}

/// `POST /api/queues/{name}/pause` and `POST /api/queues/{name}/resume`.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct QueuePaused {
    /// The queue.
    pub(crate) name: String,
    /// Whether it is now paused.
    pub(crate) paused: bool,
}

/// `PUT /api/queues/{name}/concurrency`.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct QueueConcurrency {
    /// The queue.
    pub(crate) name: String,
    /// Its cap now; `null` for none.
    pub(crate) concurrency: Option<u32>,
}

impl QueueView {
    /// `info` as clients see it at `now`; `served` if a worker of this host serves it,
    /// `finished` its jobs finished in the last five minutes.
    pub(crate) fn new(info: QueueInfo, served: bool, finished: u64, now: Millis) -> QueueView {
        let mut counts: BTreeMap<&'static str, u64> =
            JobState::ALL.iter().map(|s| (s.as_str(), 0)).collect();
        for (state, count) in info.counts {
            counts.insert(state.as_str(), count);
        }
        QueueView {
            name: info.name,
            served,
            paused: info.settings.paused,
            concurrency: info.settings.concurrency,
            counts,
            oldest_enqueued_age_ms: info.oldest_enqueued_at.map(|at| (now - at).max(0)),
            finished_last_5m: finished,
        }
    }
}
