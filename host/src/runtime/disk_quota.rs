//! The disk quota of a run: every byte it writes under `/repo` counts (overwrites
//! included; deleting gives nothing back), and so does a file's growth by `set-size`.
//! Past the quota a write fails with `insufficient-space` (ENOSPC).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use wasmtime_wasi::async_trait;
use wasmtime_wasi::p2::{DynOutputStream, OutputStream, Pollable, StreamError, StreamResult};

/// Bytes a run may still write, shared by its descriptors and output streams.
#[derive(Debug)]
pub(super) struct DiskQuota {
    limit: u64,
    used: AtomicU64,
    /// Whether a write was refused: a failure of the run is then named `disk_quota`.
    refused: AtomicBool,
}

impl DiskQuota {
    pub(super) fn new(limit: u64) -> Self {
        Self {
            limit,
            used: AtomicU64::new(0),
            refused: AtomicBool::new(false),
        }
    }

    /// The quota in bytes.
    pub(super) fn limit(&self) -> u64 {
        self.limit
    }

    /// Counts `bytes` about to be written; `false` (and remembered) when they do not fit.
    pub(super) fn take(&self, bytes: u64) -> bool {
        let fits = self
            .used
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |used| {
                used.checked_add(bytes).filter(|total| *total <= self.limit)
            })
            .is_ok();
        if !fits {
            self.refused.store(true, Ordering::Relaxed);
        }
        fits
    }

    /// Returns `bytes` taken for a write that did not happen.
    pub(super) fn give_back(&self, bytes: u64) {
        self.used.fetch_sub(bytes, Ordering::Relaxed);
    }

    /// Bytes still allowed.
    fn remaining(&self) -> u64 {
        self.limit.saturating_sub(self.used.load(Ordering::Relaxed))
    }

    /// Whether a write was refused during the run.
    pub(super) fn refused(&self) -> bool {
        self.refused.load(Ordering::Relaxed)
    }
}

/// An output stream of a file under `/repo` whose writes count against the quota.
pub(super) struct QuotaStream {
    inner: DynOutputStream,
    quota: Arc<DiskQuota>,
}

impl QuotaStream {
    pub(super) fn wrap(inner: DynOutputStream, quota: Arc<DiskQuota>) -> DynOutputStream {
        Box::new(Self { inner, quota })
    }
}

/// The stream error a guest reads as `insufficient-space`.
fn no_space() -> StreamError {
    let error = std::io::Error::from_raw_os_error(libc::ENOSPC);
    StreamError::LastOperationFailed(wasmtime::Error::new(error))
}

#[async_trait]
impl Pollable for QuotaStream {
    async fn ready(&mut self) {
        self.inner.ready().await;
    }
}

#[async_trait]
impl OutputStream for QuotaStream {
    fn write(&mut self, bytes: bytes::Bytes) -> StreamResult<()> {
        let len = bytes.len() as u64;
        if !self.quota.take(len) {
            return Err(no_space());
        }
        self.inner
            .write(bytes)
            .inspect_err(|_| self.quota.give_back(len))
    }

    fn flush(&mut self) -> StreamResult<()> {
        self.inner.flush()
    }

    /// The inner stream's permit, cut to what the quota still allows; once nothing is
    /// left, the next write fails (not this call, which also ends a successful flush).
    fn check_write(&mut self) -> StreamResult<usize> {
        let permit = self.inner.check_write()?;
        let remaining = usize::try_from(self.quota.remaining()).unwrap_or(usize::MAX);
        Ok(match remaining {
            0 => permit,
            left => permit.min(left),
        })
    }

    async fn cancel(&mut self) {
        self.inner.cancel().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasmtime::component::ResourceTable;
    use wasmtime_wasi::filesystem::{WasiFilesystemCtx, WasiFilesystemCtxView};
    use wasmtime_wasi::p2::bindings::filesystem::types::{ErrorCode, Host};
    use wasmtime_wasi::p2::pipe::MemoryOutputPipe;

    #[test]
    fn a_refused_stream_write_is_insufficient_space_to_the_guest() {
        let quota = Arc::new(DiskQuota::new(1));
        let mut stream = QuotaStream::wrap(Box::new(MemoryOutputPipe::new(64)), quota);
        assert_eq!(
            stream.check_write().unwrap(),
            1,
            "the permit is cut to the quota"
        );
        let refused = stream.write(bytes::Bytes::from_static(b"xy"));
        let Err(StreamError::LastOperationFailed(error)) = refused else {
            panic!("the write went through");
        };
        let mut table = ResourceTable::new();
        let error = table.push(error).unwrap();
        let mut ctx = WasiFilesystemCtx::default();
        let mut view = WasiFilesystemCtxView {
            ctx: &mut ctx,
            table: &mut table,
        };
        let code = view.filesystem_error_code(error).unwrap();
        assert_eq!(code, Some(ErrorCode::InsufficientSpace));
    }

    #[test]
    fn writes_fit_up_to_the_limit_and_a_refusal_is_remembered() {
        let quota = DiskQuota::new(10);
        assert!(quota.take(6));
        assert!(quota.take(4));
        assert!(!quota.refused());
        assert!(!quota.take(1));
        assert!(quota.refused());
        quota.give_back(4);
        assert!(quota.take(4), "bytes given back can be written again");
        assert!(!quota.take(u64::MAX), "no overflow");
    }
}
