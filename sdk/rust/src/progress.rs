//! [`progress()`]: the job's progress, as the host shows it.

use crate::bindings::orchestra::plugin::log::{Level, log};
use crate::bindings::orchestra::plugin::progress::report;

/// Records the job's progress: `percent` from 0 to 100 and a message of at most 500
/// characters.
///
/// The host refuses out-of-range input and stores nothing; the refusal is logged as a
/// warning, since the job itself can go on.
pub fn progress(percent: u8, message: &str) {
    if let Err(e) = report(percent, message) {
        log(Level::Warn, &format!("progress refused: {e}"));
    }
}
