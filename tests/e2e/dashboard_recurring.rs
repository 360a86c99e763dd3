//! The recurring jobs' page over HTTP: schedules in words with their next and last run
//! and last job, buttons and edit forms for admins only, what it shows escaped, and the
//! preview fragment the edit form swaps in.

use crate::access::make_token;
use crate::common::{Options, Orchestra};
use crate::dashboard::page;
use serde_json::json;

#[test]
fn the_recurring_page_shows_schedules_in_words_with_buttons_for_admins_only() {
    let host = Orchestra::start(Options::new().plugin("echo"));
    let token = host.token().unwrap().to_owned();
    let nightly = json!({
        "cron": "0 30 9 * * MON-FRI",
        "timezone": "Europe/Berlin",
        "plugin": "echo",
        "args": {"note": "</form><script>alert(1)</script>"},
        "priority": 7,
    });
    assert_eq!(host.put("/api/recurring/weekdays", &nightly).0, 201);
    let hourly = json!({"cron": "@hourly", "plugin": "echo"});
    assert_eq!(host.put("/api/recurring/hourly.check", &hourly).0, 201);
    let (status, fired) = host.post_empty("/api/recurring/hourly.check/trigger");
    assert_eq!(status, 201, "{fired}");
    let job = fired["id"].as_str().unwrap();
    assert_eq!(host.post_empty("/api/recurring/weekdays/pause").0, 200);

    let shown = page(&host, &token, "/recurring");
    assert_eq!(shown.status, 200, "{}", shown.text);
    let text = &shown.text;
    for part in [
        "<a href=\"/recurring\" aria-current=\"page\">Recurring</a>",
        "at 09:30 on Monday to Friday</span><br><code>0 30 9 * * MON-FRI</code>",
        "<td>Europe/Berlin</td>",
        "<tr data-id=\"hourly.check\">",
        &format!("<a href=\"/jobs/{job}\" class=\"state-"),
        "hx-post=\"/api/recurring/hourly.check/trigger\"",
        "hx-post=\"/api/recurring/hourly.check/pause\"",
        "hx-post=\"/api/recurring/weekdays/resume\"",
        "hx-put=\"/api/recurring/weekdays\"",
        "name=\"cron\" value=\"0 30 9 * * MON-FRI\"",
        "hx-get=\"/recurring/preview\" hx-trigger=\"input changed delay:300ms\"",
        "<td>paused</td>",
    ] {
        assert!(text.contains(part), "{part} in {text}");
    }
    // The weekday job is paused: no next run; the hourly one fires within the hour.
    assert!(text.contains("<td>none</td>"), "{text}");
    // Every edit form starts with its schedule's next fire times.
    let forms = text.matches("<form class=\"edit\"").count();
    assert!(forms >= 2, "{text}");
    assert_eq!(text.matches("<ol class=\"next\">").count(), forms, "{text}");
    // What a save keeps is in the form, escaped.
    assert!(!text.contains("<script>alert(1)"), "escaped: {text}");
    assert!(
        text.contains("&#34;priority&#34;:7") && text.contains("&#60;/form&#62;&#60;script&#62;"),
        "{text}"
    );

    let viewer = make_token(&host, "read", "viewer");
    let read = page(&host, &viewer, "/recurring");
    assert_eq!(read.status, 200, "{}", read.text);
    assert!(read.text.contains("at 09:30 on Monday to Friday"));
    for control in ["<button", "hx-post", "hx-put", "<form"] {
        assert!(!read.text.contains(control), "{control} for a reader");
    }
}

#[test]
fn the_preview_fragment_lists_the_next_fire_times_and_says_what_is_wrong() {
    let host = Orchestra::start(Options::new().plugin("echo"));
    let token = host.token().unwrap().to_owned();
    let shown = page(
        &host,
        &token,
        "/recurring/preview?cron=0+30+9+*+*+MON-FRI&timezone=Europe%2FBerlin",
    );
    assert_eq!(shown.status, 200, "{}", shown.text);
    assert!(
        shown.text.starts_with("<div class=\"preview\""),
        "{}",
        shown.text
    );
    assert!(shown.text.contains("at 09:30 on Monday to Friday"));
    let times: Vec<&str> = shown.text.split("<time datetime=\"").skip(1).collect();
    assert_eq!(times.len(), 5, "{}", shown.text);
    for time in times {
        assert!(
            time.contains("T09:30:00+01:00") || time.contains("T09:30:00+02:00"),
            "{time}"
        );
    }

    let bad = page(&host, &token, "/recurring/preview?cron=%3Cb%3E+*+*+*+*");
    assert_eq!(bad.status, 200, "{}", bad.text);
    assert!(
        bad.text.contains("minute field `&#60;b&#62;`"),
        "{}",
        bad.text
    );
    let zone = page(
        &host,
        &token,
        "/recurring/preview?cron=@daily&timezone=Mars",
    );
    assert_eq!(zone.status, 200);
    assert!(
        zone.text.contains("unknown time zone `Mars`"),
        "{}",
        zone.text
    );
    assert_eq!(
        page(&host, &token, "/recurring/preview?cron=@daily&x=1").status,
        400
    );
}
