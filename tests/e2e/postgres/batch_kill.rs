//! A batch is stored all or none while a host dies: created through one host while
//! another is killed, it has all its jobs and they all finish; created through the host
//! that is killed, it has all its jobs or none.

use super::{Database, host_options};
use crate::common::{Orchestra, TIMEOUT, new_agent, wait_until};
use serde_json::{Value, json};
use std::time::Duration;

/// Jobs per batch.
const JOBS: usize = 1_000;

/// A batch of `JOBS` echo jobs tagged `round`, with a callback once they all succeed.
fn batch(round: &str) -> Value {
    let jobs: Vec<Value> = (0..JOBS)
        .map(|n| json!({"plugin": "echo", "args": {"round": round, "n": n}}))
        .collect();
    json!({
        "jobs": jobs,
        "on_success": {"plugin": "echo", "args": {"round": round, "callback": true}},
        "description": round,
    })
}

/// Waits until no job stored is unfinished, and returns how many there are.
fn wait_all_succeeded(host: &Orchestra) -> u64 {
    wait_until("every stored job to succeed", TIMEOUT, || {
        let counts = host.counts();
        let total: u64 = counts.values().sum();
        if counts.get("succeeded") == Some(&total) {
            Ok(total)
        } else {
            Err(format!("{counts:?}"))
        }
    })
}

/// Checks that batch `id` has its `JOBS` jobs and, with its callback, succeeds.
fn check_batch(host: &Orchestra, id: &str) {
    let (status, shown) = host.get(&format!("/api/batches/{id}"));
    assert_eq!(status, 200, "{shown}");
    assert_eq!(
        shown["total"], JOBS,
        "every job of the batch stored: {shown}"
    );
    assert_eq!(
        shown["jobs"].as_array().map(Vec::len),
        Some(JOBS),
        "{shown}"
    );
    let done = wait_until(&format!("batch {id} to succeed"), TIMEOUT, || {
        let (_, shown) = host.get(&format!("/api/batches/{id}"));
        match shown["state"].as_str() {
            Some("succeeded") if shown["on_success"]["state"] == "succeeded" => Ok(shown),
            Some("running" | "succeeded") => Err(shown.to_string()),
            _ => panic!("batch {id} did not succeed: {shown}"),
        }
    });
    assert_eq!(done["counts"]["succeeded"], JOBS, "{done}");
    let callback = host.job(done["on_success"]["id"].as_str().expect("a callback id"));
    assert_eq!(
        callback["attempt"], 1,
        "the callback ran once: {callback:#}"
    );
}

#[test]
fn a_batch_is_stored_all_or_none_while_a_host_is_killed() {
    let database = Database::create("batch_kill");
    let options = |id| {
        host_options(&database, id, &["echo", "sleep"])
            .lease_seconds(2)
            .workers(4)
    };
    let a = Orchestra::start(options("host-a"));
    let mut b = Orchestra::start(options("host-b"));

    // B runs jobs when it is killed, as A stores a batch.
    for _ in 0..8 {
        a.submit("sleep", json!({"ms": 1_000}));
    }
    wait_until("host B to run some jobs", TIMEOUT, || {
        let running = a.list_ids("state=processing&limit=100");
        let on_b = running
            .iter()
            .filter(|id| {
                super::started_by(&a.job(id))
                    .last()
                    .is_some_and(|owner| owner.starts_with("host-b/"))
            })
            .count();
        (on_b > 0).then_some(()).ok_or(format!("{running:?}"))
    });
    let created = std::thread::scope(|scope| {
        let posting = scope.spawn(|| a.post("/api/batches", &batch("through-a")));
        b.kill();
        posting.join().expect("the batch request")
    });
    let (status, created) = created;
    assert_eq!(status, 201, "{created}");
    check_batch(&a, created["id"].as_str().expect("a batch id"));
    let mut stored = wait_all_succeeded(&a);

    // The host that takes the batch is killed while it stores it, a little later each
    // round: the batch is whole or absent.
    let mut outcomes = Vec::new();
    for (round, delay_ms) in [0u64, 20, 50, 100, 200, 400].into_iter().enumerate() {
        b.restart();
        let round = format!("round-{round}");
        let body = batch(&round);
        let url = b.url("/api/batches");
        let answered = std::thread::scope(|scope| {
            let posting = scope.spawn(|| {
                let agent = new_agent(None, Duration::from_secs(30));
                agent.post(&url).send_json(&body).map(|mut answer| {
                    let status = answer.status().as_u16();
                    let text = answer.body_mut().read_to_string().unwrap_or_default();
                    (status, text)
                })
            });
            std::thread::sleep(Duration::from_millis(delay_ms));
            b.kill();
            posting.join().expect("the batch request")
        });
        let now = a.count_jobs();
        let added = now - stored;
        match &answered {
            Ok((201, text)) => {
                let created: Value = serde_json::from_str(text).expect("a JSON answer");
                assert_eq!(added, JOBS as u64 + 1, "a batch answered 201 is whole");
                check_batch(&a, created["id"].as_str().expect("a batch id"));
            }
            Ok((status, text)) => panic!("{round}: the batch answered {status}: {text}"),
            Err(_) => assert!(
                added == 0 || added == JOBS as u64 + 1,
                "{round}: a batch cut off by the kill is whole or absent, but {added} jobs \
                 were added"
            ),
        }
        if added > 0 && answered.is_err() {
            // Stored, though its answer was lost: find it by its description through a job.
            let (jobs, _) = a.list(&format!("limit=1&q={round}"));
            if let Some(batch_id) = jobs.first().and_then(|j| j["batch_id"].as_str()) {
                check_batch(&a, batch_id);
            }
        }
        stored = wait_all_succeeded(&a);
        outcomes.push(format!(
            "{round} (kill after {delay_ms} ms): {}",
            match (&answered, added) {
                (Ok(_), _) => "answered 201",
                (Err(_), 0) => "not stored",
                (Err(_), _) => "stored, answer lost",
            }
        ));
    }
    eprintln!("{}", outcomes.join("; "));
}
