//! [`Error`]: why a job did not succeed, and which errors `?` turns into which kind.
//!
//! | from | kind | why |
//! |---|---|---|
//! | [`std::io::Error`] | retryable | files and streams are outside the job: what failed may work later |
//! | [`serde_json::Error`] | fatal | the same text will not parse on another attempt |
//! | [`ExecError::AgentUnavailable`] | retryable | the agent may be free, or back, later |
//! | [`ExecError::Timeout`], [`ExecError::SpawnFailure`] | fatal | the same command would do the same |
//!
//! An error that should be of the other kind is made with [`Error::retryable`] or
//! [`Error::fatal`] instead, e.g. `.map_err(Error::fatal)` for a file that must be there.

use crate::agent::ExecError;
use crate::bindings::JobError;
use std::fmt;

/// Why a job did not succeed: the host retries a retryable error and fails the job at once
/// on a fatal one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// A transient failure: the host runs the job again, by its retry policy, while
    /// attempts remain.
    Retryable(String),
    /// A permanent failure: the job fails at once, whatever attempts remain.
    Fatal(String),
}

impl Error {
    /// A transient failure, with `message`.
    pub fn retryable(message: impl fmt::Display) -> Self {
        Self::Retryable(message.to_string())
    }

    /// A permanent failure, with `message`.
    pub fn fatal(message: impl fmt::Display) -> Self {
        Self::Fatal(message.to_string())
    }

    /// Args the handler cannot use: fatal, with `bad args: ` and `reason`.
    pub fn bad_args(reason: impl fmt::Display) -> Self {
        Self::Fatal(format!("bad args: {reason}"))
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Retryable(message) | Self::Fatal(message) => f.write_str(message),
        }
    }
}

impl std::error::Error for Error {}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Self::retryable(e)
    }
}

impl From<serde_json::Error> for Error {
    fn from(e: serde_json::Error) -> Self {
        Self::fatal(e)
    }
}

impl From<ExecError> for Error {
    fn from(e: ExecError) -> Self {
        match e {
            ExecError::AgentUnavailable(why) => {
                Self::retryable(format!("agent unavailable: {why}"))
            }
            ExecError::Timeout(partial) => Self::fatal(format!(
                "command timed out after {} ms",
                partial.duration_ms
            )),
            ExecError::SpawnFailure(why) => {
                Self::fatal(format!("command could not be started: {why}"))
            }
        }
    }
}

impl From<Error> for JobError {
    fn from(e: Error) -> Self {
        match e {
            Error::Retryable(message) => Self::Retryable(message),
            Error::Fatal(message) => Self::Fatal(message),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::ExecResult;
    use std::io;

    /// `e` through `?`, as a handler would return it.
    fn question_mark<E>(e: E) -> Error
    where
        Error: From<E>,
    {
        let failing = || -> Result<(), Error> { Err(e)? };
        failing().unwrap_err()
    }

    #[test]
    fn io_errors_are_retryable() {
        let e = io::Error::new(io::ErrorKind::TimedOut, "the disk is slow");
        assert_eq!(
            question_mark(e),
            Error::Retryable("the disk is slow".into())
        );
    }

    #[test]
    fn json_errors_are_fatal() {
        let e = serde_json::from_str::<u8>("300").unwrap_err();
        assert_eq!(
            question_mark(e),
            Error::Fatal("invalid value: integer `300`, expected u8 at line 1 column 3".into())
        );
    }

    #[test]
    fn only_an_unavailable_agent_is_retryable() {
        let partial = ExecResult {
            exit_code: None,
            stdout: "half".into(),
            stderr: String::new(),
            duration_ms: 30_000,
        };
        assert_eq!(
            question_mark(ExecError::AgentUnavailable("busy".into())),
            Error::Retryable("agent unavailable: busy".into())
        );
        assert_eq!(
            question_mark(ExecError::Timeout(partial)),
            Error::Fatal("command timed out after 30000 ms".into())
        );
        assert_eq!(
            question_mark(ExecError::SpawnFailure("no such file".into())),
            Error::Fatal("command could not be started: no such file".into())
        );
    }

    #[test]
    fn errors_become_the_contracts_job_error() {
        assert_eq!(
            JobError::from(Error::retryable("later")),
            JobError::Retryable("later".into())
        );
        assert_eq!(
            JobError::from(Error::bad_args("`ms` is missing")),
            JobError::Fatal("bad args: `ms` is missing".into())
        );
    }

    #[test]
    fn an_error_displays_its_message() {
        assert_eq!(Error::fatal("gone").to_string(), "gone");
    }
}
