//! Job lifecycle controls: jobs delayed to a time, idempotent submission by unique key,
//! paused queues and per-queue concurrency caps.

use crate::common::{Options, Orchestra, TIMEOUT, now_ms, rfc3339, state, time_ms};
use serde_json::{Value, json};
use std::time::Duration;

#[test]
fn a_job_delayed_to_a_time_runs_then_even_across_a_restart() {
    let mut host = Orchestra::start(Options::new().plugin("echo").host_id("delayed"));
    let due = now_ms() + 3_000;
    let body = json!({"plugin": "echo", "args": {"at": due}, "run_at": rfc3339(due)});
    let (status, answer) = host.post("/api/jobs", &body);
    assert_eq!(
        (status, answer["state"].as_str()),
        (201, Some("scheduled")),
        "{answer}"
    );
    let id = answer["id"].as_str().expect("an id").to_owned();
    host.terminate(TIMEOUT);
    host.restart();
    let job = host.wait_for_state(&id, &["succeeded"], TIMEOUT);
    let started = time_ms(&job, "started_at");
    assert!(started >= due, "ran {} ms early: {job:#}", due - started);
    assert!(started - due <= 1_500, "promoted {} ms late", started - due);
}

#[test]
fn run_at_and_delay_are_checked() {
    let host = Orchestra::start(Options::new().plugin("echo"));
    for body in [
        json!({"plugin": "echo", "run_at": "tomorrow"}),
        json!({"plugin": "echo", "run_at": rfc3339(now_ms()), "delay_seconds": 5}),
    ] {
        let (status, answer) = host.post("/api/jobs", &body);
        assert_eq!(status, 422, "{body} answered {answer}");
        assert!(answer["error"].as_str().is_some_and(|e| !e.is_empty()));
    }
}

#[test]
fn a_unique_key_dedupes_concurrent_submissions() {
    let host = Orchestra::start(Options::new().plugin("sleep"));
    let body = json!({"plugin": "sleep", "args": {"ms": 2000}, "unique_key": "report-42"});
    let answers: Vec<(u16, Value)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..16)
            .map(|_| scope.spawn(|| host.post("/api/jobs", &body)))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("a submitter"))
            .collect()
    });
    let created: Vec<_> = answers
        .iter()
        .filter(|(status, _)| *status == 201)
        .collect();
    assert_eq!(created.len(), 1, "exactly one job is created: {answers:?}");
    let id = &created[0].1["id"];
    for (status, answer) in &answers {
        assert!(*status == 201 || *status == 200, "{status}: {answer}");
        assert_eq!(&answer["id"], id, "every submission names the same job");
    }
    let (_, list) = host.get("/api/jobs?plugin=sleep");
    assert_eq!(list["jobs"].as_array().map(Vec::len), Some(1), "{list}");
    let id = id.as_str().expect("an id");
    host.wait_for_state(id, &["succeeded"], TIMEOUT);
    let (status, _) = host.post("/api/jobs", &body);
    assert_eq!(status, 201, "a finished job frees its key");
}

#[test]
fn a_paused_queue_runs_nothing_until_resumed() {
    let host = Orchestra::start(Options::new().plugin("echo"));
    let (status, answer) = host.post("/api/queues/default/pause", &json!({}));
    assert_eq!(status, 200, "{answer}");
    let ids: Vec<String> = (0..3)
        .map(|n| host.submit("echo", json!({"n": n})))
        .collect();
    std::thread::sleep(Duration::from_millis(1500));
    for id in &ids {
        assert_eq!(state(&host.job(id)), "enqueued", "a paused queue ran {id}");
    }
    let (_, queues) = host.get("/api/queues");
    let default = queue(&queues, "default");
    assert_eq!(default["paused"], true, "{default}");
    assert_eq!(default["counts"]["enqueued"], 3, "{default}");
    assert!(
        default["oldest_enqueued_age_ms"]
            .as_i64()
            .is_some_and(|age| age >= 1000),
        "{default}"
    );
    let (status, answer) = host.post("/api/queues/default/resume", &json!({}));
    assert_eq!(status, 200, "{answer}");
    host.wait_for_all(&ids, &["succeeded"], TIMEOUT);
}

fn queue<'a>(queues: &'a Value, name: &str) -> &'a Value {
    queues["queues"]
        .as_array()
        .and_then(|list| list.iter().find(|q| q["name"] == name))
        .unwrap_or_else(|| panic!("queue {name} is listed: {queues}"))
}

#[test]
fn a_concurrency_cap_keeps_runs_apart() {
    let host = Orchestra::start(Options::new().plugin("sleep").workers(4));
    let (status, answer) = host.put(
        "/api/queues/default/concurrency",
        &json!({"concurrency": 1}),
    );
    assert_eq!(status, 200, "{answer}");
    let ids: Vec<String> = (0..3)
        .map(|_| host.submit("sleep", json!({"ms": 300})))
        .collect();
    let mut runs: Vec<(i64, i64)> = host
        .wait_for_all(&ids, &["succeeded"], TIMEOUT)
        .iter()
        .map(|job| (time_ms(job, "started_at"), time_ms(job, "finished_at")))
        .collect();
    runs.sort();
    for pair in runs.windows(2) {
        assert!(
            pair[0].1 <= pair[1].0,
            "runs overlap under a cap of 1: {runs:?}"
        );
    }
    let (_, queues) = host.get("/api/queues");
    assert_eq!(queue(&queues, "default")["concurrency"], 1);
    let (status, _) = host.put(
        "/api/queues/default/concurrency",
        &json!({"concurrency": 0}),
    );
    assert_eq!(status, 422, "a cap of 0 is refused");
    let (status, _) = host.post("/api/queues/Bad%20Name/pause", &json!({}));
    assert_eq!(status, 400, "a bad queue name is refused");
}

#[test]
fn cleanup_removes_exactly_the_jobs_past_their_retention() {
    let host = Orchestra::start(
        Options::new()
            .plugin("echo")
            .plugin("flaky")
            .config("retain_succeeded_days = 0\nretain_failed_days = 30\n"),
    );
    let succeeded: Vec<String> = (0..3)
        .map(|n| host.submit("echo", json!({"n": n})))
        .collect();
    let failed = host.submit_job(json!({"plugin": "flaky", "args": {"fatal": true}}));
    host.wait_for_all(&succeeded, &["succeeded"], TIMEOUT);
    host.wait_for_state(&failed, &["failed"], TIMEOUT);
    std::thread::sleep(Duration::from_millis(20));
    let (status, answer) = host.post("/api/maintenance/cleanup", &json!({}));
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["removed"], 3, "{answer}");
    for id in &succeeded {
        let (status, _) = host.get(&format!("/api/jobs/{id}"));
        assert_eq!(status, 404, "succeeded job {id} was removed");
    }
    assert_eq!(
        state(&host.job(&failed)),
        "failed",
        "a failed job is kept 30 days"
    );
    let (_, again) = host.post("/api/maintenance/cleanup", &json!({}));
    assert_eq!(again["removed"], 0, "nothing more is old: {again}");
}

#[test]
fn the_built_in_filter_counts_runs_and_outcomes() {
    let host = Orchestra::start(
        Options::new()
            .plugin("echo")
            .plugin("flaky")
            .manifest("flaky", "retry_delays_seconds = [0]\nmax_attempts = 2\n"),
    );
    let echoes: Vec<String> = (0..2)
        .map(|n| host.submit("echo", json!({"n": n})))
        .collect();
    let flaky = host.submit("flaky", json!({"succeed_on": 9}));
    host.wait_for_all(&echoes, &["succeeded"], TIMEOUT);
    host.wait_for_state(&flaky, &["failed"], TIMEOUT);
    let (status, stats) = host.get("/api/stats");
    assert_eq!(status, 200, "{stats}");
    assert_eq!(
        stats["started"], 4,
        "two echoes and two flaky attempts: {stats}"
    );
    assert_eq!(stats["succeeded"], 2, "{stats}");
    assert_eq!(stats["retried"], 1, "{stats}");
    assert_eq!(stats["failed"], 1, "{stats}");
    assert!(
        stats["fuel_consumed"].as_u64().is_some_and(|f| f > 0),
        "{stats}"
    );
}

#[test]
fn the_built_in_cleanup_is_an_hourly_job_on_the_maintenance_queue() {
    let host = Orchestra::start(
        Options::new()
            .plugin("echo")
            .config("retain_succeeded_days = 0\n"),
    );
    let (status, cleanup) = host.get("/api/recurring/orchestra-cleanup");
    assert_eq!(status, 200, "{cleanup}");
    assert_eq!(cleanup["cron"], "@hourly", "{cleanup}");
    assert_eq!(cleanup["queue"], "maintenance", "{cleanup}");
    let old: Vec<String> = (0..4)
        .map(|n| host.submit("echo", json!({"n": n})))
        .collect();
    host.wait_for_all(&old, &["succeeded"], TIMEOUT);
    std::thread::sleep(Duration::from_millis(20));
    let (status, triggered) = host.post("/api/recurring/orchestra-cleanup/trigger", &json!({}));
    assert_eq!(status, 201, "{triggered}");
    let id = triggered["id"].as_str().expect("the cleanup job's id");
    let job = host.wait_for_state(id, &["succeeded"], TIMEOUT);
    assert_eq!(job["queue"], "maintenance", "{job:#}");
    assert_eq!(
        job["result"]["removed"], 4,
        "it reports what it removed: {job:#}"
    );
    let (status, _) = host.get(&format!("/api/jobs/{}", old[0]));
    assert_eq!(status, 404, "the old job is gone");
    let (status, answer) = host.post("/api/jobs", &json!({"plugin": "orchestra.cleanup"}));
    assert_eq!(
        status, 422,
        "clients cannot submit the built-in job: {answer}"
    );
}
