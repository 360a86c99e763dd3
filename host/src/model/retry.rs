//! Retry policies: how long a failed job waits before its next attempt. Pure.

use std::time::Duration;

/// When a failed attempt is tried again.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum RetryPolicy {
    /// Fixed waits in seconds, one per retry (like Hangfire's `DelaysInSeconds`); the last
    /// one repeats when attempts outnumber them.
    Delays(Vec<u64>),
    /// Polynomial backoff with jitter: after attempt `n`, `n⁴ + 15` seconds plus up to
    /// `30 × n` seconds at random (Sidekiq's and Hangfire's curve).
    #[default]
    Backoff,
}

impl RetryPolicy {
    /// The wait after failed attempt `attempt` (1-based). `random` is in `[0, 1)`.
    pub fn delay(&self, attempt: u32, random: f64) -> Duration {
        let attempt = attempt.max(1);
        match self {
            RetryPolicy::Delays(delays) => {
                let index = (attempt as usize - 1).min(delays.len().saturating_sub(1));
                Duration::from_secs(delays.get(index).copied().unwrap_or(0))
            }
            RetryPolicy::Backoff => {
                let n = u64::from(attempt.min(100));
                let base = n.pow(4) + 15;
                let jitter = Duration::from_secs(30 * n).mul_f64(random.clamp(0.0, 0.999_999));
                Duration::from_secs(base) + jitter
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_delays_are_used_in_order_and_the_last_repeats() {
        let policy = RetryPolicy::Delays(vec![60, 300, 900]);
        let waits: Vec<u64> = (1..=5).map(|a| policy.delay(a, 0.5).as_secs()).collect();
        assert_eq!(waits, [60, 300, 900, 900, 900]);
    }

    #[test]
    fn backoff_grows_and_jitter_stays_in_its_window() {
        let policy = RetryPolicy::Backoff;
        assert_eq!(policy.delay(1, 0.0), Duration::from_secs(16));
        assert_eq!(policy.delay(2, 0.0), Duration::from_secs(31));
        assert_eq!(policy.delay(3, 0.0), Duration::from_secs(96));
        let high = policy.delay(1, 0.999);
        assert!(high > Duration::from_secs(45) && high < Duration::from_secs(46));
        assert!(policy.delay(5, 0.0) > policy.delay(4, 0.999));
    }

    #[test]
    fn absurd_attempts_do_not_overflow() {
        let wait = RetryPolicy::Backoff.delay(u32::MAX, 0.5);
        assert!(wait > Duration::from_secs(100_000_000));
    }
}
