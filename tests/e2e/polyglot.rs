//! Python and JavaScript handlers, on their helper modules (`sdk/python`, `sdk/js`), under
//! the host's default limits: the example plugins `hello_python` and `hello_js` succeed
//! with progress and log lines, have an ordinary exception retried with its message, fail
//! at once on `Fatal`, and are stopped by the default fuel budget.
//!
//! Each test starts one host with one big component; its first compile (tens of seconds)
//! lands in the suite's shared cache, and jobs submitted meanwhile wait for it.

use crate::common::{Options, Orchestra, TERMINAL, error_kind, has_log, state};
use serde_json::{Value, json};
use std::time::Duration;

/// Time for a job, including the component's first compile on a busy machine and a run
/// to the end of the default fuel budget.
const SLOW: Duration = Duration::from_secs(300);

#[test]
fn a_python_handler_succeeds_retries_fails_and_runs_out_of_fuel() {
    exercise("hello_python");
}

#[test]
fn a_javascript_handler_succeeds_retries_fails_and_runs_out_of_fuel() {
    exercise("hello_js");
}

/// Runs the example plugin `name` through every outcome on one host.
fn exercise(name: &str) {
    // Retries at once; every limit is the host's default.
    let host = Orchestra::try_start(
        Options::new()
            .plugin(name)
            .manifest(name, "retry_delays_seconds = [0]\n"),
    )
    .unwrap_or_else(|why| panic!("{why}"));
    let submit = |args: Value, attempts: u32| {
        host.submit_job(json!({"plugin": name, "args": args, "max_attempts": attempts}))
    };
    let greeted = submit(json!({"name": "ada", "steps": 4}), 1);
    let retried = submit(json!({"fail": "retryable"}), 2);
    let fatal = submit(json!({"fail": "fatal"}), 3);
    let spun = submit(json!({"spin": true}), 1);
    let finished = |id: &str| host.wait_for_state(id, &TERMINAL, SLOW);

    let job = finished(&greeted);
    assert_eq!(state(&job), "succeeded", "{job:#}");
    assert_eq!(job["result"], json!({"text": "hello, ada", "attempt": 1}));
    assert_eq!(job["progress"]["percent"], 100, "{job:#}");
    assert_eq!(job["progress"]["message"], "step 4 of 4", "{job:#}");
    for step in 1..=4 {
        assert!(
            has_log(&job, "info", &format!("step {step} done")),
            "{job:#}"
        );
    }
    assert!(has_log(&job, "info", "attempt 1 of 1"), "{job:#}");
    assert!(
        has_log(&job, "stdout", "greeting ada"),
        "stdout is logged: {job:#}"
    );

    let job = finished(&retried);
    assert_eq!(state(&job), "failed", "{job:#}");
    assert_eq!(job["attempt"], 2, "retried once: {job:#}");
    assert_eq!(error_kind(&job), Some("retryable"), "{job:#}");
    assert_eq!(job["error"]["message"], "attempt 2 failed, as asked");

    let job = finished(&fatal);
    assert_eq!(state(&job), "failed", "{job:#}");
    assert_eq!(job["attempt"], 1, "not retried: {job:#}");
    assert_eq!(error_kind(&job), Some("fatal"), "{job:#}");
    assert_eq!(
        job["error"]["message"],
        "attempt 1 failed fatally, as asked"
    );

    let job = finished(&spun);
    assert_eq!(state(&job), "failed", "{job:#}");
    assert_eq!(error_kind(&job), Some("out_of_fuel"), "{job:#}");
    assert_eq!(
        job["error"]["message"],
        "run used its whole fuel budget of 10000000000"
    );
}
