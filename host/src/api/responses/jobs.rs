//! Answers about jobs and their logs.

use crate::engine::bulk::BulkOutcome;
use crate::model::{Job, JobId, JobState, StoredLogLine};
use serde::Serialize;
use utoipa::ToSchema;

/// A job and its state: `POST /api/jobs/{id}/retry`, each job and callback of
/// `GET /api/batches/{id}`, and a job's parents and continuations.
pub(crate) use crate::model::JobRef;

/// `POST /api/jobs`: the job stored (201), or the one already holding its `unique_key`
/// (200).
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct SubmittedJob {
    /// The job.
    #[schema(value_type = Uuid)]
    pub(crate) id: JobId,
    /// Its state: `enqueued`, `scheduled` or `awaiting`.
    pub(crate) state: JobState,
    /// Says no worker of this host serves the job's queue; absent when one does.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) warning: Option<String>,
    /// `true` when the job already existed (its `unique_key` was taken); absent otherwise.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub(crate) existing: bool,
}

/// `POST /api/jobs/{id}/cancel`.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct CancelledJob {
    /// The job.
    #[schema(value_type = Uuid)]
    pub(crate) id: JobId,
    /// `cancelled`, or `processing` while a running attempt is being stopped.
    pub(crate) state: JobState,
    /// `true` when the job was running and is being stopped; absent when it was
    /// cancelled at once.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub(crate) cancel_requested: bool,
}

/// `GET /api/jobs`: one page of jobs, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct JobPage {
    /// The jobs.
    pub(crate) jobs: Vec<Job>,
    /// The `cursor` of the next page; `null` on the last page.
    #[schema(value_type = Option<Uuid>)]
    pub(crate) next_cursor: Option<JobId>,
}

/// `GET /api/jobs/{id}/logs`: one page of a job's log, in reading order.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct LogPage {
    /// The lines.
    pub(crate) lines: Vec<StoredLogLine>,
    /// The `after` of the next page; `null` on the last page.
    pub(crate) next_cursor: Option<i64>,
}

impl From<crate::store::Page> for JobPage {
    fn from(page: crate::store::Page) -> JobPage {
        JobPage {
            jobs: page.jobs,
            next_cursor: page.next_cursor,
        }
    }
}

impl From<crate::store::LogPage> for LogPage {
    fn from(page: crate::store::LogPage) -> LogPage {
        LogPage {
            lines: page.lines,
            next_cursor: page.next_cursor,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_submission_says_warning_and_existing_only_when_they_hold() {
        let id = JobId::nil();
        let state = JobState::Enqueued;
        let plain = SubmittedJob {
            id,
            state,
            warning: None,
            existing: false,
        };
        // What `POST /api/jobs` answered before: `{"id", "state"}`, then `warning` and
        // `existing` set on it when they held.
        assert_eq!(
            serde_json::to_value(&plain).unwrap(),
            json!({"id": id, "state": state})
        );
        let warned = SubmittedJob {
            warning: Some("queue x is not served by any worker of this host".into()),
            existing: true,
            ..plain
        };
        let mut before = json!({"id": id, "state": state});
        before["warning"] = json!("queue x is not served by any worker of this host");
        before["existing"] = json!(true);
        assert_eq!(serde_json::to_value(&warned).unwrap(), before);
    }

    #[test]
    fn a_cancel_says_cancel_requested_only_for_a_running_job() {
        let id = JobId::nil();
        let at_once = CancelledJob {
            id,
            state: JobState::Cancelled,
            cancel_requested: false,
        };
        assert_eq!(
            serde_json::to_value(&at_once).unwrap(),
            json!({"id": id, "state": JobState::Cancelled})
        );
        let requested = CancelledJob {
            id,
            state: JobState::Processing,
            cancel_requested: true,
        };
        assert_eq!(
            serde_json::to_value(&requested).unwrap(),
            json!({"id": id, "state": JobState::Processing, "cancel_requested": true})
        );
    }

    #[test]
    fn a_last_page_has_a_null_cursor() {
        let page = JobPage {
            jobs: Vec::new(),
            next_cursor: None,
        };
        assert_eq!(
            serde_json::to_value(&page).unwrap(),
            json!({"jobs": [], "next_cursor": null})
        );
    }
}

/// `POST /api/jobs/bulk`: what a bulk action did.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct BulkDone {
    /// Jobs it was asked to act on (the ids given, or the filter's matches).
    pub(crate) matched: u64,
    /// Jobs it changed.
    pub(crate) changed: u64,
    /// Jobs it skipped: the action does not apply to them (a running job is not
    /// deleted, a succeeded one not retried…) or they are gone.
    pub(crate) skipped: u64,
    /// The first skipped jobs, with why.
    pub(crate) skips: Vec<BulkSkip>,
}

/// A job a bulk action skipped.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct BulkSkip {
    /// The job.
    #[schema(value_type = Uuid)]
    pub(crate) id: JobId,
    /// Why.
    pub(crate) error: String,
}

impl From<BulkOutcome> for BulkDone {
    fn from(outcome: BulkOutcome) -> Self {
        BulkDone {
            matched: outcome.matched,
            changed: outcome.changed,
            skipped: outcome.skipped,
            skips: outcome
                .skips
                .into_iter()
                .map(|(id, error)| BulkSkip { id, error })
                .collect(),
        }
    }
}
