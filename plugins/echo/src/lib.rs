//! `echo`: the smallest useful Orchestra plugin, and the one to copy when writing a new one.
//!
//! It returns its arguments unchanged as the job's result, and shows the whole plugin
//! surface:
//!
//! - generating bindings from `wit/world.wit` with `wit_bindgen::generate!` and exporting
//!   the handler with `export!` (both kept in a private `bindings` module, the only place
//!   that needs `unsafe` code);
//! - implementing `Guest::handle`, which receives a `JobContext` and returns the result as
//!   JSON text or a `JobError`;
//! - reporting progress through the `progress` import, logging through the `log` import,
//!   and printing to stdout, which the host also captures into the job's log.
//!
//! Args: any JSON value. Result: the same JSON text. Invalid JSON fails the job at once
//! with `JobError::Fatal`.

mod bindings {
    //! Bindings generated from `wit/world.wit`, and the component's export of [`Echo`].
    #![allow(unsafe_code, missing_docs, unreachable_pub, clippy::too_many_arguments)]
    wit_bindgen::generate!({ world: "task-handler", path: "../../wit" });
    use super::Echo;
    export!(Echo);
}

use bindings::orchestra::plugin::log::{Level, log};
use bindings::orchestra::plugin::progress::report;
use bindings::{Guest, JobContext, JobError};

/// The handler exported to the host.
struct Echo;

impl Guest for Echo {
    fn handle(job: JobContext) -> Result<String, JobError> {
        log(Level::Info, &format!("echo: attempt {}", job.attempt));
        progress(0, "checking args");

        // The result must be JSON text, so refuse args that are not.
        if let Err(e) = serde_json::from_str::<serde_json::Value>(&job.args) {
            return Err(JobError::Fatal(format!("bad args: {e}")));
        }
        progress(50, "args are valid JSON");

        // Guest stdout goes to the job's log too.
        println!("echo: job {} echoes {} bytes", job.id, job.args.len());
        progress(100, "done");
        Ok(job.args)
    }
}

/// Reports progress; the host refuses only out-of-range input, so a refusal is just logged.
fn progress(percent: u8, message: &str) {
    if let Err(e) = report(percent, message) {
        log(Level::Warn, &format!("echo: progress refused: {e}"));
    }
}
