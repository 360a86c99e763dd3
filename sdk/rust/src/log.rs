//! Lines in the job's log: [`log()`] at a [`Level`], or a macro per level that formats its
//! line as `format!` does.
//!
//! ```
//! use orchestra_plugin::log;
//!
//! # fn run(attempt: u32) {
//! log::info!("attempt {attempt}");
//! log::log(log::Level::Debug, "as a function");
//! # }
//! ```
//!
//! What a plugin prints to stdout and stderr goes to the job's log too.

pub use crate::bindings::orchestra::plugin::log::{Level, log};
#[doc(inline)]
pub use crate::{
    __log_debug as debug, __log_error as error, __log_info as info, __log_trace as trace,
    __log_warn as warn,
};

/// Logs a line formatted from the arguments at a level.
#[doc(hidden)]
#[macro_export]
macro_rules! __log {
    ($level:ident, $($arg:tt)+) => {
        $crate::log::log($crate::log::Level::$level, &::std::format!($($arg)+))
    };
}

/// Logs a line at [`Level::Trace`], formatted as `format!` does.
#[doc(hidden)]
#[macro_export]
macro_rules! __log_trace {
    ($($arg:tt)+) => { $crate::__log!(Trace, $($arg)+) };
}

/// Logs a line at [`Level::Debug`], formatted as `format!` does.
#[doc(hidden)]
#[macro_export]
macro_rules! __log_debug {
    ($($arg:tt)+) => { $crate::__log!(Debug, $($arg)+) };
}

/// Logs a line at [`Level::Info`], formatted as `format!` does.
#[doc(hidden)]
#[macro_export]
macro_rules! __log_info {
    ($($arg:tt)+) => { $crate::__log!(Info, $($arg)+) };
}

/// Logs a line at [`Level::Warn`], formatted as `format!` does.
#[doc(hidden)]
#[macro_export]
macro_rules! __log_warn {
    ($($arg:tt)+) => { $crate::__log!(Warn, $($arg)+) };
}

/// Logs a line at [`Level::Error`], formatted as `format!` does.
#[doc(hidden)]
#[macro_export]
macro_rules! __log_error {
    ($($arg:tt)+) => { $crate::__log!(Error, $($arg)+) };
}
