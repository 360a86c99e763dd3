//! The queue, plugin, agent, alert, batch and workflow run pages in a real headless
//! Chromium: an admin pauses a queue and cancels a batch from their pages, the plugin
//! page follows the plugin folder live, and every page passes an accessibility scan
//! (axe-core) with a screenshot under `target/screenshots/`.

use crate::common::agents::Workspace;
use crate::common::browser::Browser;
use crate::common::{Options, Orchestra, wait_until};
use crate::dashboard_links as links;
use serde_json::json;
use std::time::Duration;

/// Logs `browser` in to `host` as the admin through the login form.
fn log_in(browser: &Browser, host: &Orchestra) {
    browser.goto(&host.url("/login"));
    browser.type_into("#token", host.token().unwrap());
    browser.click("button[type=submit]");
    browser.wait_for("#live");
}

#[test]
fn an_admin_pauses_a_queue_from_the_queue_page() {
    let host = Orchestra::start(Options::new().plugin("echo"));
    let done = host.submit("echo", json!({"n": 1}));
    host.wait_for_state(&done, &["succeeded"], Duration::from_secs(60));
    let browser = Browser::open();
    log_in(&browser, &host);
    browser.goto(&host.url("/queues"));
    browser.wait_for("body[data-live=open]");
    browser.wait_for_text("#queue-default .queue-state", "running");
    browser.click("button[hx-post='/api/queues/default/pause']");
    browser.wait_for_text("#queue-default .queue-state", "paused");
    browser.wait_for("button[hx-post='/api/queues/default/resume']");
    let listed = host.queues();
    let default = listed.iter().find(|q| q["name"] == "default").unwrap();
    assert_eq!(default["paused"], true, "{default}");
    browser.screenshot("queues-paused");
}

#[test]
fn the_plugin_page_shows_a_plugin_dropped_into_the_folder_live() {
    let host = Orchestra::start(Options::new().plugin("echo"));
    let browser = Browser::open();
    log_in(&browser, &host);
    browser.goto(&host.url("/plugins"));
    browser.wait_for("body[data-live=open]");
    browser.wait_for("#plugin-echo");
    host.install_plugin("echo", "copied");
    browser.wait_for("#plugin-copied code[title='module digest']");
    host.write_plugin_file("copied.wasm", b"not a component");
    browser.wait_for("#plugin-copied .error");
    host.remove_plugin("copied");
    wait_until(
        "the removed plugin to leave the page",
        Duration::from_secs(30),
        || {
            if browser.has("#plugin-copied") {
                Err("still shown".to_owned())
            } else {
                Ok(())
            }
        },
    );
}

#[test]
fn the_new_pages_pass_an_accessibility_scan() {
    let ws = Workspace::new();
    let host = Orchestra::start(ws.options().plugin("echo"));
    let mut coder = ws.coding_agent("coder");
    coder["name"] = json!("The coder");
    host.register_agent(&coder);
    host.write_plugin_file("bad.wasm", b"this is not a wasm component");
    let rule = json!({"condition": {"kind": "plugin_load_failed"},
                      "webhook": {"url": "http://127.0.0.1:9/hook", "secret": "a-secret-of-fair-length"}});
    assert_eq!(host.put("/api/alerts/plugins", &rule).0, 201);
    wait_until("an open incident", Duration::from_secs(30), || {
        let (_, body) = host.get("/api/alerts/incidents?open=true");
        if body["incidents"].as_array().is_some_and(|i| !i.is_empty()) {
            Ok(())
        } else {
            Err(body.to_string())
        }
    });
    host.submit_job(json!({"plugin": "echo", "queue": "nobody-here"}));
    assert_eq!(host.post_empty("/api/queues/nobody-here/pause").0, 200);
    let browser = Browser::open();
    log_in(&browser, &host);
    scan_pages(
        &browser,
        &host,
        &[
            ("queues", "/queues"),
            ("plugins", "/plugins"),
            ("agents", "/agents"),
            ("alerts", "/alerts"),
            ("overview-alerts", "/"),
        ],
    );
}

/// Visits each `(name, path)` page of `host`, saves a screenshot `NAME.png`, and asserts
/// that axe-core finds no accessibility violation on any of them.
fn scan_pages(browser: &Browser, host: &Orchestra, pages: &[(&str, &str)]) {
    let mut found = Vec::new();
    for (name, path) in pages {
        browser.goto(&host.url(path));
        browser.wait_for("#live");
        found.extend(crate::browser::scan(browser, name));
    }
    assert!(
        found.is_empty(),
        "accessibility violations:\n{}",
        found.join("\n")
    );
}

#[test]
fn the_batch_run_and_linked_job_pages_pass_an_accessibility_scan() {
    let host = links::host();
    let batch = links::finished_batch(&host);
    let run = links::finished_run(&host);
    let running = links::running_run(&host);
    let callback = batch["on_complete"]["id"].as_str().unwrap();
    let fetch = run["steps"][0]["job_id"].as_str().unwrap();
    let browser = Browser::open();
    log_in(&browser, &host);
    scan_pages(
        &browser,
        &host,
        &[
            (
                "batch",
                &format!("/batches/{}", batch["id"].as_str().unwrap()),
            ),
            (
                "workflow-run",
                &format!("/workflow-runs/{}", run["id"].as_str().unwrap()),
            ),
            ("workflow-run-running", &format!("/workflow-runs/{running}")),
            ("job-callback", &format!("/jobs/{callback}")),
            ("job-step", &format!("/jobs/{fetch}")),
        ],
    );
}

#[test]
fn an_admin_cancels_a_batch_from_its_page_and_sees_it_live() {
    let host = links::host();
    let batch = links::running_batch(&host);
    let browser = Browser::open();
    log_in(&browser, &host);
    browser.goto(&host.url(&format!("/batches/{batch}")));
    browser.wait_for("body[data-live=open]");
    browser.wait_for_text("#batch-state", "running");
    browser.click(&format!("button[hx-post='/api/batches/{batch}/cancel']"));
    browser.accept_confirmation("Cancel every unfinished job of this batch?");
    browser.wait_for_text("#batch-state", "cancelled");
    browser.wait_for_text("#count-cancelled .n", "1");
    assert!(
        !browser.has("button[hx-post]"),
        "a cancelled batch offers no Cancel"
    );
    let (_, shown) = host.get(&format!("/api/batches/{batch}"));
    assert_eq!(shown["state"], "cancelled", "{shown}");
}

#[test]
fn the_workflow_run_page_follows_its_run_live() {
    let host = links::host();
    let run = links::running_run(&host);
    let browser = Browser::open();
    log_in(&browser, &host);
    browser.goto(&host.url(&format!("/workflow-runs/{run}")));
    browser.wait_for("body[data-live=open]");
    browser.wait_for_text("#run-state", "running");
    browser.wait_for_text("#step-wait > :last-child", "pending");
    let (status, answer) = host.post_empty(&format!("/api/workflow-runs/{run}/cancel"));
    assert_eq!(status, 200, "{answer}");
    browser.wait_for_text("#run-state", "cancelled");
    browser.wait_for_text("#step-wait > :last-child", "cancelled");
    assert!(
        !browser.has("button[hx-post]"),
        "an ended run offers no Cancel"
    );
}

#[test]
fn the_agent_page_updates_live_when_a_task_runs() {
    let ws = Workspace::new();
    let host = Orchestra::start(ws.options());
    host.register_agent(&ws.shell_agent("shell"));
    let browser = Browser::open();
    log_in(&browser, &host);
    browser.goto(&host.url("/agents"));
    browser.wait_for("body[data-live=open]");
    browser.wait_for_text("#runs-shell", "0");
    let (task, _, _) = host.submit_task(&json!({
        "command": "echo hi", "repository_path": ws.repo(),
    }));
    host.wait_for_task(&task, &["succeeded"], Duration::from_secs(60));
    browser.wait_for_text("#runs-shell", "1");
}
