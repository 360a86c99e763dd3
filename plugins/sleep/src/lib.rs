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

mod bindings {
    //! Bindings generated from `wit/world.wit`, and the component's export of [`Sleep`].
    #![allow(unsafe_code, missing_docs, unreachable_pub, clippy::too_many_arguments)]
    wit_bindgen::generate!({ world: "task-handler", path: "../../wit" });
    use super::Sleep;
    export!(Sleep);
}

use bindings::orchestra::plugin::log::{Level, log};
use bindings::orchestra::plugin::progress::report;
use bindings::{Guest, JobContext, JobError};
use serde_json::{Map, Value, json};
use std::time::Duration;

/// The handler exported to the host.
struct Sleep;

impl Guest for Sleep {
    fn handle(job: JobContext) -> Result<String, JobError> {
        log(Level::Info, &format!("sleep: attempt {}", job.attempt));
        let args: Map<String, Value> = serde_json::from_str(&job.args)
            .map_err(|e| JobError::Fatal(format!("bad args: {e}")))?;
        let ms = args.get("ms").and_then(Value::as_u64).ok_or_else(|| {
            JobError::Fatal("bad args: `ms` (a non-negative integer) is required".into())
        })?;

        let steps = match args.get("steps") {
            None => 1,
            Some(steps) => steps
                .as_u64()
                .filter(|n| (1..=MAX_STEPS).contains(n))
                .ok_or_else(|| {
                    JobError::Fatal(format!("bad args: `steps` must be 1 to {MAX_STEPS}"))
                })?,
        };
        for step in 1..=steps {
            std::thread::sleep(Duration::from_millis(ms / steps));
            if steps > 1 {
                let percent = u8::try_from(step * 100 / steps).unwrap_or(100);
                let message = format!("step {step} of {steps}");
                log(Level::Info, &format!("sleep: {message}"));
                if let Err(e) = report(percent, &message) {
                    log(Level::Warn, &format!("sleep: progress refused: {e}"));
                }
            }
        }
        Ok(json!({ "slept_ms": ms }).to_string())
    }
}

/// Most parts a sleep may be cut into.
const MAX_STEPS: u64 = 1000;
