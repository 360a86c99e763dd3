//! Answers of upkeep on demand.

use crate::engine::Cleanup;
use crate::model::rfc3339;
use serde::Serialize;

/// `POST /api/maintenance/cleanup`: what was removed.
#[derive(Debug, Serialize)]
pub(crate) struct CleanupDone {
    /// How many finished jobs were removed.
    pub(crate) removed: u64,
    /// Succeeded jobs finished before this time were removed (RFC 3339).
    pub(crate) succeeded_before: String,
    /// Failed and cancelled jobs finished before this time were removed, and alert
    /// incidents resolved before it.
    pub(crate) failed_before: String,
    /// How many resolved alert incidents were removed.
    pub(crate) incidents_removed: u64,
}

impl From<Cleanup> for CleanupDone {
    fn from(done: Cleanup) -> CleanupDone {
        CleanupDone {
            removed: done.removed,
            succeeded_before: rfc3339::format(done.succeeded_before),
            failed_before: rfc3339::format(done.failed_before),
            incidents_removed: done.incidents_removed,
        }
    }
}
