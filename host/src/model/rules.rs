//! The rules a job's settings obey wherever they come from (a client, a plugin's manifest,
//! a recurring job, a workflow step): priorities, queue names and attempts.

use super::names::shown;

/// Lowest allowed priority.
pub const MIN_PRIORITY: i32 = -100;
/// Highest allowed priority.
pub const MAX_PRIORITY: i32 = 100;
/// Checks a job priority.
pub fn validate_priority(priority: i32) -> Result<i32, String> {
    if (MIN_PRIORITY..=MAX_PRIORITY).contains(&priority) {
        Ok(priority)
    } else {
        Err(format!(
            "priority must be between {MIN_PRIORITY} and {MAX_PRIORITY}, got {priority}"
        ))
    }
}

/// The queue jobs go to when neither the client nor the plugin names one.
pub const DEFAULT_QUEUE: &str = "default";

/// Default attempts per job.
pub const DEFAULT_MAX_ATTEMPTS: u32 = 3;
/// Most attempts a job may have.
pub const MAX_ATTEMPTS_LIMIT: u32 = 100;

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
            "queue name `{}` is invalid: use 1 to 64 characters of a-z, 0-9, - and _",
            shown(name)
        ));
    }
    Ok(())
}
