//! Per-run limits from the plugin manifest: fuel, wall-clock timeout and memory. A run
//! that breaks its limit fails with the matching error kind, and jobs running beside it
//! are not disturbed.

use crate::common::{Options, Orchestra, TERMINAL, TIMEOUT, error_kind, state};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

const MIB: u64 = 1 << 20;

/// A finished limited job and how long it took from submission.
struct Limited {
    job: Value,
    elapsed: Duration,
}

/// Starts a host with `plugin` under `manifest` (and `echo`), submits one `plugin` job
/// with `args` and a single attempt, plus echo jobs at the same time; waits for all and
/// asserts the echo jobs succeeded.
fn run_limited(plugin: &str, manifest: &str, args: Value) -> Limited {
    let host = Orchestra::start(
        Options::new()
            .plugin(plugin)
            .plugin("echo")
            .manifest(plugin, manifest),
    );
    let submitted = Instant::now();
    let id = host.submit_job(json!({"plugin": plugin, "args": args, "max_attempts": 1}));
    let echoes: Vec<String> = (0..3)
        .map(|n| host.submit("echo", json!({"beside": n})))
        .collect();
    let job = host.wait_for_state(&id, &TERMINAL, TIMEOUT);
    let elapsed = submitted.elapsed();
    for echo in host.wait_for_all(&echoes, &["succeeded"], TIMEOUT) {
        assert_eq!(echo["result"]["beside"], echo["args"]["beside"], "{echo:#}");
    }
    Limited { job, elapsed }
}

/// Asserts the job failed with `kind` after its one attempt.
fn assert_failed_with(job: &Value, kind: &str) {
    assert_eq!(state(job), "failed", "{job:#}");
    assert_eq!(error_kind(job), Some(kind), "{job:#}");
    assert_eq!(job["attempt"], 1, "{job:#}");
}

fn usage(job: &Value, field: &str) -> u64 {
    job["usage"][field]
        .as_u64()
        .unwrap_or_else(|| panic!("usage.{field} is reported: {job:#}"))
}

#[test]
fn endless_spin_runs_out_of_fuel() {
    const FUEL: u64 = 100_000_000;
    let Limited { job, .. } = run_limited("spin", &format!("fuel = {FUEL}\n"), json!({}));
    assert_failed_with(&job, "out_of_fuel");
    let used = usage(&job, "fuel_consumed");
    assert!(
        (FUEL * 9 / 10..=FUEL).contains(&used),
        "the whole budget of {FUEL} is accounted, got {used}"
    );
}

#[test]
fn a_panic_is_a_trap_that_names_the_panic() {
    let Limited { job, .. } = run_limited("flaky", "", json!({"panic": true}));
    assert_failed_with(&job, "trap");
    let message = job["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("flaky panics on attempt 1"),
        "the trap carries the guest's panic message: {job:#}"
    );
}

#[test]
fn endless_spin_hits_its_timeout() {
    let manifest = "timeout_ms = 500\nfuel = 1000000000000000\n";
    let Limited { job, elapsed } = run_limited("spin", manifest, json!({}));
    assert_failed_with(&job, "timeout");
    assert!(
        elapsed < Duration::from_secs(10),
        "a 500 ms limit took {elapsed:?}"
    );
    assert!(usage(&job, "wall_ms") >= 500, "{job:#}");
}

#[test]
fn long_sleep_hits_its_timeout_quickly() {
    let Limited { job, elapsed } =
        run_limited("sleep", "timeout_ms = 500\n", json!({"ms": 10_000}));
    assert_failed_with(&job, "timeout");
    assert!(
        elapsed < Duration::from_secs(5),
        "a 500 ms limit on a 10 s sleep took {elapsed:?}"
    );
    assert!(usage(&job, "wall_ms") < 5_000, "{job:#}");
}

#[test]
fn allocation_beyond_the_memory_limit_fails() {
    let Limited { job, .. } = run_limited("memhog", "memory_mb = 16\n", json!({"mb": 64}));
    assert_failed_with(&job, "memory_limit");
    let peak = usage(&job, "memory_peak_bytes");
    assert!(
        peak <= 16 * MIB,
        "memory never grew past the limit: peak {peak}"
    );
}

#[test]
fn allocation_within_the_memory_limit_succeeds_and_is_measured() {
    let Limited { job, .. } = run_limited("memhog", "memory_mb = 16\n", json!({"mb": 4}));
    assert_eq!(state(&job), "succeeded", "{job:#}");
    assert_eq!(job["result"], json!({"mb": 4}));
    let peak = usage(&job, "memory_peak_bytes");
    assert!(
        (4 * MIB..=16 * MIB).contains(&peak),
        "peak memory {peak} is between 4 and 16 MiB"
    );
}
