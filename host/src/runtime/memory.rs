//! The memory limiter that holds a run to its limit.

use wasmtime::ResourceLimiter;

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
