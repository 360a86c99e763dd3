//! Durability across process death: a host killed with SIGKILL mid-run loses no job
//! (the interrupted attempt counts, and runs again when its lease expires), a job that
//! keeps killing its host fails once its attempts are used up, and SIGTERM lets running
//! jobs finish within the grace period (releasing the rest).

use crate::common::{
    Options, Orchestra, TIMEOUT, error_kind, history_has, history_states, state, times_entered,
    wait_until,
};
use serde_json::json;
use std::time::{Duration, Instant};

/// Jobs submitted before the kill.
const JOBS: usize = 200;

#[test]
fn a_killed_host_loses_no_job() {
    let mut host = Orchestra::start(
        Options::new()
            .workers(4)
            .host_id("e2e-crash-host")
            .lease_seconds(5)
            .plugin("echo")
            .plugin("sleep")
            .manifest("echo", "retry_delays_seconds = [1]\n")
            .manifest("sleep", "retry_delays_seconds = [1]\n"),
    );
    let ids: Vec<String> = (0..JOBS)
        .map(|n| match n % 2 {
            0 => host.submit("echo", json!({"n": n})),
            _ => host.submit("sleep", json!({"ms": 200})),
        })
        .collect();
    let before = wait_until("some jobs to finish while others run", TIMEOUT, || {
        let counts = host.counts();
        if counts["succeeded"] >= 20 && counts["processing"] > 0 {
            Ok(counts)
        } else {
            Err(format!("{counts:?}"))
        }
    });
    host.kill();
    assert!(
        before["succeeded"] < JOBS as u64,
        "every job finished before the kill, so nothing crashed mid-run: {before:?}"
    );

    host.restart();
    let jobs = host.wait_for_all(&ids, &["succeeded"], TIMEOUT);
    assert_eq!(host.count_jobs(), JOBS as u64, "no job lost, none added");
    let mut rerun = 0;
    for job in &jobs {
        let runs = times_entered(job, "processing");
        assert_eq!(
            job["attempt"], runs,
            "an interrupted attempt counts: {job:#}"
        );
        if runs > 1 {
            rerun += 1;
            assert!(
                history_has(job, "scheduled", "lease_expired"),
                "the lost attempt's lease expired: {job:#}"
            );
            assert!(
                !history_has(job, "enqueued", "released"),
                "a killed host released nothing: {job:#}"
            );
        }
    }
    eprintln!("killed at {before:?}; {rerun} interrupted jobs ran again after the restart");
    assert!(
        before["processing"] > 0 || rerun > 0,
        "the kill interrupted no job: before {before:?}, rerun {rerun}"
    );
}

#[test]
fn a_job_that_kills_its_host_fails_once_its_attempts_are_used_up() {
    let mut host = Orchestra::start(
        Options::new()
            .lease_seconds(2)
            .plugin("sleep")
            .manifest("sleep", "max_attempts = 2\nretry_delays_seconds = [1]\n"),
    );
    let id = host.submit("sleep", json!({"ms": 60_000}));
    for attempt in 1..=2 {
        wait_until(&format!("attempt {attempt} to run"), TIMEOUT, || {
            let job = host.job(&id);
            (state(&job) == "processing" && job["attempt"] == attempt)
                .then_some(())
                .ok_or(job.to_string())
        });
        host.kill();
        host.restart();
    }
    let job = host.wait_for_state(&id, &["failed"], TIMEOUT);
    assert_eq!(error_kind(&job), Some("lease_expired"), "{job:#}");
    assert_eq!(job["attempt"], 2, "{job:#}");
    assert_eq!(
        history_states(&job),
        [
            "enqueued",
            "processing",
            "scheduled",
            "enqueued",
            "processing",
            "failed"
        ]
    );
    assert!(
        history_has(&job, "failed", "lease_expired"),
        "the history names the expired lease: {job:#}"
    );
}

#[test]
fn sigterm_lets_a_running_job_finish() {
    let mut host = Orchestra::start(Options::new().grace_seconds(10).plugin("sleep"));
    let id = host.submit("sleep", json!({"ms": 1000}));
    host.wait_for_guest(&id);

    let status = host.terminate(Duration::from_secs(30));
    assert!(
        status.success(),
        "a graceful shutdown exits 0, got {status}\n{}",
        host.log()
    );

    host.restart();
    let job = host.job(&id);
    assert_eq!(
        state(&job),
        "succeeded",
        "the job finished before the host stopped: {job:#}"
    );
    assert_eq!(job["result"], json!({"slept_ms": 1000}));
    assert_eq!(
        history_states(&job),
        ["enqueued", "processing", "succeeded"]
    );
}

#[test]
fn sigterm_releases_a_job_that_outlasts_the_grace_period() {
    let mut host = Orchestra::start(Options::new().grace_seconds(1).plugin("sleep"));
    let id = host.submit("sleep", json!({"ms": 10_000}));
    host.wait_for_guest(&id);

    let asked = Instant::now();
    let status = host.terminate(Duration::from_secs(30));
    assert!(
        status.success(),
        "a graceful shutdown exits 0, got {status}\n{}",
        host.log()
    );
    assert!(
        asked.elapsed() < Duration::from_secs(8),
        "the host waited {:?}: longer than its 1 s grace period",
        asked.elapsed()
    );

    host.restart();
    let job = host.wait_for_state(&id, &["succeeded"], TIMEOUT);
    assert_eq!(
        job["attempt"], 1,
        "the released attempt is not counted: {job:#}"
    );
    assert_eq!(
        times_entered(&job, "processing"),
        2,
        "it ran again: {:?}",
        history_states(&job)
    );
    assert!(
        history_has(&job, "enqueued", "released"),
        "the release is in the history: {job:#}"
    );
}
