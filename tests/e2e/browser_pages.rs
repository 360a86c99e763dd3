//! The queue, plugin, agent and alert pages in a real headless Chromium: an admin
//! pauses a queue from its page, the plugin page follows the plugin folder live, and
//! every page passes an accessibility scan (axe-core)
//! with a screenshot under `target/screenshots/`.

use crate::common::agents::Workspace;
use crate::common::browser::Browser;
use crate::common::{Options, Orchestra, wait_until};
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
    wait_until("the removed plugin to leave the page", Duration::from_secs(30), || {
        if browser.has("#plugin-copied") {
            Err("still shown".to_owned())
        } else {
            Ok(())
        }
    });
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
    let mut found = Vec::new();
    for (name, path) in [
        ("queues", "/queues"),
        ("plugins", "/plugins"),
        ("agents", "/agents"),
        ("alerts", "/alerts"),
        ("overview-alerts", "/"),
    ] {
        browser.goto(&host.url(path));
        browser.wait_for("#live");
        browser.screenshot(name);
        found.extend(
            browser
                .accessibility_violations()
                .into_iter()
                .map(|v| format!("{name}: {v}")),
        );
    }
    assert!(
        found.is_empty(),
        "accessibility violations:\n{}",
        found.join("\n")
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
