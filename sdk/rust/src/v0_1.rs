//! The previous plugin contract, `orchestra:plugin@0.1.0`, for a plugin that must also run
//! on hosts that predate the `agent` interface.
//!
//! Export the handler with this module's [`export!`] and log and report progress with its
//! [`log()`] and [`report`]: the crate's [`log`](crate::log) and
//! [`progress()`](crate::progress()) call the current contract's imports, and so does
//! [`agent`](crate::agent), which 0.1.0 does not have. [`Job`](crate::Job),
//! [`Error`](crate::Error) and [`Handler`](crate::Handler) are the same for both.
//!
//! ```
//! use orchestra_plugin::log::Level;
//! use orchestra_plugin::{Error, Handler, Job, v0_1};
//!
//! struct Old;
//!
//! impl Handler for Old {
//!     fn handle(job: Job) -> Result<impl serde::Serialize, Error> {
//!         v0_1::log(Level::Info, &format!("attempt {}", job.attempt()));
//!         Ok(job.attempt())
//!     }
//! }
//!
//! v0_1::export!(Old);
//! ```

#[doc(inline)]
pub use crate::__export_v0_1 as export;
pub use crate::bindings::v0_1::orchestra::plugin::{log::log, progress::report};

/// Exports a [`Handler`](crate::Handler) as the `handle` of a 0.1.0 component.
#[doc(hidden)]
#[macro_export]
macro_rules! __export_v0_1 {
    ($handler:ident) => {
        $crate::__export_legacy_task_handler_impl!($handler with_types_in $crate::bindings::v0_1);
    };
}
