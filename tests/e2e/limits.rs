//! Per-run limits from the plugin manifest: fuel, wall-clock timeout and memory. A run
//! that breaks its limit fails with the matching error kind, and jobs running beside it
//! are not disturbed.

use crate::common::{Options, Orchestra, TERMINAL, TIMEOUT, error_kind, plugin_module, state};
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

#[test]
fn a_result_over_its_limit_fails_at_once_with_result_too_large() {
    let host = Orchestra::start(
        Options::new()
            .plugin("flood")
            .plugin_as("flood", "roomy")
            .manifest("roomy", "result_mb = 3\n"),
    );
    let submit = |plugin: &str, bytes: u64| {
        host.submit_job(json!({
            "plugin": plugin, "args": {"result_bytes": bytes}, "max_attempts": 3
        }))
    };
    let too_large = submit("flood", 2 * MIB);
    let at_the_limit = submit("flood", MIB);
    let allowed_more = submit("roomy", 2 * MIB);
    let job = host.wait_for_state(&too_large, &TERMINAL, TIMEOUT);
    assert_failed_with(&job, "result_too_large");
    for (id, bytes) in [(at_the_limit, MIB), (allowed_more, 2 * MIB)] {
        let job = host.wait_for_state(&id, &["succeeded"], TIMEOUT);
        let result = job["result"].as_str().expect("a string result");
        assert_eq!(result.len() as u64, bytes - 2, "the result is kept whole");
    }
}

#[test]
fn limits_above_the_operator_maxima_are_clamped_and_shown() {
    const MAX_FUEL: u64 = 100_000_000;
    let host = Orchestra::start(
        Options::new()
            .config(&format!("max_fuel = {MAX_FUEL}\nmax_log_mb = 2\n"))
            .plugin("spin")
            .manifest("spin", "fuel = 100000000000\nlog_mb = 1\n"),
    );
    let spin = host.plugin("spin").expect("spin is listed");
    assert_eq!(spin["limits"]["fuel"], MAX_FUEL, "{spin:#}");
    assert_eq!(spin["limits"]["log_mb"], 1, "within its maximum: {spin:#}");
    assert_eq!(
        spin["clamped"],
        json!([{"field": "fuel", "asked": 100_000_000_000u64, "max": MAX_FUEL}]),
        "{spin:#}"
    );
    let id = host.submit_job(json!({"plugin": "spin", "args": {}, "max_attempts": 1}));
    let job = host.wait_for_state(&id, &TERMINAL, TIMEOUT);
    assert_failed_with(&job, "out_of_fuel");
    let used = usage(&job, "fuel_consumed");
    assert!(used <= MAX_FUEL, "ran under the maximum: used {used}");
}

/// `echo` with its `log` import renamed to one the host does not provide.
fn echo_with_an_unknown_import() -> Vec<u8> {
    let module = std::fs::read(plugin_module("echo")).expect("reading echo");
    let (from, to) = (b"orchestra:plugin/log@", b"orchestra:plugin/lug@");
    let mut patched = Vec::with_capacity(module.len());
    let mut rest = &module[..];
    while let Some(at) = rest.windows(from.len()).position(|w| w == from) {
        patched.extend_from_slice(&rest[..at]);
        patched.extend_from_slice(to);
        rest = &rest[at + from.len()..];
    }
    patched.extend_from_slice(rest);
    assert_ne!(patched, module, "echo imports orchestra:plugin/log");
    patched
}

#[test]
fn components_that_can_never_run_are_reported_at_load() {
    let host = Orchestra::start(
        Options::new()
            .plugin("bigmem")
            .manifest("bigmem", "memory_mb = 16\n")
            .plugin_as("bigmem", "bigmem_ok")
            .manifest("bigmem_ok", "memory_mb = 64\n"),
    );
    host.write_plugin_file("unlinked.wasm", &echo_with_an_unknown_import());
    let bigmem = host.plugin("bigmem").expect("bigmem is listed");
    let error = bigmem["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("initial memory") && error.contains("memory_mb of 16 MiB"),
        "{bigmem:#}"
    );
    let needed: u64 = error
        .split("needs at least ")
        .nth(1)
        .and_then(|rest| rest.split(" MiB").next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("the message names the MiB needed: {error}"));
    assert!(needed > 16 && needed <= 64, "{error}");
    assert!(
        error.contains(&format!("memory_mb = {needed}")),
        "the fix: {error}"
    );
    assert!(bigmem["digest"].is_null(), "not loaded: {bigmem:#}");
    let unlinked = host
        .wait_for_plugin("unlinked", "reported", |p| {
            p.is_some_and(|p| p["status"] == "failed")
        })
        .expect("listed");
    let error = unlinked["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("imports what the host does not provide")
            && error.contains("orchestra:plugin/lug")
            && error.contains("the host provides orchestra:plugin@0.2.0"),
        "{unlinked:#}"
    );
    assert!(unlinked["digest"].is_null(), "not loaded: {unlinked:#}");
    for plugin in ["bigmem", "unlinked"] {
        let (status, body) = host.post("/api/jobs", &json!({"plugin": plugin}));
        assert!((400..500).contains(&status), "{plugin}: {status} {body}");
    }
    let id = host.submit("bigmem_ok", json!({"index": 1000}));
    let job = host.wait_for_state(&id, &["succeeded"], TIMEOUT);
    assert_eq!(job["result"], json!({"value": 1}));
}
