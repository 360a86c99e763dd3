//! Write Orchestra job handlers in Rust.
//!
//! A plugin is a `cdylib` crate built for `wasm32-wasip2`: a type that implements
//! [`Handler`], exported with [`export!`]. The crate generates the bindings of the plugin
//! contract (the WIT package `orchestra:plugin`) itself, so a plugin needs no WIT files.
//!
//! ```
//! use orchestra_plugin::{Error, Handler, Job, log};
//! use serde::{Deserialize, Serialize};
//!
//! /// What a job asks for.
//! #[derive(Deserialize)]
//! struct Args {
//!     name: String,
//! }
//!
//! /// The job's result.
//! #[derive(Serialize)]
//! struct Greeting {
//!     text: String,
//! }
//!
//! struct Greet;
//!
//! impl Handler for Greet {
//!     fn handle(job: Job) -> Result<impl Serialize, Error> {
//!         // Args that do not fit `Args` fail the job at once, with serde's reason.
//!         let args: Args = job.args()?;
//!         log::info!("attempt {} greets {}", job.attempt(), args.name);
//!         orchestra_plugin::progress(100, "done");
//!         Ok(Greeting { text: format!("hello, {}", args.name) })
//!     }
//! }
//!
//! orchestra_plugin::export!(Greet);
//! orchestra_plugin::manifest!("max_attempts = 5\nretry_delays_seconds = [10, 60]\n");
//! ```
//!
//! What the crate offers:
//!
//! - [`Job`]: the job's id, attempt and queue, and its args, raw or typed through serde;
//! - [`Error`]: retryable or fatal; `?` turns common errors into one or the other;
//! - [`progress()`], [`log`] and [`agent`]: the host's imports;
//! - [`manifest!`]: the plugin's settings, embedded in the module;
//! - [`v0_1`]: the previous contract, for a plugin that must run on hosts that predate
//!   `agent`.

pub mod agent;
#[doc(hidden)]
pub mod bindings;
mod error;
mod handler;
mod job;
pub mod log;
#[doc(hidden)]
pub mod manifest;
mod progress;
pub mod v0_1;

pub use error::Error;
pub use handler::Handler;
pub use job::Job;
pub use progress::progress;

/// Exports a [`Handler`] as the component's `handle`: once per plugin, at the crate's top
/// level.
///
/// ```
/// # use orchestra_plugin::{Error, Handler, Job};
/// # struct MyHandler;
/// # impl Handler for MyHandler {
/// #     fn handle(_: Job) -> Result<impl serde::Serialize, Error> { Ok(()) }
/// # }
/// orchestra_plugin::export!(MyHandler);
/// ```
#[macro_export]
macro_rules! export {
    ($handler:ident) => {
        $crate::__export_task_handler_impl!($handler with_types_in $crate::bindings);
    };
}
