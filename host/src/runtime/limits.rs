//! Per-run limits: the memory limiter and the resource settings a plugin may override.

use std::time::Duration;
use wasmtime::ResourceLimiter;

/// Default fuel per run (about a second or two of guest CPU).
pub const DEFAULT_FUEL: u64 = 10_000_000_000;
/// Default wall-clock limit per run.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(300);
/// Default linear-memory limit per instance.
pub const DEFAULT_MEMORY_BYTES: usize = 256 << 20;
/// The largest memory limit a plugin may ask for: the size of a pool slot.
pub const MAX_MEMORY_BYTES: usize = 4 << 30;
/// Default bytes a run may write under `/repo`.
pub const DEFAULT_DISK_QUOTA_BYTES: u64 = 1 << 30;

/// What one run may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Fuel budget.
    pub fuel: u64,
    /// Wall-clock budget, instantiation included.
    pub timeout: Duration,
    /// Most bytes of linear memory per memory.
    pub memory_bytes: usize,
    /// Most bytes the run may write under `/repo`.
    pub disk_quota_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            fuel: DEFAULT_FUEL,
            timeout: DEFAULT_TIMEOUT,
            memory_bytes: DEFAULT_MEMORY_BYTES,
            disk_quota_bytes: DEFAULT_DISK_QUOTA_BYTES,
        }
    }
}

/// Refuses memory growth past the limit and remembers that it did, since a refused
/// growth shows up later as an ordinary trap (a Rust guest aborts).
#[derive(Debug)]
pub(super) struct MemoryLimiter {
    limit: usize,
    /// Largest memory size granted so far.
    pub(super) peak: usize,
    /// Whether a growth was refused.
    pub(super) denied: bool,
}

impl MemoryLimiter {
    pub(super) fn new(limit: usize) -> Self {
        Self {
            limit,
            peak: 0,
            denied: false,
        }
    }
}

/// Most table elements an instance may grow a table to.
const MAX_TABLE_ELEMENTS: usize = 1 << 20;

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let allowed = desired <= self.limit && maximum.is_none_or(|max| desired <= max);
        if allowed {
            self.peak = self.peak.max(desired);
        } else {
            self.denied = true;
        }
        Ok(allowed)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= MAX_TABLE_ELEMENTS && maximum.is_none_or(|max| desired <= max))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn growth_past_the_limit_is_refused_and_remembered() {
        let mut limiter = MemoryLimiter::new(1 << 20);
        assert!(limiter.memory_growing(0, 65536, None).unwrap());
        assert!(limiter.memory_growing(65536, 1 << 20, None).unwrap());
        assert!(!limiter.denied);
        assert!(!limiter.memory_growing(1 << 20, 2 << 20, None).unwrap());
        assert!(limiter.denied);
        assert_eq!(limiter.peak, 1 << 20);
    }

    #[test]
    fn a_declared_maximum_is_respected() {
        let mut limiter = MemoryLimiter::new(1 << 30);
        assert!(!limiter.memory_growing(0, 2 << 20, Some(1 << 20)).unwrap());
    }
}
