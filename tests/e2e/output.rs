//! A guest cannot hold the host with its output: one write far larger than its stream
//! granted, full of newlines, or output without end leaves the API responsive, a cancel
//! wins, and the job's log ends with one truncation note.

use crate::common::{Options, Orchestra, TIMEOUT, has_log, state, wait_until};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

const MIB: u64 = 1 << 20;
/// The slowest answer `/healthz` may give while guests flood.
const PROMPT: Duration = Duration::from_millis(100);
/// How long `/healthz` is probed while guests flood.
const PROBING: Duration = Duration::from_secs(2);

/// The log lines of `job`.
fn logs(job: &Value) -> &Vec<Value> {
    job["logs"]
        .as_array()
        .unwrap_or_else(|| panic!("a job without logs: {job:#}"))
}

/// How many lines of the job's log say it was truncated.
fn truncation_notes(job: &Value) -> usize {
    logs(job)
        .iter()
        .filter(|line| {
            line["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("log truncated"))
        })
        .count()
}

/// Asserts the job's log ends with its one truncation note.
fn assert_ends_with_one_truncation_note(job: &Value) {
    assert_eq!(truncation_notes(job), 1, "one truncation note: {job:#}");
    let last = logs(job).last().expect("a log line");
    assert!(
        last["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("log truncated")),
        "the note is the last line: {last}"
    );
}

#[test]
fn a_flood_of_newlines_does_not_hold_the_host_and_a_cancel_wins() {
    let host = Orchestra::start(Options::new().workers(3).plugin("flood"));
    // One flood per CPU of a small machine: a held runtime thread each would leave none.
    let ids: Vec<String> = (0..2)
        .map(|_| host.submit("flood", json!({"newlines": 8 * MIB, "forever": true})))
        .collect();
    let refused = format!("a write of {} newlines was refused", 8 * MIB);
    for id in &ids {
        wait_until("the 8 MiB write to be answered", TIMEOUT, || {
            let job = host.job(id);
            if has_log(&job, "info", &refused) {
                Ok(())
            } else {
                Err(format!("{} {:?}", state(&job), logs(&job).first()))
            }
        });
    }
    let probing = Instant::now();
    let mut probes = 0;
    while probing.elapsed() < PROBING {
        let asked = Instant::now();
        let (status, body) = host.get("/healthz");
        let took = asked.elapsed();
        assert_eq!(status, 200, "{body}");
        assert!(took < PROMPT, "/healthz took {took:?} while guests flood");
        probes += 1;
    }
    for id in &ids {
        let job = host.job(id);
        assert_eq!(
            state(&job),
            "processing",
            "still flooding after {probes} probes"
        );
        let asked = Instant::now();
        let (status, body) = host.cancel(id);
        let took = asked.elapsed();
        assert_eq!(status, 200, "{body}");
        assert!(took < Duration::from_secs(1), "the cancel took {took:?}");
    }
    for id in &ids {
        let job = host.wait_for_state(id, &["cancelled"], TIMEOUT);
        assert_ends_with_one_truncation_note(&job);
    }
}

#[test]
fn output_past_the_log_limit_ends_in_one_truncation_note() {
    const WIDTH: u64 = 200;
    let host = Orchestra::start(
        Options::new()
            .plugin("flood")
            .manifest("flood", "log_mb = 1\n"),
    );
    let id = host.submit("flood", json!({"lines": 8000, "width": WIDTH}));
    let job = host.wait_for_state(&id, &["succeeded"], TIMEOUT);
    assert_ends_with_one_truncation_note(&job);
    let printed: Vec<&str> = logs(&job)
        .iter()
        .filter(|line| line["level"] == "stdout")
        .map(|line| line["message"].as_str().expect("a message"))
        .collect();
    let bytes: u64 = printed.iter().map(|m| m.len() as u64 + 1).sum();
    assert!(bytes <= MIB, "{bytes} bytes of log kept");
    assert!(
        bytes > MIB - 2 * (WIDTH + 1) - 100,
        "the limit, not the line count, cut the log: {} lines, {bytes} bytes",
        printed.len()
    );
}
