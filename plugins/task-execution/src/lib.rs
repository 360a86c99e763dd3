//! `task-execution`: runs one command on the job's agent and reports how it went.
//!
//! Cargo names the module `task_execution.wasm` (a library's file name cannot hold `-`),
//! so the host serves it as plugin `task_execution`.
//!
//! The job must be bound to an agent (see `agent` in `wit/world.wit`); the host runs the
//! command with the agent's executable in the agent's repository and streams its output
//! into the job's log. The steps, with the progress each reports:
//!
//! 1. validate the args (5 %);
//! 2. acquire the agent with `agent::info` (15 %); a job bound to none fails at once;
//! 3. run the command with `agent::exec` (25 % while it runs);
//! 4. process the result (90 %), then 100 % on success.
//!
//! Args (a JSON object): `task_id` (string, required), `command` (string of 1 to 2000
//! characters, required), `timeout_seconds` (integer from 1 to 86400, default 1200).
//!
//! Result, when the command exits with code 0:
//! `{"task_id", "exit_code": 0, "duration_ms", "stdout_tail"}`, the tail being the last
//! 4 KiB of stdout. Failures:
//!
//! - a non-zero exit, or a process killed by a signal: fatal, with the exit code and the
//!   last 4 KiB of stderr (or of stdout when stderr is empty);
//! - the agent is unavailable: retryable; the embedded manifest retries after 60 s, three
//!   attempts in all;
//! - the command timed out: fatal, with its partial output;
//! - the command could not be started: fatal.

use orchestra_plugin::agent::{self, ExecError, ExecResult};
use orchestra_plugin::{Error, Handler, Job, log, progress};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::time::Duration;

// This plugin's defaults, embedded in the module for the host to read (a
// `task_execution.toml` beside the module overrides them field by field). An unavailable
// agent is retried after a minute, three attempts in all; 60 s of the plugin's own time is
// plenty, since time spent waiting for the command does not count against it.
orchestra_plugin::manifest!("max_attempts = 3\nretry_delays_seconds = [60]\ntimeout_ms = 60000\n");

/// Timeout of a command whose args do not say.
const DEFAULT_TIMEOUT_SECONDS: u32 = 1200;
/// Longest timeout a job may ask for: a day.
const MAX_TIMEOUT_SECONDS: u32 = 86_400;
/// Longest command, in characters (the host refuses longer ones too).
const MAX_COMMAND_CHARS: usize = 2000;
/// How much of the command's output goes into a result or an error message.
const TAIL_BYTES: usize = 4096;

/// The handler exported to the host.
struct TaskExecution;

/// What the job asks for.
#[derive(Deserialize)]
struct Task {
    /// The task the job runs, for the result.
    task_id: String,
    /// What the agent runs.
    command: String,
    /// How long the command may run ([`DEFAULT_TIMEOUT_SECONDS`] when not given).
    timeout_seconds: Option<u32>,
}

impl Handler for TaskExecution {
    fn handle(job: Job) -> Result<impl Serialize, Error> {
        progress(5, "validating task");
        let task: Task = job.args()?;
        let timeout_seconds = check(&task)?;

        let Some(agent) = agent::info() else {
            return Err(Error::fatal("job is not bound to an agent"));
        };
        progress(15, &format!("agent {} acquired", agent.name));
        log::info!(
            "task {} (attempt {} of {}): agent {} ({}) in {}",
            task.task_id,
            job.attempt(),
            job.max_attempts(),
            agent.name,
            agent.id,
            agent.repository_path
        );

        progress(25, "running command");
        let timeout = Duration::from_secs(timeout_seconds.into());
        let outcome = agent::exec(&task.command, timeout);
        progress(90, "processing results");
        let result = conclude(&task.task_id, timeout_seconds, outcome)?;
        progress(100, "done");
        Ok(result)
    }
}

/// Checks what serde cannot: the task's id and command are not blank, the command is not
/// too long, and its timeout is in range. Returns the timeout, in seconds.
fn check(task: &Task) -> Result<u32, Error> {
    if task.task_id.trim().is_empty() {
        return Err(Error::bad_args(
            "`task_id` (a non-empty string) is required",
        ));
    }
    if task.command.trim().is_empty() {
        return Err(Error::bad_args(
            "`command` (a non-empty string) is required",
        ));
    }
    let chars = task.command.chars().count();
    if chars > MAX_COMMAND_CHARS {
        return Err(Error::bad_args(format!(
            "`command` must be at most {MAX_COMMAND_CHARS} characters, got {chars}"
        )));
    }
    match task.timeout_seconds {
        None => Ok(DEFAULT_TIMEOUT_SECONDS),
        Some(seconds) if (1..=MAX_TIMEOUT_SECONDS).contains(&seconds) => Ok(seconds),
        Some(_) => Err(Error::bad_args(format!(
            "`timeout_seconds` must be an integer from 1 to {MAX_TIMEOUT_SECONDS}"
        ))),
    }
}

/// Turns the command's outcome into the job's result or error.
fn conclude(
    task_id: &str,
    timeout_seconds: u32,
    outcome: Result<ExecResult, ExecError>,
) -> Result<Value, Error> {
    match outcome {
        Ok(done) if done.exit_code == Some(0) => {
            log::info!("command exited with code 0 after {} ms", done.duration_ms);
            Ok(json!({
                "task_id": task_id,
                "exit_code": 0,
                "duration_ms": done.duration_ms,
                "stdout_tail": tail(&done.stdout),
            }))
        }
        Ok(done) => {
            let how = match done.exit_code {
                Some(code) => format!("command exited with code {code}"),
                None => "command was killed by a signal".to_owned(),
            };
            Err(Error::fatal(format!(
                "{how} after {} ms; output: {}",
                done.duration_ms,
                output_tail(&done)
            )))
        }
        Err(ExecError::Timeout(partial)) => Err(Error::fatal(format!(
            "command timed out after {timeout_seconds} s; partial output: {}",
            output_tail(&partial)
        ))),
        // An unavailable agent is retryable, a command that could not start fatal.
        Err(other) => Err(other.into()),
    }
}

/// The end of stderr, or of stdout when stderr is empty, for an error message.
fn output_tail(result: &ExecResult) -> &str {
    let output = if result.stderr.trim().is_empty() {
        &result.stdout
    } else {
        &result.stderr
    };
    if output.trim().is_empty() {
        "(none)"
    } else {
        tail(output)
    }
}

/// The last [`TAIL_BYTES`] of `text` at most, starting on a character boundary.
fn tail(text: &str) -> &str {
    let mut start = text.len().saturating_sub(TAIL_BYTES);
    while !text.is_char_boundary(start) {
        start += 1;
    }
    &text[start..]
}

orchestra_plugin::export!(TaskExecution);
