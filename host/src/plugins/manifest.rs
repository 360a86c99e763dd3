//! `NAME.toml`: a plugin's settings beside its module.
//!
//! ```toml
//! fuel = 5000000000             # instructions per run
//! timeout_ms = 60000            # wall clock per run
//! memory_mb = 128               # linear memory per instance
//! max_attempts = 5              # default for jobs that do not say
//! retry_delays_seconds = [10, 60, 300]   # else polynomial backoff with jitter
//! queue = "long-running"        # default queue for its jobs
//! ```

use crate::model::DEFAULT_QUEUE;
use crate::retry::RetryPolicy;
use crate::runtime::Limits;
use crate::runtime::limits::MAX_MEMORY_BYTES;
use serde::Deserialize;
use std::time::Duration;

/// Default attempts per job.
pub const DEFAULT_MAX_ATTEMPTS: u32 = 3;
/// Most attempts a job may have.
pub const MAX_ATTEMPTS_LIMIT: u32 = 100;

/// What a manifest may say; every field is optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Manifest {
    fuel: Option<u64>,
    timeout_ms: Option<u64>,
    memory_mb: Option<u64>,
    max_attempts: Option<u32>,
    retry_delays_seconds: Option<Vec<u64>>,
    queue: Option<String>,
}

/// A plugin's effective settings: its manifest over the host's defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// Limits for each run.
    pub limits: Limits,
    /// Attempts for jobs that do not say.
    pub max_attempts: u32,
    /// When failed attempts are retried.
    pub retry: RetryPolicy,
    /// Queue for jobs that do not say.
    pub queue: String,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            limits: Limits::default(),
            max_attempts: DEFAULT_MAX_ATTEMPTS,
            retry: RetryPolicy::default(),
            queue: DEFAULT_QUEUE.to_owned(),
        }
    }
}

/// Checks a job's number of attempts.
pub fn validate_max_attempts(attempts: u32) -> Result<u32, String> {
    if (1..=MAX_ATTEMPTS_LIMIT).contains(&attempts) {
        Ok(attempts)
    } else {
        Err(format!(
            "max_attempts must be between 1 and {MAX_ATTEMPTS_LIMIT}, got {attempts}"
        ))
    }
}

/// Checks a queue name: 1 to 64 characters of `a-z`, `0-9`, `-`, `_`.
pub fn validate_queue_name(name: &str) -> Result<(), String> {
    let valid_chars = name
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
    if name.is_empty() || name.len() > 64 || !valid_chars {
        return Err(format!(
            "queue name `{name}` is invalid: use 1 to 64 characters of a-z, 0-9, - and _"
        ));
    }
    Ok(())
}

/// Parses and validates a manifest's text.
///
/// # Errors
/// A message naming the field that is wrong.
pub fn parse(text: &str) -> Result<Settings, String> {
    let manifest: Manifest = toml::from_str(text).map_err(|e| e.to_string())?;
    let mut settings = Settings::default();
    if let Some(fuel) = manifest.fuel {
        if fuel == 0 {
            return Err("fuel must be greater than 0".into());
        }
        settings.limits.fuel = fuel;
    }
    if let Some(ms) = manifest.timeout_ms {
        if ms == 0 {
            return Err("timeout_ms must be greater than 0".into());
        }
        settings.limits.timeout = Duration::from_millis(ms);
    }
    if let Some(mb) = manifest.memory_mb {
        let max_mb = (MAX_MEMORY_BYTES >> 20) as u64;
        if mb == 0 || mb > max_mb {
            return Err(format!(
                "memory_mb must be between 1 and {max_mb}, got {mb}"
            ));
        }
        settings.limits.memory_bytes = (mb as usize) << 20;
    }
    if let Some(attempts) = manifest.max_attempts {
        settings.max_attempts = validate_max_attempts(attempts)?;
    }
    if let Some(delays) = manifest.retry_delays_seconds {
        if delays.is_empty() {
            return Err("retry_delays_seconds must not be empty".into());
        }
        settings.retry = RetryPolicy::Delays(delays);
    }
    if let Some(queue) = manifest.queue {
        validate_queue_name(&queue)?;
        settings.queue = queue;
    }
    Ok(settings)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_manifest_gives_the_defaults() {
        assert_eq!(parse("").unwrap(), Settings::default());
    }

    #[test]
    fn every_field_is_applied() {
        let settings = parse(
            "fuel = 1000\ntimeout_ms = 250\nmemory_mb = 32\nmax_attempts = 5\n\
             retry_delays_seconds = [1, 2]\nqueue = \"long-running\"\n",
        )
        .unwrap();
        assert_eq!(settings.limits.fuel, 1000);
        assert_eq!(settings.limits.timeout, Duration::from_millis(250));
        assert_eq!(settings.limits.memory_bytes, 32 << 20);
        assert_eq!(settings.max_attempts, 5);
        assert_eq!(settings.retry, RetryPolicy::Delays(vec![1, 2]));
        assert_eq!(settings.queue, "long-running");
    }

    #[test]
    fn bad_manifests_say_what_is_wrong() {
        for (text, expected) in [
            ("fuel = 0", "fuel"),
            ("timeout_ms = 0", "timeout_ms"),
            ("memory_mb = 0", "memory_mb"),
            ("memory_mb = 999999", "memory_mb"),
            ("max_attempts = 0", "max_attempts"),
            ("retry_delays_seconds = []", "retry_delays_seconds"),
            ("queue = \"Bad Queue\"", "queue name"),
            ("fuell = 5", "fuell"),
            ("fuel = \"lots\"", "fuel"),
            ("not toml at all", ""),
        ] {
            let error = parse(text).expect_err(text);
            assert!(error.contains(expected), "{text}: {error}");
        }
    }
}
