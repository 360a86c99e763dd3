//! Continuations (`after`, `on`) and batches: jobs that wait for others, created together,
//! with callbacks that run once.

use crate::common::{Options, Orchestra, TIMEOUT, history_has, state, time_ms};
use serde_json::{Value, json};

fn host() -> Orchestra {
    Orchestra::start(
        Options::new()
            .plugin("echo")
            .plugin("sleep")
            .plugin("flaky")
            .workers(4),
    )
}

/// Submits a continuation of `parents` and returns its id.
fn continuation(host: &Orchestra, parents: &[&str], on: &str) -> String {
    let body = json!({"plugin": "echo", "args": {"after": parents}, "after": parents, "on": on});
    let (status, answer) = host.post("/api/jobs", &body);
    assert_eq!(status, 201, "{answer}");
    assert_eq!(answer["state"], "awaiting", "{answer}");
    answer["id"].as_str().expect("an id").to_owned()
}

#[test]
fn a_continuation_waits_for_its_parent() {
    let host = host();
    let parent = host.submit("sleep", json!({"ms": 500}));
    let child = continuation(&host, &[&parent], "success");
    let waiting = host.job(&child);
    assert_eq!(state(&waiting), "awaiting");
    assert_eq!(ids(&waiting["parents"]), [parent.as_str()], "{waiting}");
    assert_eq!(waiting["continuations"], json!([]), "{waiting}");
    let first = host.job(&parent);
    assert_eq!(ids(&first["continuations"]), [child.as_str()], "{first}");
    assert_eq!(first["parents"], json!([]));
    assert!(
        first["batch_id"].is_null() && first["workflow_run"].is_null(),
        "{first}"
    );
    let parent = host.wait_for_state(&parent, &["succeeded"], TIMEOUT);
    let child = host.wait_for_state(&child, &["succeeded"], TIMEOUT);
    assert!(
        time_ms(&child, "started_at") >= time_ms(&parent, "finished_at"),
        "the child started before its parent finished: {child:#}"
    );
}

#[test]
fn a_failed_parent_cancels_a_continuation_on_success_but_not_on_finish() {
    let host = host();
    // Paused while submitting, so that the children are linked before the parent fails.
    host.post("/api/queues/default/pause", &json!({}));
    let parent = host.submit_job(json!({"plugin": "flaky", "args": {"fatal": true}}));
    let on_success = continuation(&host, &[&parent], "success");
    let on_finish = continuation(&host, &[&parent], "finish");
    host.post("/api/queues/default/resume", &json!({}));
    host.wait_for_state(&parent, &["failed"], TIMEOUT);
    let cancelled = host.wait_for_state(&on_success, &["cancelled"], TIMEOUT);
    assert!(
        history_has(
            &cancelled,
            "cancelled",
            &format!("parent {parent} ended failed")
        ),
        "the reason names the parent: {cancelled:#}"
    );
    host.wait_for_state(&on_finish, &["succeeded"], TIMEOUT);
}

#[test]
fn bad_continuations_are_refused() {
    let host = host();
    let unknown = "01a219b1-016a-7316-9227-0ab77ecf82a7";
    for (body, status) in [
        (json!({"plugin": "echo", "after": [unknown]}), 422),
        (json!({"plugin": "echo", "after": []}), 422),
        (json!({"plugin": "echo", "after": ["nope"]}), 400),
        (
            json!({"plugin": "echo", "after": [unknown], "on": "whenever"}),
            422,
        ),
        (json!({"plugin": "echo", "on": "finish"}), 422),
    ] {
        let (got, answer) = host.post("/api/jobs", &body);
        assert_eq!(got, status, "{body}: {answer}");
        assert!(
            answer["error"].as_str().is_some_and(|e| !e.is_empty()),
            "{answer}"
        );
    }
    let (_, list) = host.get("/api/jobs");
    assert_eq!(list["jobs"], json!([]), "nothing was stored");
}

/// The ids of a list of jobs with their states.
fn ids(jobs: &Value) -> Vec<&str> {
    let jobs = jobs.as_array().expect("a list of jobs");
    jobs.iter()
        .map(|job| job["id"].as_str().expect("an id"))
        .collect()
}

/// Creates a batch, asserting 201; returns its id.
pub(crate) fn batch(host: &Orchestra, body: &Value) -> String {
    let (status, answer) = host.post("/api/batches", body);
    assert_eq!(status, 201, "{answer}");
    answer["id"].as_str().expect("a batch id").to_owned()
}

/// Polls the batch until its state is `wanted` and its callbacks are finished.
pub(crate) fn wait_for_batch(host: &Orchestra, id: &str, wanted: &str) -> Value {
    crate::common::wait_until(&format!("batch {id} to be {wanted}"), TIMEOUT, || {
        let (status, batch) = host.get(&format!("/api/batches/{id}"));
        assert_eq!(status, 200, "{batch}");
        let callbacks_done = ["on_success", "on_complete"].iter().all(|c| {
            batch[c].is_null()
                || ["succeeded", "failed", "cancelled"]
                    .contains(&batch[c]["state"].as_str().unwrap_or(""))
        });
        if batch["state"] == wanted && callbacks_done {
            Ok(batch)
        } else {
            Err(format!("{batch:.400}"))
        }
    })
}

#[test]
fn a_batch_of_a_thousand_counts_right_and_calls_back_once() {
    let host = host();
    let jobs: Vec<Value> = (0..1000)
        .map(|n| json!({"plugin": "echo", "args": {"n": n}}))
        .collect();
    let id = batch(
        &host,
        &json!({"jobs": jobs, "description": "a thousand",
                "on_success": {"plugin": "echo", "args": {"callback": "success"}},
                "on_complete": {"plugin": "echo", "args": {"callback": "complete"}}}),
    );
    let done = wait_for_batch(&host, &id, "succeeded");
    assert_eq!(done["total"], 1000);
    assert_eq!(done["counts"]["succeeded"], 1000, "{:.300}", done["counts"]);
    assert_eq!(done["progress"], 100);
    assert_eq!(done["on_success"]["state"], "succeeded");
    assert_eq!(done["on_complete"]["state"], "succeeded");
    let (_, callbacks) = host.get("/api/jobs?limit=1000&state=succeeded");
    let ran = callbacks["jobs"]
        .as_array()
        .expect("jobs")
        .iter()
        .filter(|job| job["args"]["callback"].is_string())
        .count();
    assert_eq!(ran, 2, "each callback ran once");
}

#[test]
fn a_batch_with_a_failure_fails_and_skips_its_success_callback() {
    let host = host();
    let id = batch(
        &host,
        &json!({"jobs": [{"plugin": "echo"}, {"plugin": "flaky", "args": {"fatal": true}}],
                "on_success": {"plugin": "echo"}, "on_complete": {"plugin": "echo"}}),
    );
    let done = wait_for_batch(&host, &id, "failed");
    assert_eq!(done["counts"]["failed"], 1, "{done}");
    assert_eq!(done["on_success"]["state"], "cancelled", "{done}");
    assert_eq!(done["on_complete"]["state"], "succeeded", "{done}");
    let jobs = ids(&done["jobs"]);
    let callbacks = [&done["on_success"]["id"], &done["on_complete"]["id"]];
    let mut callbacks: Vec<&str> = callbacks.iter().filter_map(|id| id.as_str()).collect();
    callbacks.sort();
    let member = host.job(jobs[0]);
    assert_eq!(member["batch_id"], id, "{member}");
    assert_eq!(ids(&member["continuations"]), callbacks, "{member}");
    let callback = host.job(callbacks[0]);
    assert_eq!(ids(&callback["parents"]), jobs, "{callback}");
    assert!(
        callback["batch_id"].is_null(),
        "a callback is none of the batch's jobs"
    );
}

#[test]
fn a_cancelled_batch_runs_nothing_more() {
    let host = Orchestra::start(Options::new().plugin("sleep").workers(1));
    let id = batch(
        &host,
        &json!({"jobs": [{"plugin": "sleep", "args": {"ms": 30000}}, {"plugin": "sleep", "args": {"ms": 1}}]}),
    );
    let (status, answer) = host.post(&format!("/api/batches/{id}/cancel"), &json!({}));
    assert_eq!(status, 200, "{answer}");
    let done = wait_for_batch(&host, &id, "cancelled");
    crate::common::wait_until("every job of the cancelled batch to end", TIMEOUT, || {
        let (_, batch) = host.get(&format!("/api/batches/{id}"));
        if batch["counts"]["cancelled"] == 2 {
            Ok(())
        } else {
            Err(batch.to_string())
        }
    });
    assert_eq!(done["total"], 2);
    let (status, _) = host.get("/api/batches/01a219b1-016a-7316-9227-0ab77ecf82a7");
    assert_eq!(status, 404);
    let (status, _) = host.post("/api/batches", &json!({"jobs": []}));
    assert_eq!(status, 422, "an empty batch is refused");
    let (status, answer) = host.post("/api/batches", &json!({"jobs": [{"plugin": "nope"}]}));
    assert_eq!(status, 422);
    assert!(
        answer["error"].as_str().unwrap_or("").contains("jobs[0]"),
        "{answer}"
    );
}
