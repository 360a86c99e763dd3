//! `flaky`: a plugin that fails on purpose, to show how errors drive the host's retries.
//!
//! A handler fails with one of the two `Error` cases:
//!
//! - `Error::Retryable`: a transient failure; the host runs the job again, by its retry
//!   policy, while attempts remain (`job.attempt()` counts from 1 up to
//!   `job.max_attempts()`);
//! - `Error::Fatal`: a permanent failure; the job fails at once, whatever attempts remain.
//!
//! Args (a JSON object, all fields optional):
//!
//! - `succeed_on` (integer, default 2): fail retryably until `job.attempt() >= succeed_on`;
//! - `fatal` (boolean, default false): fail fatally at once instead;
//! - `panic` (boolean, default false): panic, which the host sees as a trap.
//!
//! Result: `{"attempt": n}`, the attempt that succeeded.
//!
//! It is built against the previous version of the contract, `orchestra:plugin@0.1.0`
//! (`orchestra_plugin::v0_1`), to show (and test) that plugins built before the `agent`
//! interface keep running unchanged.

use orchestra_plugin::log::Level;
use orchestra_plugin::{Error, Handler, Job, v0_1};
use serde::{Deserialize, Serialize};
use serde_json::json;

/// The handler exported to the host.
struct Flaky;

/// What a job asks for.
#[derive(Deserialize)]
struct Args {
    /// Fail retryably until this attempt.
    #[serde(default = "second_attempt")]
    succeed_on: u64,
    /// Fail fatally at once.
    #[serde(default)]
    fatal: bool,
    /// Panic.
    #[serde(default)]
    panic: bool,
}

/// The attempt that succeeds when the args do not say.
fn second_attempt() -> u64 {
    2
}

impl Handler for Flaky {
    fn handle(job: Job) -> Result<impl Serialize, Error> {
        v0_1::log(Level::Info, &format!("flaky: attempt {}", job.attempt()));
        let args: Args = job.args()?;

        if args.panic {
            panic!("flaky panics on attempt {}, as asked", job.attempt());
        }
        if args.fatal {
            return Err(Error::fatal(format!(
                "attempt {} failed fatally, as asked",
                job.attempt()
            )));
        }
        if u64::from(job.attempt()) < args.succeed_on {
            return Err(Error::retryable(format!(
                "attempt {} of {} failed",
                job.attempt(),
                job.max_attempts()
            )));
        }
        Ok(json!({ "attempt": job.attempt() }))
    }
}

v0_1::export!(Flaky);
