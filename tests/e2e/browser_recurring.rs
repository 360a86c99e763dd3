//! The recurring jobs' page in headless Chromium: the edit form previews the next fire
//! times as a cron expression is typed and saves it, and the page passes an
//! accessibility scan.

use crate::browser::{log_in, scan};
use crate::common::browser::Browser;
use crate::common::{Options, Orchestra, wait_until};
use serde_json::json;
use std::time::Duration;

#[test]
fn the_edit_form_previews_fire_times_as_a_cron_is_typed_and_saves_it() {
    let host = Orchestra::start(Options::new().plugin("echo"));
    let spec = json!({"cron": "@daily", "plugin": "echo", "args": {"keep": "me"}, "priority": 3});
    assert_eq!(host.put("/api/recurring/report", &spec).0, 201);
    let browser = Browser::open();
    log_in(&browser, &host, host.token().unwrap());
    browser.goto(&host.url("/recurring"));
    browser.wait_for("body[data-live=open]");
    let form = "form[hx-put='/api/recurring/report']";
    let cron = format!("{form} input[name=cron]");
    let zone = format!("{form} input[name=timezone]");
    let words = format!("{form} .preview .words");
    browser.wait_for_text(&words, "every day at 00:00");

    browser.clear(&cron);
    browser.type_into(&cron, "61 * * * *");
    browser.wait_for_text(
        &format!("{form} .preview .error"),
        "cron `61 * * * *`: minute field `61` is out of range 0-59",
    );
    // Saved anyway, the API's refusal is shown, and nothing changes.
    browser.click(&format!("{form} button[type=submit]"));
    let refusal = browser.wait_for("#notice:not([hidden])");
    assert!(
        refusal.contains("minute field `61` is out of range 0-59"),
        "{refusal}"
    );
    assert_eq!(host.get("/api/recurring/report").1["cron"], "@daily");
    browser.clear(&cron);
    browser.type_into(&cron, "0 30 9 * * MON-FRI");
    browser.clear(&zone);
    browser.type_into(&zone, "Europe/Berlin");
    browser.wait_for_text(&words, "at 09:30 on Monday to Friday");
    // The preview follows each keystroke, so wait for the one of the whole zone.
    let times = format!("{form} .preview li time");
    wait_until("fire times in Berlin", Duration::from_secs(30), || {
        let first = browser.text(&times).unwrap_or_default();
        if first.contains("T09:30:00+01:00") || first.contains("T09:30:00+02:00") {
            Ok(())
        } else {
            Err(first)
        }
    });
    assert_eq!(browser.count(&times), 5, "five fire times");
    browser.screenshot("recurring-edit");

    browser.click(&format!("{form} button[type=submit]"));
    let saved = wait_until("the schedule to be saved", Duration::from_secs(30), || {
        let (_, shown) = host.get("/api/recurring/report");
        if shown["cron"] == "0 30 9 * * MON-FRI" {
            Ok(shown)
        } else {
            Err(shown.to_string())
        }
    });
    assert_eq!(saved["timezone"], "Europe/Berlin");
    assert_eq!(saved["args"], json!({"keep": "me"}), "the rest kept");
    assert_eq!(saved["priority"], 3, "the rest kept");
    browser.wait_for_text(
        "tr[data-id='report'] .words",
        "at 09:30 on Monday to Friday",
    );
    assert!(
        !browser.has("#notice:not([hidden])"),
        "a change that worked clears the last refusal"
    );
}

#[test]
fn the_recurring_page_passes_an_accessibility_scan() {
    let host = Orchestra::start(Options::new().plugin("echo"));
    let spec = json!({"cron": "*/15 * * * *", "plugin": "echo"});
    assert_eq!(host.put("/api/recurring/quarter", &spec).0, 201);
    assert_eq!(host.post_empty("/api/recurring/quarter/trigger").0, 201);
    let browser = Browser::open();
    log_in(&browser, &host, host.token().unwrap());
    browser.goto(&host.url("/recurring"));
    browser.wait_for("#live");
    let found = scan(&browser, "recurring");
    assert!(
        found.is_empty(),
        "accessibility violations:\n{}",
        found.join("\n")
    );
}
