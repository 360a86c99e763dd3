//! The live event stream (`GET /api/events`, Server-Sent Events).

use crate::common::{Options, Orchestra, TIMEOUT};
use serde_json::{Value, json};
use std::sync::mpsc;
use std::time::Instant;

/// Collects events until one of `job` has type `last`.
pub(crate) fn until(events: &mpsc::Receiver<Value>, job: &str, last: &str) -> Vec<Value> {
    let deadline = Instant::now() + TIMEOUT;
    let mut seen = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let event = events
            .recv_timeout(left)
            .unwrap_or_else(|_| panic!("no `{last}` for {job} in time; saw {seen:#?}"));
        let done = event["job_id"] == job && event["type"] == last;
        seen.push(event);
        if done {
            return seen;
        }
    }
}

fn types_of<'a>(events: &'a [Value], job: &str) -> Vec<&'a str> {
    events
        .iter()
        .filter(|e| e["job_id"] == job)
        .filter_map(|e| e["type"].as_str())
        .collect()
}

#[test]
fn a_job_s_events_arrive_in_order() {
    let host = Orchestra::start(Options::new().plugin("echo"));
    let events = host.listen("/api/events", None);
    let id = host.submit("echo", json!({"watched": true}));
    let seen = until(&events, &id, "job.succeeded");
    let types = types_of(&seen, &id);
    assert_eq!(types.first(), Some(&"job.created"), "{types:?}");
    let created = seen.iter().find(|e| e["type"] == "job.created").unwrap();
    assert_eq!(created["state"], "enqueued", "{created}");
    assert_eq!(types.get(1), Some(&"job.started"), "{types:?}");
    assert_eq!(types.last(), Some(&"job.succeeded"), "{types:?}");
    assert!(
        types.contains(&"job.progress") && types.contains(&"job.log"),
        "{types:?}"
    );
    let seqs: Vec<u64> = seen.iter().filter_map(|e| e["seq"].as_u64()).collect();
    assert!(
        seqs.windows(2).all(|w| w[0] < w[1]),
        "numbered in order: {seqs:?}"
    );
    let progress = seen.iter().find(|e| e["type"] == "job.progress").unwrap();
    assert_eq!(
        progress["percent"], 100,
        "the latest progress of a short run: {progress}"
    );
    assert!(
        seen.iter().all(|e| e["at"].is_string()),
        "every event is timed"
    );
}

#[test]
fn events_are_filtered_by_job_and_type() {
    let host = Orchestra::start(Options::new().plugin("echo").plugin("flaky"));
    let watched = host.submit_job(json!({"plugin": "flaky", "args": {"fatal": true}}));
    let events = host.listen(
        &format!("/api/events?job_id={watched}&types=job.started,job.failed,job.retrying"),
        None,
    );
    let (status, _) = host.post(&format!("/api/jobs/{watched}/retry"), &json!({}));
    assert!(status == 200 || status == 409, "retry answered {status}");
    for n in 0..3 {
        host.submit("echo", json!({"n": n}));
    }
    let seen = until(&events, &watched, "job.failed");
    assert!(
        seen.iter().all(|e| e["job_id"] == watched.as_str()),
        "only the watched job: {seen:#?}"
    );
    assert!(
        seen.iter()
            .all(|e| ["job.started", "job.failed"].contains(&e["type"].as_str().unwrap())),
        "only the wanted types: {seen:#?}"
    );
    let (status, answer) = host.get("/api/events?job_id=nope");
    assert_eq!(status, 400, "{answer}");
}

#[test]
fn the_websocket_stream_carries_the_same_events_and_resumes() {
    let host = Orchestra::start(Options::new().plugin("echo"));
    let events = host.listen_ws("/api/events/ws?types=job.*");
    let id = host.submit("echo", json!({"over": "websocket"}));
    let seen = until(&events, &id, "job.succeeded");
    let types = types_of(&seen, &id);
    assert_eq!(types.first(), Some(&"job.created"), "{types:?}");
    assert_eq!(types.get(1), Some(&"job.started"), "{types:?}");
    assert!(types.contains(&"job.log"), "{types:?}");
    let started = seen.iter().find(|e| e["type"] == "job.started").unwrap();
    let started_id = started["id"].as_str().expect("events carry their id");

    let resumed = host.listen_ws(&format!(
        "/api/events/ws?job_id={id}&last_event_id={started_id}"
    ));
    let first = resumed
        .recv_timeout(TIMEOUT)
        .expect("the kept events come again");
    assert!(
        first["seq"].as_u64() > started["seq"].as_u64() && first["job_id"] == id.as_str(),
        "resumes after the last event seen: {first}"
    );
    let (status, answer) = host.get("/api/events/ws");
    assert!(
        (400..500).contains(&status),
        "not a WebSocket request: {status} {answer}"
    );
    assert!(answer["error"].is_string(), "{answer}");
    let (status, answer) = host.get("/api/events?last_event_id=nonsense");
    assert_eq!(status, 400, "{answer}");
}
