//! What one run may use, the host's defaults, and the operator's ceilings on what a
//! plugin may ask for.

use super::outbound::HostPattern;
use std::time::Duration;

/// Default fuel per run (about a second or two of guest CPU).
pub const DEFAULT_FUEL: u64 = 10_000_000_000;
/// Default wall-clock limit per run.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(300);
/// Default size of a run's result (JSON text).
pub const DEFAULT_RESULT_BYTES: usize = 1 << 20;
/// Default bytes of log a run may write: stdout, stderr and `log` calls together.
pub const DEFAULT_LOG_BYTES: usize = 4 << 20;
/// Default linear-memory limit per instance.
pub const DEFAULT_MEMORY_BYTES: usize = 256 << 20;
/// The largest memory limit a plugin may ask for: the size of a pool slot.
pub const MAX_MEMORY_BYTES: usize = 4 << 30;
/// Default bytes a run may write under `/repo`.
pub const DEFAULT_DISK_QUOTA_BYTES: u64 = 1 << 30;

/// What one run may use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Fuel budget.
    pub fuel: u64,
    /// Wall-clock budget, instantiation included.
    pub timeout: Duration,
    /// Longest result (JSON text) the run may return.
    pub result_bytes: usize,
    /// Most log bytes the run may write before its log is cut.
    pub log_bytes: usize,
    /// Most bytes of linear memory per memory.
    pub memory_bytes: usize,
    /// Most bytes the run may write under `/repo`.
    pub disk_quota_bytes: u64,
    /// Where the run may send HTTP requests: nowhere by default.
    pub outbound_hosts: Vec<HostPattern>,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            fuel: DEFAULT_FUEL,
            timeout: DEFAULT_TIMEOUT,
            result_bytes: DEFAULT_RESULT_BYTES,
            log_bytes: DEFAULT_LOG_BYTES,
            memory_bytes: DEFAULT_MEMORY_BYTES,
            disk_quota_bytes: DEFAULT_DISK_QUOTA_BYTES,
            outbound_hosts: Vec::new(),
        }
    }
}

/// The operator's ceilings on the limits a plugin may ask for, in manifest units.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Maxima {
    /// Most fuel per run.
    pub fuel: u64,
    /// Longest wall-clock limit, in milliseconds.
    pub timeout_ms: u64,
    /// Most linear memory, in MiB.
    pub memory_mb: u64,
    /// Most attempts a plugin may give its jobs by default.
    pub max_attempts: u32,
    /// Longest result, in MiB.
    pub result_mb: u64,
    /// Most log per run, in MiB.
    pub log_mb: u64,
    /// Most bytes written under `/repo` per run, in MiB.
    pub disk_quota_mb: u64,
    /// The hosts any plugin may reach at most: none by default.
    pub outbound_hosts: Vec<HostPattern>,
}

impl Default for Maxima {
    fn default() -> Self {
        Self {
            fuel: 1_000_000_000_000,
            timeout_ms: 3_600_000,
            memory_mb: (MAX_MEMORY_BYTES >> 20) as u64,
            max_attempts: 25,
            result_mb: 16,
            log_mb: 64,
            disk_quota_mb: 1024,
            outbound_hosts: Vec::new(),
        }
    }
}
