//! Answers about batches.

use super::JobRef;
use crate::model::{JobId, JobState, rfc3339};
use crate::store::BatchInfo;
use serde::Serialize;
use std::collections::BTreeMap;
use utoipa::ToSchema;

/// `POST /api/batches` (201).
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct BatchCreated {
    /// The batch.
    #[schema(value_type = Uuid)]
    pub(crate) id: JobId,
    /// Its jobs, in the order sent.
    #[schema(value_type = Vec<Uuid>)]
    pub(crate) jobs: Vec<JobId>,
    /// Names the queues of its jobs and callbacks no worker of this host serves; absent
    /// when every one is served.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) warning: Option<String>,
}

/// `GET /api/batches/{id}`: where a batch and each of its jobs stand.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct BatchView {
    /// The batch.
    #[schema(value_type = Uuid)]
    pub(crate) id: JobId,
    /// The client's description (empty if none).
    pub(crate) description: String,
    /// When it was created (RFC 3339).
    #[schema(format = DateTime)]
    pub(crate) created_at: String,
    /// `cancelled`, `running`, then `failed` or `succeeded` (see [`batch_state`]).
    pub(crate) state: &'static str,
    /// How many jobs it has.
    pub(crate) total: usize,
    /// How many of them have finished.
    pub(crate) finished: usize,
    /// `finished` as a whole percentage of `total` (100 for no jobs).
    pub(crate) progress: usize,
    /// Jobs per state, every state present (0 when none).
    pub(crate) counts: BTreeMap<&'static str, u64>,
    /// Its jobs and their states.
    pub(crate) jobs: Vec<JobRef>,
    /// The callback run when every job succeeded; `null` if none.
    pub(crate) on_success: Option<JobRef>,
    /// The callback run when every job finished; `null` if none.
    pub(crate) on_complete: Option<JobRef>,
}

/// `POST /api/batches/{id}/cancel`.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct BatchCancelled {
    /// The batch.
    #[schema(value_type = Uuid)]
    pub(crate) id: JobId,
    /// Always `cancelled`.
    pub(crate) state: &'static str,
    /// How many of its jobs were running and are being stopped.
    pub(crate) running_jobs_interrupted: usize,
}

/// Where a batch stands: `cancelled` once cancelled, `running` while any job is
/// unfinished, then `failed` if any job failed (or was cancelled), else `succeeded`.
fn batch_state(info: &BatchInfo) -> &'static str {
    if info.cancelled_at.is_some() {
        "cancelled"
    } else if info.jobs.iter().any(|(_, state)| !state.is_terminal()) {
        "running"
    } else if info
        .jobs
        .iter()
        .all(|(_, state)| *state == JobState::Succeeded)
    {
        "succeeded"
    } else {
        "failed"
    }
}

fn job_ref((id, state): (JobId, JobState)) -> JobRef {
    JobRef { id, state }
}

impl From<BatchInfo> for BatchView {
    fn from(info: BatchInfo) -> BatchView {
        let mut counts: BTreeMap<&'static str, u64> =
            JobState::ALL.iter().map(|s| (s.as_str(), 0)).collect();
        for (_, state) in &info.jobs {
            *counts.entry(state.as_str()).or_default() += 1;
        }
        let total = info.jobs.len();
        let finished = info.jobs.iter().filter(|(_, s)| s.is_terminal()).count();
        BatchView {
            id: info.id,
            state: batch_state(&info),
            created_at: rfc3339::format(info.created_at),
            total,
            finished,
            progress: (finished * 100).checked_div(total).unwrap_or(100),
            counts,
            jobs: info.jobs.into_iter().map(job_ref).collect(),
            on_success: info.on_success.map(job_ref),
            on_complete: info.on_complete.map(job_ref),
            description: info.description,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_created_batch_answers_as_before() {
        let (id, job) = (JobId::nil(), JobId::max());
        let served = BatchCreated {
            id,
            jobs: vec![job],
            warning: None,
        };
        assert_eq!(
            serde_json::to_value(&served).unwrap(),
            json!({"id": id, "jobs": [job]})
        );
        let unserved = BatchCreated {
            warning: Some("queue x is not served by any worker of this host".into()),
            ..served
        };
        assert_eq!(
            serde_json::to_value(&unserved).unwrap(),
            json!({
                "id": id,
                "jobs": [job],
                "warning": "queue x is not served by any worker of this host",
            })
        );
    }

    #[test]
    fn a_batch_shows_counts_progress_and_callbacks() {
        let (id, a, b) = (JobId::nil(), JobId::max(), JobId::from_u128(7));
        let info = BatchInfo {
            id,
            description: "two".into(),
            created_at: 0,
            jobs: vec![(a, JobState::Succeeded), (b, JobState::Processing)],
            on_success: Some((JobId::from_u128(8), JobState::Awaiting)),
            on_complete: None,
            cancelled_at: None,
        };
        let mut counts: serde_json::Map<String, serde_json::Value> = JobState::ALL
            .iter()
            .map(|s| (s.as_str().to_owned(), json!(0)))
            .collect();
        counts.insert("succeeded".into(), json!(1));
        counts.insert("processing".into(), json!(1));
        assert_eq!(
            serde_json::to_value(BatchView::from(info)).unwrap(),
            json!({
                "id": id,
                "description": "two",
                "created_at": rfc3339::format(0),
                "state": "running",
                "total": 2,
                "finished": 1,
                "progress": 50,
                "counts": counts,
                "jobs": [{"id": a, "state": "succeeded"}, {"id": b, "state": "processing"}],
                "on_success": {"id": JobId::from_u128(8), "state": "awaiting"},
                "on_complete": null,
            })
        );
    }
}
