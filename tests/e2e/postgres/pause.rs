//! A queue paused through one host is paused for every host on the database: a job
//! submitted through another stays enqueued until the queue is resumed (through that one).

use super::{Database, host_options};
use crate::common::{Orchestra, TIMEOUT, state};
use serde_json::json;
use std::time::{Duration, Instant};

/// How long a job in the paused queue is watched staying enqueued.
const WATCHED: Duration = Duration::from_secs(4);

#[test]
fn a_queue_paused_through_one_host_runs_nothing_on_another_until_resumed() {
    let database = Database::create("pause");
    let a = Orchestra::start(host_options(&database, "host-a", &["echo"]));
    let b = Orchestra::start(host_options(&database, "host-b", &["echo"]));
    let queue = "default";
    // Both hosts serve the queue: a first job runs.
    let first = b.submit_job(json!({"plugin": "echo", "args": {}, "queue": queue}));
    b.wait_for_state(&first, &["succeeded"], TIMEOUT);

    let (status, paused) = a.post_empty(&format!("/api/queues/{queue}/pause"));
    assert_eq!(status, 200, "{paused}");
    for host in [&a, &b] {
        let listed = host.queues();
        let shown = listed
            .iter()
            .find(|q| q["name"] == queue)
            .unwrap_or_else(|| panic!("queue {queue} not listed: {listed:?}"));
        assert_eq!(shown["paused"], true, "every host shows it paused: {shown}");
    }
    let ids: Vec<String> = (0..4)
        .map(|n| b.submit_job(json!({"plugin": "echo", "args": {"n": n}, "queue": queue})))
        .collect();
    let until = Instant::now() + WATCHED;
    while Instant::now() < until {
        for host in [&a, &b] {
            for id in &ids {
                let job = host.job(id);
                assert_eq!(
                    state(&job),
                    "enqueued",
                    "a job of the paused queue stays enqueued: {job:#}"
                );
            }
        }
        std::thread::sleep(Duration::from_millis(200));
    }

    let (status, resumed) = b.post_empty(&format!("/api/queues/{queue}/resume"));
    assert_eq!(status, 200, "{resumed}");
    let done = a.wait_for_all(&ids, &["succeeded"], TIMEOUT);
    for job in &done {
        assert_eq!(job["attempt"], 1, "{job:#}");
    }
}
