//! `flaky`: a plugin that fails on purpose, to show how errors drive the host's retries.
//!
//! A handler fails with one of the two `JobError` cases:
//!
//! - `JobError::Retryable`: a transient failure; the host runs the job again, by its retry
//!   policy, while attempts remain (`job.attempt` counts from 1 up to `job.max_attempts`);
//! - `JobError::Fatal`: a permanent failure; the job fails at once, whatever attempts remain.
//!
//! Args (a JSON object, all fields optional):
//!
//! - `succeed_on` (integer, default 2): fail retryably until `job.attempt >= succeed_on`;
//! - `fatal` (boolean, default false): fail fatally at once instead;
//! - `panic` (boolean, default false): panic, which the host sees as a trap.
//!
//! Result: `{"attempt": n}`, the attempt that succeeded.
//!
//! It is built against the previous version of the contract, `orchestra:plugin@0.1.0`
//! (`wit/0.1.0`), to show (and test) that plugins built before the `agent` interface
//! keep running unchanged.

mod bindings {
    //! Bindings generated from `wit/0.1.0/world.wit`, and the component's export of
    //! [`Flaky`].
    #![allow(unsafe_code, missing_docs, unreachable_pub, clippy::too_many_arguments)]
    wit_bindgen::generate!({ world: "task-handler", path: "../../wit/0.1.0" });
    use super::Flaky;
    export!(Flaky);
}

use bindings::orchestra::plugin::log::{Level, log};
use bindings::{Guest, JobContext, JobError};
use serde_json::{Map, Value, json};

/// The handler exported to the host.
struct Flaky;

impl Guest for Flaky {
    fn handle(job: JobContext) -> Result<String, JobError> {
        log(Level::Info, &format!("flaky: attempt {}", job.attempt));
        let args: Map<String, Value> = serde_json::from_str(&job.args)
            .map_err(|e| JobError::Fatal(format!("bad args: {e}")))?;

        let fatal = match args.get("fatal") {
            None => false,
            Some(v) => v
                .as_bool()
                .ok_or_else(|| JobError::Fatal("bad args: `fatal` must be a boolean".into()))?,
        };
        let succeed_on = match args.get("succeed_on") {
            None => 2,
            Some(v) => v.as_u64().ok_or_else(|| {
                JobError::Fatal("bad args: `succeed_on` must be a non-negative integer".into())
            })?,
        };

        if args.get("panic").and_then(Value::as_bool) == Some(true) {
            panic!("flaky panics on attempt {}, as asked", job.attempt);
        }
        if fatal {
            return Err(JobError::Fatal(format!(
                "attempt {} failed fatally, as asked",
                job.attempt
            )));
        }
        if u64::from(job.attempt) < succeed_on {
            return Err(JobError::Retryable(format!(
                "attempt {} of {} failed",
                job.attempt, job.max_attempts
            )));
        }
        Ok(json!({ "attempt": job.attempt }).to_string())
    }
}
