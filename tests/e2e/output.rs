//! A guest cannot hold the host with its output: one write far larger than its stream
//! granted, full of newlines, or output without end leaves the API responsive, a cancel
//! wins, and the job's log ends with one truncation note.

use crate::common::{Options, Orchestra, TIMEOUT, state, wait_until};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

const MIB: u64 = 1 << 20;
/// The slowest answer `/healthz` may give while guests flood.
const PROMPT: Duration = Duration::from_millis(100);
/// How long `/healthz` is probed while guests flood.
const PROBING: Duration = Duration::from_secs(2);

/// Whether a log line says the log was truncated.
fn is_truncation_note(line: &Value) -> bool {
    line["message"]
        .as_str()
        .is_some_and(|m| m.starts_with("log truncated"))
}

/// Asserts the log ends with its one truncation note.
fn assert_ends_with_one_truncation_note(lines: &[Value]) {
    let notes = lines.iter().filter(|line| is_truncation_note(line)).count();
    assert_eq!(notes, 1, "one truncation note in {} lines", lines.len());
    let last = lines.last().expect("a log line");
    assert!(
        is_truncation_note(last),
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
            let lines = host.log_lines(id, "limit=1000");
            let answered = lines.iter().any(|line| {
                line["level"] == "info"
                    && line["message"]
                        .as_str()
                        .is_some_and(|m| m.contains(&refused))
            });
            if answered {
                Ok(())
            } else {
                Err(format!("{} {:?}", state(&host.job(id)), lines.first()))
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
        host.wait_for_state(id, &["cancelled"], TIMEOUT);
        assert_ends_with_one_truncation_note(&host.log_lines(id, "limit=1000"));
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
    host.wait_for_state(&id, &["succeeded"], TIMEOUT);
    let lines = host.log_lines(&id, "limit=1000");
    assert_ends_with_one_truncation_note(&lines);
    let printed: Vec<&str> = lines
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
