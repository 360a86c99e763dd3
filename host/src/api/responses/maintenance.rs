//! Answers of upkeep on demand.

use crate::engine::Cleanup;
use crate::model::rfc3339;
use serde::Serialize;
use utoipa::ToSchema;

/// `POST /api/maintenance/cleanup`: what was removed.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct CleanupDone {
    /// How many finished jobs were removed.
    pub(crate) removed: u64,
    /// Succeeded jobs finished before this time were removed (RFC 3339).
    #[schema(format = DateTime)]
    pub(crate) succeeded_before: String,
    /// Failed and cancelled jobs finished before this time were removed, and alert
    /// incidents resolved before it.
    #[schema(format = DateTime)]
    pub(crate) failed_before: String,
    /// How many analytics rollup rows were removed (minutes past a week, hours past
    /// 90 days, days past ten years).
    pub(crate) rollup_removed: u64,
    /// How many resolved alert incidents were removed.
    pub(crate) incidents_removed: u64,
}

impl From<Cleanup> for CleanupDone {
    fn from(done: Cleanup) -> CleanupDone {
        CleanupDone {
            removed: done.removed,
            succeeded_before: rfc3339::format(done.succeeded_before),
            failed_before: rfc3339::format(done.failed_before),
            rollup_removed: done.rollup_removed,
            incidents_removed: done.incidents_removed,
        }
    }
}
