//! The job pages in a real headless Chromium: a running job's progress bar, time left
//! and log tail move live, and an admin submits a job from the job list (an open form
//! that passes an accessibility scan), and sees the API's refusal of bad arguments.

use crate::browser::{log_in, scan};
use crate::common::browser::Browser;
use crate::common::{Options, Orchestra};
use serde_json::json;
use std::time::{Duration, Instant};

#[test]
fn a_running_jobs_progress_and_log_tail_move_live() {
    let host = Orchestra::start(Options::new().plugin("sleep"));
    let browser = Browser::open();
    log_in(&browser, &host, host.token().unwrap());
    let id = host.submit("sleep", json!({"ms": 10_000, "steps": 10}));
    browser.goto(&host.url(&format!("/jobs/{id}")));
    browser.wait_for("body[data-live=open]");

    // Every value the bar shows and every length of the log, until the job ends; the
    // page is never reloaded, so each change came over the event stream.
    let (mut percents, mut log_lines, mut eta_seen) = (Vec::<u32>::new(), Vec::new(), false);
    let deadline = Instant::now() + Duration::from_secs(60);
    while !browser.has("#live dd.state-succeeded") {
        assert!(
            Instant::now() < deadline,
            "the page never showed the job done"
        );
        if let Some(percent) = browser.attribute("#progress", "value") {
            let percent = percent.parse().expect("a number");
            if percents.last() != Some(&percent) {
                percents.push(percent);
            }
        }
        if let Some(log) = browser.text("#live pre.log") {
            let lines = log.lines().count();
            if log_lines.last() != Some(&lines) {
                log_lines.push(lines);
            }
        }
        if !eta_seen && browser.has("#live .eta") {
            eta_seen = true;
            browser.screenshot("job-running");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        percents.len() >= 3 && percents.is_sorted(),
        "the bar moved forward live: {percents:?}"
    );
    assert!(
        log_lines.len() >= 3 && log_lines.is_sorted(),
        "the log tail grew live: {log_lines:?}"
    );
    assert!(
        eta_seen,
        "a running job shows about how long it still needs"
    );
    assert!(
        !browser.has("#live .eta"),
        "a finished job has no time left"
    );
    browser.screenshot("job-finished-live");
}

#[test]
fn an_admin_submits_a_job_from_the_job_list() {
    let host = Orchestra::start(Options::new().plugin("echo").plugin("sleep"));
    let browser = Browser::open();
    log_in(&browser, &host, host.token().unwrap());
    browser.goto(&host.url("/jobs"));
    browser.wait_for("body[data-live=open]");
    browser.click("details.submit summary");
    assert_eq!(
        browser.count("#s-plugin option"),
        2,
        "the form offers the loaded plugins"
    );
    browser.clear("#s-args");
    browser.type_into("#s-args", r#"{"from": "the form"}"#);
    browser.type_into("#s-queue", "formed");
    browser.type_into("#s-priority", "7");
    let violations = scan(&browser, "jobs-submit-form");
    assert!(violations.is_empty(), "{violations:#?}");
    browser.click("#submit button[type=submit]");
    let link = browser.wait_for("#submit-result a");
    let job = host.job(&link);
    assert_eq!(job["plugin"], "echo", "{job}");
    assert_eq!(job["args"], json!({"from": "the form"}));
    assert_eq!(job["queue"], "formed");
    assert_eq!(job["priority"], 7);
    // The list shows the new job without a reload.
    browser.wait_for(&format!("#live a[href='/jobs/{link}']"));

    browser.clear("#s-args");
    browser.type_into("#s-args", "[1, 2]");
    browser.click("#submit button[type=submit]");
    browser.wait_for_text("#submit-result", "args must be a JSON object (args)");
    browser.screenshot("jobs-submit-refused");
}
