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
