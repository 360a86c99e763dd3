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

mod bindings {
    //! Bindings generated from `wit/world.wit`, and the component's export of
    //! [`TaskExecution`].
    #![allow(unsafe_code, missing_docs, unreachable_pub, clippy::too_many_arguments)]
    wit_bindgen::generate!({ world: "task-handler", path: "../../wit" });
    use super::TaskExecution;
    export!(TaskExecution);
}

use bindings::orchestra::plugin::agent::{self, ExecError, ExecResult};
use bindings::orchestra::plugin::log::{Level, log};
use bindings::orchestra::plugin::progress::report;
use bindings::{Guest, JobContext, JobError};
use serde_json::{Map, Value, json};

/// This plugin's defaults, embedded in the module as the `orchestra-manifest` custom
/// section for the host to read (a `task_execution.toml` beside the module overrides it
/// field by field). An unavailable agent is retried after a minute, three attempts in
/// all; 60 s of the plugin's own time is plenty, since time spent waiting for the command
/// does not count against it.
// `link_section` is an unsafe attribute because a section can clash with what the linker
// lays out; a custom section is only data that nothing executes or reads at run time.
#[allow(unsafe_code)]
#[used]
#[unsafe(link_section = "orchestra-manifest")]
static MANIFEST: [u8; 64] = *b"max_attempts = 3\nretry_delays_seconds = [60]\ntimeout_ms = 60000\n";

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
struct Task {
    task_id: String,
    command: String,
    timeout_seconds: u32,
}

impl Guest for TaskExecution {
    fn handle(job: JobContext) -> Result<String, JobError> {
        progress(5, "validating task");
        let task = parse_args(&job.args).map_err(|e| JobError::Fatal(format!("bad args: {e}")))?;

        let Some(agent) = agent::info() else {
            return Err(JobError::Fatal("job is not bound to an agent".into()));
        };
        progress(15, &format!("agent {} acquired", agent.name));
        log(
            Level::Info,
            &format!(
                "task {} (attempt {} of {}): agent {} ({}) in {}",
                task.task_id,
                job.attempt,
                job.max_attempts,
                agent.name,
                agent.id,
                agent.repository_path
            ),
        );

        progress(25, "running command");
        let outcome = agent::exec(&task.command, task.timeout_seconds * 1000);
        progress(90, "processing results");
        let result = conclude(&task, outcome)?;
        progress(100, "done");
        Ok(result)
    }
}

/// Reads and checks the job's args.
fn parse_args(args: &str) -> Result<Task, String> {
    let args: Map<String, Value> = serde_json::from_str(args).map_err(|e| e.to_string())?;
    let task_id = match args.get("task_id").and_then(Value::as_str) {
        Some(id) if !id.trim().is_empty() => id.to_owned(),
        _ => return Err("`task_id` (a non-empty string) is required".into()),
    };
    let command = match args.get("command").and_then(Value::as_str) {
        Some(command) if !command.trim().is_empty() => command.to_owned(),
        _ => return Err("`command` (a non-empty string) is required".into()),
    };
    let chars = command.chars().count();
    if chars > MAX_COMMAND_CHARS {
        return Err(format!(
            "`command` must be at most {MAX_COMMAND_CHARS} characters, got {chars}"
        ));
    }
    let timeout_seconds = match args.get("timeout_seconds") {
        None | Some(Value::Null) => DEFAULT_TIMEOUT_SECONDS,
        Some(value) => value
            .as_u64()
            .filter(|s| (1..=u64::from(MAX_TIMEOUT_SECONDS)).contains(s))
            .map(|s| s as u32)
            .ok_or_else(|| {
                format!("`timeout_seconds` must be an integer from 1 to {MAX_TIMEOUT_SECONDS}")
            })?,
    };
    Ok(Task {
        task_id,
        command,
        timeout_seconds,
    })
}

/// Turns the command's outcome into the job's result or error.
fn conclude(task: &Task, outcome: Result<ExecResult, ExecError>) -> Result<String, JobError> {
    match outcome {
        Ok(done) if done.exit_code == Some(0) => {
            log(
                Level::Info,
                &format!("command exited with code 0 after {} ms", done.duration_ms),
            );
            Ok(json!({
                "task_id": task.task_id,
                "exit_code": 0,
                "duration_ms": done.duration_ms,
                "stdout_tail": tail(&done.stdout),
            })
            .to_string())
        }
        Ok(done) => {
            let how = match done.exit_code {
                Some(code) => format!("command exited with code {code}"),
                None => "command was killed by a signal".to_owned(),
            };
            Err(JobError::Fatal(format!(
                "{how} after {} ms; output: {}",
                done.duration_ms,
                output_tail(&done)
            )))
        }
        Err(ExecError::AgentUnavailable(why)) => {
            Err(JobError::Retryable(format!("agent unavailable: {why}")))
        }
        Err(ExecError::Timeout(partial)) => Err(JobError::Fatal(format!(
            "command timed out after {} s; partial output: {}",
            task.timeout_seconds,
            output_tail(&partial)
        ))),
        Err(ExecError::SpawnFailure(why)) => Err(JobError::Fatal(format!(
            "command could not be started: {why}"
        ))),
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

/// Reports progress; the host refuses only out-of-range input, so a refusal is just logged.
fn progress(percent: u8, message: &str) {
    if let Err(e) = report(percent, message) {
        log(
            Level::Warn,
            &format!("task-execution: progress refused: {e}"),
        );
    }
}
