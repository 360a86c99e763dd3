//! A job's life through the API: running, retries, failures, listing, filters, retry,
//! cancel and delete, queue counts and priority order.

use crate::common::{
    Options, Orchestra, TERMINAL, TIMEOUT, error_kind, guest_started_ms, has_log, history_has,
    history_states, module_digest, state, time_ms, times_entered,
};
use serde_json::{Value, json};
use std::collections::HashSet;
use std::time::{Duration, Instant};

/// Retries at once, up to five attempts: fast retry tests.
const FAST_RETRIES: &str = "retry_delays_seconds = [0]\nmax_attempts = 5\n";

/// Jobs started one after the other on a single worker: long enough that their order
/// shows in millisecond timestamps.
const SHORT_RUN_MS: u64 = 50;

/// A host with `plugins`, each under its own name.
fn host_with(plugins: &[&str]) -> Orchestra {
    let options = plugins.iter().fold(Options::new(), |o, p| o.plugin(p));
    Orchestra::start(options)
}

/// A host with `flaky` retrying at once.
fn flaky_host() -> Orchestra {
    Orchestra::start(
        Options::new()
            .plugin("flaky")
            .manifest("flaky", FAST_RETRIES),
    )
}

/// Submits `body` and waits until the job ends in `wanted`.
fn run_to(host: &Orchestra, body: Value, wanted: &str) -> Value {
    let id = host.submit_job(body);
    host.wait_for_state(&id, &[wanted], TIMEOUT)
}

/// A one-worker host whose worker is busy with a sleep job (its guest running).
fn busy_single_worker() -> (Orchestra, String) {
    let host = Orchestra::start(Options::new().workers(1).plugin("sleep").plugin("echo"));
    let blocker = host.submit("sleep", json!({"ms": 1000}));
    host.wait_for_guest(&blocker);
    (host, blocker)
}

/// Asserts the job still runs: the scenario being set up needs the worker busy.
fn assert_still_processing(host: &Orchestra, id: &str) {
    let job = host.job(id);
    assert_eq!(
        state(&job),
        "processing",
        "the machine is too slow: job {id} finished before the scenario was set up: {job:#}"
    );
}

/// Submits a short sleep job at `priority`.
fn submit_short_at(host: &Orchestra, priority: i32) -> String {
    let args = json!({"ms": SHORT_RUN_MS, "priority": priority});
    host.submit_job(json!({"plugin": "sleep", "args": args, "priority": priority}))
}

/// Asserts that, on one worker, `first` was started and ran before `then`.
fn assert_ran_before(first: &Value, then: &Value) {
    let (a, b) = (&first["args"], &then["args"]);
    assert!(
        time_ms(first, "started_at") < time_ms(then, "started_at"),
        "{a} was not started before {b}:\n{first:#}\n{then:#}"
    );
    assert!(
        guest_started_ms(first) < guest_started_ms(then),
        "{a} did not run before {b}:\n{first:#}\n{then:#}"
    );
}

#[test]
fn echo_job_succeeds_with_result_logs_progress_history_and_digest() {
    let host = host_with(&["echo"]);
    let args = json!({"greeting": "hello", "list": [1, 2, 3], "nested": {"ok": true}});
    let id = host.submit("echo", args.clone());
    let job = host.wait_for_state(&id, &["succeeded"], TIMEOUT);

    assert_eq!(job["result"], args, "echo returns its args: {job:#}");
    assert_eq!(job["args"], args);
    assert_eq!(job["attempt"], 1);
    assert!(
        job["error"].is_null(),
        "a succeeded job has no error: {job:#}"
    );
    assert_eq!(job["progress"]["percent"], 100, "final progress: {job:#}");
    assert!(
        has_log(&job, "info", "echo: attempt 1"),
        "the plugin's log line: {job:#}"
    );
    assert!(
        has_log(&job, "stdout", &format!("echo: job {id}")),
        "the guest's stdout line: {job:#}"
    );
    assert_eq!(
        history_states(&job),
        ["enqueued", "processing", "succeeded"]
    );
    assert!(time_ms(&job, "started_at") <= time_ms(&job, "finished_at"));

    let digest = job["plugin_digest"].as_str().expect("a digest");
    assert!(
        digest.len() == 64 && digest.chars().all(|c| c.is_ascii_hexdigit()),
        "plugin_digest is a sha256 in hex: {digest}"
    );
    let listed = host.plugin("echo").expect("echo is listed");
    assert_eq!(
        listed["digest"], digest,
        "the digest GET /api/plugins shows"
    );
    assert_eq!(digest, module_digest("echo"), "the sha256 of echo.wasm");
    assert!(
        job["usage"]["fuel_consumed"].as_u64().unwrap_or(0) > 0,
        "fuel is accounted: {job:#}"
    );
}

#[test]
fn the_guest_gets_the_args_text_as_sent() {
    let host = host_with(&["echo"]);
    // Spacing, key order and a number no float holds survive only if nothing re-encodes it.
    let args = r#"{"text":   "spaced",  "big": 123456789012345678901234567890, "a": [ 1 ]}"#;
    let body = format!(r#"{{"plugin": "echo", "args": {args}}}"#);
    let (status, answer) = host.post_raw("/api/jobs", Some("application/json"), body.as_bytes());
    assert_eq!(status, 201, "{answer}");
    let id = answer["id"].as_str().expect("an id");
    let job = host.wait_for_state(id, &["succeeded"], TIMEOUT);
    let echoed = format!("echoes {} bytes", args.len());
    assert!(
        has_log(&job, "stdout", &echoed),
        "{echoed}: {:#}",
        job["logs"]
    );

    let quoted = serde_json::to_string(args).expect("a string");
    let body = format!(r#"{{"plugin": "echo", "args": {quoted}}}"#);
    let (status, answer) = host.post_raw("/api/jobs", Some("application/json"), body.as_bytes());
    assert_eq!(status, 201, "args in a string: {answer}");
    let job = host.wait_for_state(
        answer["id"].as_str().expect("an id"),
        &["succeeded"],
        TIMEOUT,
    );
    assert!(
        has_log(&job, "stdout", &echoed),
        "{echoed}: {:#}",
        job["logs"]
    );
}

#[test]
fn flaky_job_succeeds_on_its_third_attempt() {
    let host = flaky_host();
    let job = run_to(
        &host,
        json!({"plugin": "flaky", "args": {"succeed_on": 3}}),
        "succeeded",
    );
    assert_eq!(job["result"], json!({"attempt": 3}), "{job:#}");
    assert_eq!(job["attempt"], 3);
    assert_eq!(
        job["max_attempts"], 5,
        "the manifest's max_attempts is the default"
    );
    assert_eq!(
        times_entered(&job, "scheduled"),
        2,
        "two retries: {:?}",
        history_states(&job)
    );
    assert_eq!(
        times_entered(&job, "processing"),
        3,
        "three runs: {:?}",
        history_states(&job)
    );
    assert!(
        job["error"].is_null(),
        "success clears the last error: {job:#}"
    );
}

#[test]
fn fatal_error_fails_the_job_at_once() {
    let host = flaky_host();
    let job = run_to(
        &host,
        json!({"plugin": "flaky", "args": {"fatal": true}}),
        "failed",
    );
    assert_eq!(error_kind(&job), Some("fatal"), "{job:#}");
    assert_eq!(job["attempt"], 1, "no retry after a fatal error: {job:#}");
    assert_eq!(
        times_entered(&job, "scheduled"),
        0,
        "{:?}",
        history_states(&job)
    );
    assert!(
        job["finished_at"].is_string(),
        "a failed job is finished: {job:#}"
    );
}

#[test]
fn retryable_failures_fail_the_job_when_attempts_run_out() {
    let host = flaky_host();
    let body = json!({"plugin": "flaky", "args": {"succeed_on": 10}, "max_attempts": 2});
    let job = run_to(&host, body, "failed");
    assert_eq!(error_kind(&job), Some("retryable"), "{job:#}");
    assert_eq!(job["attempt"], 2, "both attempts ran: {job:#}");
    assert_eq!(
        times_entered(&job, "scheduled"),
        1,
        "{:?}",
        history_states(&job)
    );
    assert!(job["result"].is_null());
}

#[test]
fn list_pages_newest_first_through_the_cursor() {
    let host = host_with(&["echo"]);
    let submitted: Vec<String> = (0..5)
        .map(|n| host.submit("echo", json!({"n": n})))
        .collect();

    let mut pages = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let query = match &cursor {
            Some(c) => format!("limit=2&cursor={c}"),
            None => "limit=2".to_owned(),
        };
        let (jobs, next) = host.list(&query);
        let ids: Vec<String> = jobs
            .iter()
            .map(|j| j["id"].as_str().unwrap().to_owned())
            .collect();
        pages.push(ids);
        assert!(pages.len() <= 3, "more than 3 pages: {pages:?}");
        match next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    let sizes: Vec<usize> = pages.iter().map(Vec::len).collect();
    assert_eq!(sizes, [2, 2, 1], "page sizes: {pages:?}");
    let listed: Vec<String> = pages.concat();
    let unique: HashSet<&String> = listed.iter().collect();
    assert_eq!(unique.len(), listed.len(), "no job twice: {listed:?}");
    let newest_first: Vec<String> = submitted.into_iter().rev().collect();
    assert_eq!(listed, newest_first, "every job, newest first");

    // A page that holds exactly the rest is the last one.
    let (jobs, next) = host.list("limit=5");
    assert_eq!(jobs.len(), 5);
    assert_eq!(next, None, "no cursor past the last job");
}

#[test]
fn list_filters_by_state_plugin_and_queue() {
    let host = Orchestra::start(Options::new().plugin("echo").plugin("flaky"));
    let echoes: Vec<String> = (0..2)
        .map(|n| host.submit("echo", json!({"n": n})))
        .collect();
    let failed = host.submit_job(json!({"plugin": "flaky", "args": {"fatal": true}}));
    let delayed = host.submit_job(json!({"plugin": "echo", "delay_seconds": 3600}));
    let elsewhere = host.submit_job(json!({"plugin": "echo", "queue": "e2e-unserved"}));
    host.wait_for_all(&echoes, &["succeeded"], TIMEOUT);
    host.wait_for_state(&failed, &["failed"], TIMEOUT);

    let set = |ids: Vec<String>| ids.into_iter().collect::<HashSet<_>>();
    let expect = |query: &str, wanted: &[&String]| {
        let wanted: HashSet<String> = wanted.iter().map(|id| (*id).clone()).collect();
        assert_eq!(set(host.list_ids(query)), wanted, "GET /api/jobs?{query}");
    };
    expect("state=succeeded", &[&echoes[0], &echoes[1]]);
    expect("state=failed", &[&failed]);
    expect("state=scheduled", &[&delayed]);
    expect("state=enqueued", &[&elsewhere]);
    expect("plugin=flaky", &[&failed]);
    expect(
        "plugin=echo",
        &[&echoes[0], &echoes[1], &delayed, &elsewhere],
    );
    expect("plugin=echo&state=scheduled", &[&delayed]);
    expect("queue=e2e-unserved", &[&elsewhere]);
    expect(
        "queue=default&plugin=echo&state=succeeded",
        &[&echoes[0], &echoes[1]],
    );
    expect("plugin=nosuch", &[]);
}

#[test]
fn retry_runs_a_failed_job_again() {
    // Too little fuel fails the job; with the manifest fixed, a retry succeeds.
    let host = Orchestra::start(
        Options::new()
            .plugin("spin")
            .manifest("spin", "fuel = 100000\n"),
    );
    let body = json!({"plugin": "spin", "args": {"iterations": 1_000_000}, "max_attempts": 1});
    let id = host.submit_job(body);
    let failed = host.wait_for_state(&id, &["failed"], TIMEOUT);
    assert_eq!(error_kind(&failed), Some("out_of_fuel"), "{failed:#}");

    host.write_manifest("spin", "fuel = 10000000000\n");
    host.wait_for_plugin("spin", "reloaded with more fuel", |p| {
        p.is_some_and(|p| p["limits"]["fuel"] == 10_000_000_000u64)
    });
    let (status, answer) = host.retry(&id);
    assert_eq!(status, 200, "retry answered {status}: {answer}");
    assert_eq!(answer["state"], "enqueued", "{answer}");

    let job = host.wait_for_state(&id, &["succeeded"], TIMEOUT);
    assert_eq!(job["result"]["iterations"], 1_000_000, "{job:#}");
    assert_eq!(job["attempt"], 1, "retry resets the attempts: {job:#}");
    assert_eq!(
        times_entered(&job, "processing"),
        2,
        "two runs: {:?}",
        history_states(&job)
    );
    assert!(
        history_has(&job, "enqueued", "retried by request"),
        "the retry is in the history: {job:#}"
    );
}

#[test]
fn cancelling_a_delayed_job() {
    let host = host_with(&["echo"]);
    let id = host.submit_job(json!({"plugin": "echo", "delay_seconds": 3600}));
    assert_eq!(state(&host.job(&id)), "scheduled");
    let (status, answer) = host.cancel(&id);
    assert_eq!(status, 200, "cancel answered {status}: {answer}");
    assert_eq!(answer["state"], "cancelled", "{answer}");
    let job = host.job(&id);
    assert_eq!(state(&job), "cancelled", "{job:#}");
    assert_eq!(error_kind(&job), Some("cancelled"), "{job:#}");
    assert_eq!(job["attempt"], 0, "it never ran: {job:#}");
    assert_eq!(history_states(&job), ["scheduled", "cancelled"]);
}

#[test]
fn a_running_jobs_log_is_visible_while_it_runs() {
    let host = host_with(&["sleep"]);
    let id = host.submit("sleep", json!({"ms": 60_000}));
    let shown = Instant::now();
    let job = host.wait_for_guest(&id);
    assert!(has_log(&job, "info", "sleep: attempt 1"), "{job:#}");
    assert!(
        shown.elapsed() < Duration::from_secs(30),
        "the log line took {:?}",
        shown.elapsed()
    );
}

#[test]
fn cancelling_a_running_job_stops_it() {
    let host = host_with(&["sleep"]);
    let id = host.submit("sleep", json!({"ms": 60_000}));
    host.wait_for_guest(&id);
    let asked = Instant::now();
    let (status, answer) = host.cancel(&id);
    assert_eq!(status, 200, "cancel answered {status}: {answer}");
    assert_eq!(answer["cancel_requested"], true, "{answer}");

    let job = host.wait_for_state(&id, &["cancelled"], Duration::from_secs(30));
    assert!(
        asked.elapsed() < Duration::from_secs(30),
        "cancel took {:?}",
        asked.elapsed()
    );
    assert_eq!(error_kind(&job), Some("cancelled"), "{job:#}");
    assert!(job["result"].is_null(), "{job:#}");
    assert_eq!(
        history_states(&job),
        ["enqueued", "processing", "cancelled"]
    );
}

#[test]
fn cancelling_a_job_that_waits_for_a_worker() {
    let (host, _) = busy_single_worker();
    let next = host.submit_job(json!({"plugin": "sleep", "args": {"ms": 1000}}));
    let waiting = host.submit("echo", json!({"waiting": true}));
    host.wait_for_guest(&next);
    let (status, answer) = host.cancel(&waiting);
    assert_still_processing(&host, &next);
    assert_eq!(status, 200, "cancel answered {status}: {answer}");
    let job = host.wait_for_state(&waiting, &["cancelled"], TIMEOUT);
    assert!(
        job["logs"].as_array().is_some_and(Vec::is_empty),
        "it never ran: {job:#}"
    );
    assert!(job["result"].is_null(), "{job:#}");
}

/// A cancel sent the moment a job is claimed must still stop it. The window between the
/// claim and the run's start is short, so this tries many times.
#[test]
fn a_cancel_right_after_the_claim_is_not_lost() {
    const ROUNDS: usize = 300;
    let host = Orchestra::start(Options::new().workers(4).plugin("sleep"));
    let mut requested = Vec::new();
    for _ in 0..ROUNDS {
        let id =
            host.submit_job(json!({"plugin": "sleep", "args": {"ms": 2000}, "max_attempts": 1}));
        let (status, answer) = host.cancel(&id);
        assert_eq!(status, 200, "cancel answered {status}: {answer}");
        if answer["cancel_requested"] == true {
            requested.push(id);
        }
    }
    eprintln!(
        "{} of {ROUNDS} cancels reached a claimed job",
        requested.len()
    );
    let jobs = host.wait_for_all(&requested, &TERMINAL, TIMEOUT);
    let lost: Vec<&Value> = jobs
        .iter()
        .filter(|job| state(job) != "cancelled")
        .collect();
    assert!(
        lost.is_empty(),
        "{} of {} accepted cancels were lost; first: {:#}",
        lost.len(),
        requested.len(),
        lost[0]
    );
}

#[test]
fn deleting_a_finished_job() {
    let host = host_with(&["echo"]);
    let job = run_to(&host, json!({"plugin": "echo"}), "succeeded");
    let id = job["id"].as_str().unwrap();
    let path = format!("/api/jobs/{id}");
    let (status, body) = host.delete(&path);
    assert_eq!(status, 204, "DELETE answered {status}: {body}");
    assert!(body.is_null(), "204 has no body: {body}");
    let (status, body) = host.get(&path);
    assert_eq!(status, 404, "GET after DELETE answered {status}: {body}");
    assert!(
        !host.list_ids("").contains(&id.to_owned()),
        "deleted jobs are not listed"
    );
    assert_eq!(host.delete(&path).0, 404, "deleting twice");
}

#[test]
fn queues_count_jobs_by_state() {
    let host = host_with(&["echo"]);
    let done: Vec<String> = (0..3)
        .map(|n| host.submit("echo", json!({"n": n})))
        .collect();
    host.submit_job(json!({"plugin": "echo", "delay_seconds": 3600}));
    host.submit_job(json!({"plugin": "echo", "queue": "e2e-unserved"}));
    host.wait_for_all(&done, &["succeeded"], TIMEOUT);

    let queues = host.queues();
    let queue = |name: &str| {
        queues
            .iter()
            .find(|q| q["name"] == name)
            .unwrap_or_else(|| panic!("queue {name} is listed: {queues:#?}"))
            .clone()
    };
    let default = queue("default");
    assert_eq!(default["served"], true);
    assert_eq!(default["counts"]["succeeded"], 3, "{default}");
    assert_eq!(default["counts"]["scheduled"], 1, "{default}");
    assert_eq!(default["counts"]["failed"], 0, "{default}");
    let unserved = queue("e2e-unserved");
    assert_eq!(unserved["served"], false, "{unserved}");
    assert_eq!(unserved["counts"]["enqueued"], 1, "{unserved}");
    let idle = queue("high-priority");
    assert!(
        idle["counts"].as_object().unwrap().values().all(|n| n == 0),
        "an idle served queue counts nothing: {idle}"
    );
    assert_eq!(host.count_jobs(), 5);
}

#[test]
fn higher_priority_runs_first() {
    let (host, blocker) = busy_single_worker();
    let low = submit_short_at(&host, -50);
    let high = submit_short_at(&host, 50);
    assert_still_processing(&host, &blocker);
    let [low, high] = [low, high].map(|id| host.wait_for_state(&id, &["succeeded"], TIMEOUT));
    assert_ran_before(&high, &low);
}

/// A job submitted while others wait for the worker still overtakes the lower ones.
#[test]
fn a_higher_priority_job_overtakes_jobs_already_waiting() {
    let (host, _) = busy_single_worker();
    let next = host.submit_job(json!({"plugin": "sleep", "args": {"ms": 1000}}));
    let lows: Vec<String> = (0..2).map(|_| submit_short_at(&host, -50)).collect();
    host.wait_for_guest(&next);
    let high = submit_short_at(&host, 50);
    assert_still_processing(&host, &next);
    let high = host.wait_for_state(&high, &["succeeded"], TIMEOUT);
    for low in host.wait_for_all(&lows, &["succeeded"], TIMEOUT) {
        assert_ran_before(&high, &low);
    }
}
