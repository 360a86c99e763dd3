//! The host side of the plugin's imports (`progress`, `log`, `agent`) and the per-run
//! state.
//!
//! Each import's logic is written once, on [`RunState`]; the 0.2.0 and 0.1.0 `Host` traits
//! only convert their generated types and delegate.

use super::bindings::orchestra::plugin::{agent, log, progress, types};
use super::bindings::v0_1::orchestra::plugin as v0_1;
use super::deadline::Deadline;
use super::memory::MemoryLimiter;
use super::outbound::Outbound;
use super::output::SharedSink;
use super::repo_guard::RepoGuard;
use super::{AgentInfo, ExecError, ExecResult, RunHost};
use std::sync::Arc;
use std::time::{Duration, Instant};
use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

/// Longest progress message a guest may report, in characters.
pub const MAX_PROGRESS_MESSAGE_CHARS: usize = 500;
pub use crate::model::agent::MAX_COMMAND_CHARS;
/// How long past a command's own timeout the runtime still waits for the [`RunHost`] to
/// answer before it gives up on the command (dropping its future) and reports a timeout.
const EXEC_GRACE: Duration = Duration::from_secs(10);

/// Everything one run's `Store` holds.
pub(super) struct RunState {
    pub(super) wasi: WasiCtx,
    pub(super) table: ResourceTable,
    pub(super) limiter: MemoryLimiter,
    /// When the epoch callback interrupts the guest; agent commands push it back.
    pub(super) deadline: Deadline,
    pub(super) sink: SharedSink,
    /// Also inside `sink`; kept here so an agent command can be awaited without the
    /// sink's lock.
    pub(super) host: Arc<dyn RunHost>,
    /// The rules of the repository mount, when the run has one.
    pub(super) repo: Option<RepoGuard>,
    pub(super) http: WasiHttpCtx,
    /// Which outgoing HTTP requests are sent, and what was refused.
    pub(super) outbound: Outbound,
}

impl WasiView for RunState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for RunState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        self.outbound.deadline = self.deadline.at();
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.outbound,
        }
    }
}

/// Checks a progress report; the error goes back to the guest.
pub(super) fn validate_progress(percent: u8, message: &str) -> Result<(), String> {
    if percent > 100 {
        return Err(format!("percent must be between 0 and 100, got {percent}"));
    }
    let chars = message.chars().count();
    if chars > MAX_PROGRESS_MESSAGE_CHARS {
        return Err(format!(
            "message must be at most {MAX_PROGRESS_MESSAGE_CHARS} characters, got {chars}"
        ));
    }
    Ok(())
}

/// Checks an agent command before it reaches the agent; the error is a `spawn-failure`.
pub(super) fn validate_command(command: &str, timeout_ms: u32) -> Result<(), String> {
    crate::model::agent::validate_command(command)?;
    if timeout_ms == 0 {
        return Err("timeout-ms must be greater than 0".into());
    }
    Ok(())
}

impl RunState {
    /// `progress.report`: checked, then handed to the host.
    fn report_progress(&self, percent: u8, message: &str) -> Result<(), String> {
        validate_progress(percent, message)?;
        self.host.progress(percent, message);
        Ok(())
    }

    /// `log.log`: one line of the job's log, counted against the run's allowance.
    fn log_line(&self, level: log::Level, message: &str) {
        let level = match level {
            log::Level::Trace => "trace",
            log::Level::Debug => "debug",
            log::Level::Info => "info",
            log::Level::Warn => "warn",
            log::Level::Error => "error",
        };
        self.sink
            .lock()
            .expect("log sink lock poisoned")
            .line(level, message);
    }

    /// `agent.exec`: runs a command on the bound agent with the run's clock stopped.
    async fn run_command(
        &mut self,
        command: String,
        timeout_ms: u32,
    ) -> Result<ExecResult, ExecError> {
        validate_command(&command, timeout_ms).map_err(ExecError::Spawn)?;
        let timeout = Duration::from_millis(timeout_ms.into());
        let host = self.host.clone();
        let sink = self.sink.clone();
        let log = move |level: &str, line: &str| {
            sink.lock()
                .expect("log sink lock poisoned")
                .line(level, line);
        };
        self.deadline.pause();
        let started = Instant::now();
        // A host that overruns the command's timeout is not waited for forever.
        let exec = host.exec(command, timeout, &log);
        let result = tokio::time::timeout(timeout + EXEC_GRACE, exec)
            .await
            .unwrap_or_else(|_| {
                Err(ExecError::Timeout(ExecResult {
                    exit_code: None,
                    stdout: String::new(),
                    stderr: String::new(),
                    duration_ms: started.elapsed().as_millis() as u64,
                }))
            });
        self.deadline.resume(started.elapsed());
        result
    }
}

impl progress::Host for RunState {
    fn report(&mut self, percent: u8, message: String) -> wasmtime::Result<Result<(), String>> {
        Ok(self.report_progress(percent, &message))
    }
}

impl log::Host for RunState {
    fn log(&mut self, level: log::Level, message: String) -> wasmtime::Result<()> {
        self.log_line(level, &message);
        Ok(())
    }
}

impl agent::Host for RunState {
    fn info(&mut self) -> wasmtime::Result<Option<agent::AgentInfo>> {
        Ok(self.host.agent().map(Into::into))
    }

    async fn exec(
        &mut self,
        command: String,
        timeout_ms: u32,
    ) -> wasmtime::Result<Result<agent::ExecResult, agent::ExecError>> {
        let result = self.run_command(command, timeout_ms).await;
        Ok(result.map(Into::into).map_err(Into::into))
    }
}

impl types::Host for RunState {}

impl From<AgentInfo> for agent::AgentInfo {
    fn from(info: AgentInfo) -> Self {
        Self {
            id: info.id,
            name: info.name,
            repository_path: info.repository_path,
            max_concurrency: info.max_concurrency,
            labels: info.labels,
        }
    }
}

impl From<ExecResult> for agent::ExecResult {
    fn from(result: ExecResult) -> Self {
        Self {
            exit_code: result.exit_code,
            stdout: result.stdout,
            stderr: result.stderr,
            duration_ms: result.duration_ms,
        }
    }
}

impl From<ExecError> for agent::ExecError {
    fn from(error: ExecError) -> Self {
        match error {
            ExecError::Unavailable(why) => Self::AgentUnavailable(why),
            ExecError::Timeout(partial) => Self::Timeout(partial.into()),
            ExecError::Spawn(why) => Self::SpawnFailure(why),
        }
    }
}

// The 0.1.0 world: the same logic behind its own generated types.

impl v0_1::progress::Host for RunState {
    fn report(&mut self, percent: u8, message: String) -> wasmtime::Result<Result<(), String>> {
        Ok(self.report_progress(percent, &message))
    }
}

impl v0_1::log::Host for RunState {
    fn log(&mut self, level: v0_1::log::Level, message: String) -> wasmtime::Result<()> {
        self.log_line(level.into(), &message);
        Ok(())
    }
}

impl v0_1::types::Host for RunState {}

impl From<v0_1::log::Level> for log::Level {
    fn from(level: v0_1::log::Level) -> Self {
        match level {
            v0_1::log::Level::Trace => Self::Trace,
            v0_1::log::Level::Debug => Self::Debug,
            v0_1::log::Level::Info => Self::Info,
            v0_1::log::Level::Warn => Self::Warn,
            v0_1::log::Level::Error => Self::Error,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_limits() {
        assert!(validate_progress(0, "").is_ok());
        assert!(validate_progress(100, &"x".repeat(500)).is_ok());
        assert!(validate_progress(101, "").unwrap_err().contains("101"));
        assert!(
            validate_progress(50, &"é".repeat(501))
                .unwrap_err()
                .contains("501")
        );
    }

    #[test]
    fn command_limits() {
        assert!(validate_command("fix the build", 1).is_ok());
        assert!(validate_command(&"é".repeat(MAX_COMMAND_CHARS), 1).is_ok());
        assert!(validate_command("", 1).unwrap_err().contains("empty"));
        assert!(validate_command(" \n\t", 1).unwrap_err().contains("empty"));
        assert!(
            validate_command(&"x".repeat(MAX_COMMAND_CHARS + 1), 1)
                .unwrap_err()
                .contains("2001")
        );
        assert!(
            validate_command("ls", 0)
                .unwrap_err()
                .contains("timeout-ms")
        );
    }
}
