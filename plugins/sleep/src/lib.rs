//! `sleep`: a plugin that waits, to show the host's wall-clock deadline and cancellation.
//!
//! Sleeping uses almost no fuel, so it is the deadline (or a cancel), not the fuel
//! budget, that bounds a long sleep. On `wasm32-wasip2`, `std::thread::sleep` waits on a
//! pollable from the WASI monotonic clock, which the host implements.
//!
//! Args (a JSON object): `ms` (integer, required): how long to sleep, in milliseconds;
//! `steps` (integer, optional, 1 to 1000): sleep in that many equal parts, reporting
//! progress and logging a line after each, so a running job's progress and log move.
//!
//! Result: `{"slept_ms": ms}`.

use orchestra_plugin::{Error, Handler, Job, log, progress};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::time::Duration;

/// The handler exported to the host.
struct Sleep;

/// What a job asks for.
#[derive(Deserialize)]
struct Args {
    /// How long to sleep, in milliseconds.
    ms: u64,
    /// How many equal parts to sleep in (1 when not given).
    steps: Option<u64>,
}

/// Most parts a sleep may be cut into.
const MAX_STEPS: u64 = 1000;

impl Handler for Sleep {
    fn handle(job: Job) -> Result<impl Serialize, Error> {
        log::info!("sleep: attempt {}", job.attempt());
        let Args { ms, steps } = job.args()?;
        let steps = steps.unwrap_or(1);
        if !(1..=MAX_STEPS).contains(&steps) {
            return Err(Error::bad_args(format!("`steps` must be 1 to {MAX_STEPS}")));
        }

        for step in 1..=steps {
            std::thread::sleep(Duration::from_millis(ms / steps));
            if steps > 1 {
                let percent = u8::try_from(step * 100 / steps).unwrap_or(100);
                let message = format!("step {step} of {steps}");
                log::info!("sleep: {message}");
                progress(percent, &message);
            }
        }
        Ok(json!({ "slept_ms": ms }))
    }
}

orchestra_plugin::export!(Sleep);
