//! The host side of the plugin's imports (`progress`, `log`) and the per-run state.

use super::bindings::orchestra::plugin::{log, progress, types};
use super::limits::MemoryLimiter;
use super::output::SharedSink;
use std::time::Instant;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

/// Longest progress message a guest may report, in characters.
pub const MAX_PROGRESS_MESSAGE_CHARS: usize = 500;

/// Everything one run's `Store` holds.
pub(super) struct RunState {
    pub(super) wasi: WasiCtx,
    pub(super) table: ResourceTable,
    pub(super) limiter: MemoryLimiter,
    /// When the epoch callback interrupts the guest.
    pub(super) deadline: Instant,
    pub(super) sink: SharedSink,
}

impl WasiView for RunState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
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

impl progress::Host for RunState {
    fn report(&mut self, percent: u8, message: String) -> wasmtime::Result<Result<(), String>> {
        Ok(validate_progress(percent, &message).map(|()| {
            let sink = self.sink.lock().expect("log sink lock poisoned");
            sink.host().progress(percent, &message);
        }))
    }
}

impl log::Host for RunState {
    fn log(&mut self, level: log::Level, message: String) -> wasmtime::Result<()> {
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
            .line(level, &message);
        Ok(())
    }
}

impl types::Host for RunState {}

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
}
