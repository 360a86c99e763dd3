//! The dashboard in a real headless Chromium: a login through the form, the overview
//! updating live as a job finishes, a read token's view without buttons, an
//! accessibility scan (axe-core) of every page, and a screenshot of each under
//! `target/screenshots/`.

use crate::common::browser::Browser;
use crate::common::{Options, Orchestra, wait_until};
use serde_json::json;
use std::time::Duration;

/// Logs `browser` in to `host` with `token` through the login form.
pub(crate) fn log_in(browser: &Browser, host: &Orchestra, token: &str) {
    browser.goto(&host.url("/login"));
    browser.type_into("#token", token);
    browser.click("button[type=submit]");
    browser.wait_for("#live");
}

#[test]
fn the_overview_updates_live_when_a_job_finishes() {
    let host = Orchestra::start(Options::new().plugin("echo"));
    let browser = Browser::open();
    log_in(&browser, &host, host.token().unwrap());
    browser.wait_for("body[data-live=open]");
    browser.wait_for_text("#tile-succeeded .n", "0");
    let id = host.submit("echo", json!({"from": "the browser test"}));
    host.wait_for_state(&id, &["succeeded"], Duration::from_secs(60));
    browser.wait_for_text("#tile-succeeded .n", "1");
    browser.screenshot("overview");
}

#[test]
fn a_read_token_sees_no_buttons_and_an_admin_retries_from_the_page() {
    let host = Orchestra::start(Options::new().plugin("flaky"));
    let failed = host.submit_job(json!({"plugin": "flaky", "args": {"fatal": true}}));
    host.wait_for_state(&failed, &["failed"], Duration::from_secs(60));
    let (status, made) = host.post("/api/tokens", &json!({"role": "read", "name": "viewer"}));
    assert_eq!(status, 201, "{made}");

    let viewer = Browser::open();
    log_in(&viewer, &host, made["token"].as_str().unwrap());
    viewer.goto(&host.url(&format!("/jobs/{failed}")));
    viewer.wait_for("h1");
    assert!(!viewer.has("button"), "a read token gets no buttons");
    viewer.screenshot("job-read-only");

    let admin = Browser::open();
    log_in(&admin, &host, host.token().unwrap());
    admin.goto(&host.url(&format!("/jobs/{failed}")));
    admin.wait_for("body[data-live=open]");
    admin.click("button[hx-post$='/retry']");
    let retried = wait_until("the retry to run", Duration::from_secs(60), || {
        let job = host.job(&failed);
        let again = job["history"]
            .as_array()
            .is_some_and(|history| history.iter().any(|h| h["reason"] == "retried by request"));
        if again && job["state"] == "failed" {
            Ok(job)
        } else {
            Err(job.to_string())
        }
    });
    assert_eq!(
        retried["attempt"], 1,
        "run again from its first attempt: {retried}"
    );
}

#[test]
fn every_page_passes_an_accessibility_scan() {
    let host = Orchestra::start(Options::new().plugin("echo").plugin("flaky"));
    let ok = host.submit("echo", json!({"n": 1}));
    let failed = host.submit_job(json!({"plugin": "flaky", "args": {"fatal": true}}));
    host.wait_for_state(&ok, &["succeeded"], Duration::from_secs(60));
    host.wait_for_state(&failed, &["failed"], Duration::from_secs(60));
    let browser = Browser::open();
    browser.goto(&host.url("/login"));
    browser.wait_for("form");
    let mut found = Vec::new();
    found.extend(scan(&browser, "login"));
    log_in(&browser, &host, host.token().unwrap());
    for (name, path) in [
        ("overview", "/".to_owned()),
        ("jobs", "/jobs".to_owned()),
        ("jobs-failed", "/jobs?state=failed".to_owned()),
        ("job-succeeded", format!("/jobs/{ok}")),
        ("job-failed", format!("/jobs/{failed}")),
    ] {
        browser.goto(&host.url(&path));
        browser.wait_for("#live");
        found.extend(scan(&browser, name));
    }
    assert!(
        found.is_empty(),
        "accessibility violations:\n{}",
        found.join("\n")
    );
}

/// The page's accessibility violations, each named with the page; saves a screenshot.
pub(crate) fn scan(browser: &Browser, name: &str) -> Vec<String> {
    browser.screenshot(name);
    browser
        .accessibility_violations()
        .into_iter()
        .map(|v| format!("{name}: {v}"))
        .collect()
}

#[test]
fn a_search_by_an_arg_value_finds_the_job_among_ten_thousand() {
    let host = Orchestra::start(Options::new().plugin("echo"));
    // Parked on a queue no worker serves, so that all of them wait.
    for part in 0..5 {
        let jobs: Vec<_> = (part * 2000..(part + 1) * 2000)
            .map(
                |n| json!({"plugin": "echo", "queue": "parked", "args": {"tag": format!("t-{n}")}}),
            )
            .collect();
        let (status, batch) = host.post("/api/batches", &json!({"jobs": jobs}));
        assert_eq!(status, 201, "{batch}");
    }
    let (_, found) = host.get("/api/jobs?q=%22t-7777%22");
    let wanted = found["jobs"][0]["id"].as_str().expect("the job").to_owned();

    let browser = Browser::open();
    log_in(&browser, &host, host.token().unwrap());
    browser.goto(&host.url("/jobs"));
    browser.type_into("#f-q", "\"t-7777\"");
    browser.click("form.filters button[type=submit]");
    browser.wait_for(&format!("a[href='/jobs/{wanted}']"));
    let rows = browser.count("#live tbody tr");
    assert_eq!(rows, 1, "only the job whose args hold the value");
    browser.screenshot("jobs-search");
}

#[test]
fn a_bulk_retry_of_everything_failed_works() {
    let host = Orchestra::start(Options::new().plugin("flaky"));
    let failed: Vec<String> = (0..5)
        .map(|_| host.submit_job(json!({"plugin": "flaky", "args": {"fatal": true}})))
        .collect();
    for id in &failed {
        host.wait_for_state(id, &["failed"], Duration::from_secs(60));
    }
    let browser = Browser::open();
    log_in(&browser, &host, host.token().unwrap());
    browser.goto(&host.url("/jobs?state=failed"));
    browser.wait_for("body[data-live=open]");
    browser.click("#bulk-all button[value=retry]");
    browser.accept_confirmation("Retry all 5 jobs that match this filter?");
    browser.wait_for_text("#bulk-result", "Retried 5 of 5 jobs.");
    for id in &failed {
        wait_until("the retry", Duration::from_secs(60), || {
            let job = host.job(id);
            let retried = job["history"]
                .as_array()
                .is_some_and(|h| h.iter().any(|h| h["reason"] == "retried by request"));
            if retried {
                Ok(())
            } else {
                Err(job.to_string())
            }
        });
    }
    browser.screenshot("jobs-bulk-retried");
}
