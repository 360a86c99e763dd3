//! The agent the job is bound to: the only way a handler reaches a process.
//!
//! An agent is a command-line program the host knows, with a repository it works in. A job
//! is bound to at most one when it is submitted; [`info`] says which, and [`exec`] runs a
//! command on it. Its output is streamed into the job's log as it is written.

use crate::bindings::orchestra::plugin::agent;
use std::time::Duration;

pub use agent::{AgentInfo, ExecError, ExecResult, info};

/// Runs `command` on the job's agent and waits for it to finish, for at most `timeout`
/// (in whole milliseconds, up to `u32::MAX`).
///
/// The host starts the agent's executable with `command` as one argument (no shell of its
/// own), in the agent's repository, and kills it at the timeout. Time spent here does not
/// count against the run's wall-clock limit.
///
/// # Errors
///
/// [`ExecError::AgentUnavailable`] when the job is not bound to an agent or its agent
/// cannot take a command now, [`ExecError::Timeout`] with what the command had written,
/// [`ExecError::SpawnFailure`] when it was refused (empty, longer than 2000 characters, a
/// zero timeout) or could not be started. `?` turns each into an [`Error`](crate::Error).
pub fn exec(command: &str, timeout: Duration) -> Result<ExecResult, ExecError> {
    let timeout_ms = u32::try_from(timeout.as_millis()).unwrap_or(u32::MAX);
    agent::exec(command, timeout_ms)
}
