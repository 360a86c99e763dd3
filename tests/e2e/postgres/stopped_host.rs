//! A host stopped (SIGSTOP) past its lease loses the job it ran: another host rescues it
//! and runs it again, and when the stopped host goes on (SIGCONT), its completion of the
//! lost attempt does not land.

use super::{Database, host_options, lease_expired, signal, started_by};
use crate::common::{Orchestra, TIMEOUT, history_states, state, times_entered, wait_until};
use serde_json::json;

/// How long the job sleeps: long enough that the rescuing host's run is still going when
/// the stopped host, resumed, finishes its own.
const SLEEP_MS: u64 = 8_000;
/// The lease, in seconds.
const LEASE: u64 = 2;

#[test]
fn a_host_stopped_past_its_lease_cannot_complete_the_job_it_lost() {
    let database = Database::create("stopped_host");
    let options = |id| host_options(&database, id, &["sleep"]).lease_seconds(LEASE);
    let a = Orchestra::start(options("host-a"));
    let b = Orchestra::start(options("host-b"));
    let id = a.submit("sleep", json!({"ms": SLEEP_MS}));
    let job = a.wait_for_guest(&id);
    let first = started_by(&job);
    assert_eq!(first.len(), 1, "{job:#}");
    let (stopped, rescuer, rescuer_id) = if first[0].starts_with("host-a/") {
        (&a, &b, "host-b/")
    } else {
        (&b, &a, "host-a/")
    };
    signal(stopped, "STOP");

    // Past the lease, the other host finds it expired and runs the job again.
    let rescued = wait_until(
        "the other host to rescue the job and run it again",
        TIMEOUT,
        || {
            let job = rescuer.job(&id);
            let runs = started_by(&job);
            let logged_again = job["log_counts"]
                .as_array()
                .is_some_and(|counts| counts.iter().any(|c| c["attempt"] == 2));
            if state(&job) == "processing" && runs.len() == 2 && logged_again {
                Ok(job)
            } else if state(&job) == "succeeded" {
                panic!("the job ended before it was seen rescued: {job:#}")
            } else {
                Err(job.to_string())
            }
        },
    );
    signal(stopped, "CONT");
    let runs = started_by(&rescued);
    assert_eq!(runs[0], first[0], "{rescued:#}");
    assert!(
        runs[1].starts_with(rescuer_id),
        "the host that was not stopped ran it again: {rescued:#}"
    );
    assert!(
        lease_expired(&rescued),
        "the lost attempt ended with its lease: {rescued:#}"
    );

    // The stopped host, going on, finishes the lost attempt and drops its outcome.
    wait_until(
        "the resumed host to say the lost attempt's outcome was dropped",
        TIMEOUT,
        || {
            let log = stopped.log();
            log.lines()
                .any(|line| line.contains("lease was lost") && line.contains(&id))
                .then_some(())
                .ok_or_else(|| "no such line yet".to_owned())
        },
    );
    let done = rescuer.wait_for_state(&id, &["succeeded"], TIMEOUT);
    assert_eq!(
        history_states(&done),
        [
            "enqueued",
            "processing",
            "scheduled",
            "enqueued",
            "processing",
            "succeeded"
        ],
        "succeeded once, after the rescue: {done:#}"
    );
    assert_eq!(times_entered(&done, "succeeded"), 1, "{done:#}");
    assert_eq!(started_by(&done), runs, "no third run: {done:#}");
    assert_eq!(done["attempt"], 2, "{done:#}");
    assert_eq!(done["result"], json!({"slept_ms": SLEEP_MS}), "{done:#}");
    assert_eq!(
        done["started_at"], rescued["started_at"],
        "the result is the second run's: {done:#}"
    );
    assert_eq!(
        stopped.job(&id),
        done,
        "the resumed host answers for the job as the other does"
    );
}
