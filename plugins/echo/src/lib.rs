//! `echo`: the smallest useful Orchestra plugin, and the one to copy when writing a new one.
//!
//! It returns its arguments unchanged as the job's result, and shows the whole plugin
//! surface, through the `orchestra-plugin` crate (`sdk/rust`):
//!
//! - implementing `Handler::handle`, which receives a `Job` and returns the job's result
//!   (any value serde can write as JSON) or an `Error`, and exporting the handler with
//!   `orchestra_plugin::export!`;
//! - reading the args with `job.args()`, which fails the job at once when they do not fit;
//! - reporting progress with `progress`, logging with `log::info!`, and printing to stdout,
//!   which the host also captures into the job's log.
//!
//! To start a plugin, copy this crate and rename it: a `cdylib` that depends on
//! `orchestra-plugin` and `serde` (and here `serde_json`, for `RawValue`); outside this
//! workspace, give them versions or paths instead of `workspace = true`. Build it with
//! `cargo build --release --target wasm32-wasip2` and drop the `NAME.wasm` it makes into
//! the host's plugin folder; `sdk/rust/README.md` walks through it.
//!
//! Args: any JSON value. Result: the same JSON text. Invalid JSON fails the job at once
//! (fatal).

use orchestra_plugin::{Error, Handler, Job, log, progress};
use serde::Serialize;
use serde_json::value::RawValue;

/// The handler exported to the host.
struct Echo;

impl Handler for Echo {
    fn handle(job: Job) -> Result<impl Serialize, Error> {
        log::info!("echo: attempt {}", job.attempt());
        progress(0, "checking args");

        // The result must be JSON text, so refuse args that are not; a `RawValue` keeps
        // them as they are, to be returned unchanged.
        let args: Box<RawValue> = job.args()?;
        progress(50, "args are valid JSON");

        // Guest stdout goes to the job's log too.
        println!(
            "echo: job {} echoes {} bytes",
            job.id(),
            job.raw_args().len()
        );
        progress(100, "done");
        Ok(args)
    }
}

orchestra_plugin::export!(Echo);
