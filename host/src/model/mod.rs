//! The domain: plain data and the rules it obeys, shared by every layer. Nothing here
//! does I/O beyond looking at an agent's repository.
//!
//! - [`job`]: jobs, their states, errors, progress, usage, logs and history.
//! - [`agent`]: agents and tasks.
//! - [`alert`]: alert rules, their incidents, and webhook signatures.
//! - [`limits`]: what a run may use, and the operator's ceilings.
//! - [`outbound`]: the hosts a run may send HTTP requests to.
//! - [`rules`]: priorities, queue names and attempts.
//! - [`invalid`]: a value refused, with its field.
//! - [`names`]: length limits of ids and names, and how a bad one is quoted back.
//! - [`repository`]: where a repository may lie.
//! - [`retry`]: retry policies.
//! - [`stats`]: run statistics over time (the rollup and its series).
//! - [`token`]: API tokens and their roles.
//! - [`time`] and [`json`]: times and JSON text as clients give and see them.

pub mod agent;
pub mod alert;
pub mod invalid;
pub mod job;
pub mod json;
pub mod limits;
pub mod names;
pub mod outbound;
pub mod repository;
pub mod retry;
pub mod rules;
pub mod stats;
pub mod time;
pub mod token;

pub use invalid::Invalid;
pub use job::*;
pub use json::JsonText;
pub use rules::{DEFAULT_MAX_ATTEMPTS, DEFAULT_QUEUE, validate_priority};
pub use time::{Millis, now_ms, rfc3339};

/// Lowercase hex of `bytes` (digests and tokens are shown so).
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
