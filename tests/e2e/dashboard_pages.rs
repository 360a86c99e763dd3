//! The dashboard's queue, plugin, agent and alert pages over HTTP: they show what the
//! host holds, escaped, with buttons for admins only.

use crate::common::agents::Workspace;
use crate::common::{Options, Orchestra, wait_until};
use crate::dashboard::page;
use serde_json::json;
use std::time::Duration;

/// A `read` token made by the admin.
pub(crate) fn read_token(host: &Orchestra) -> String {
    let (status, made) = host.post("/api/tokens", &json!({"role": "read", "name": "viewer"}));
    assert_eq!(status, 201, "{made}");
    made["token"].as_str().unwrap().to_owned()
}

/// `text` as the pages escape it.
pub(crate) fn escaped(text: &str) -> String {
    text.replace('&', "&#38;")
        .replace('<', "&#60;")
        .replace('>', "&#62;")
        .replace('"', "&#34;")
        .replace('\'', "&#39;")
}

/// The table row of `id` in `html`.
pub(crate) fn row<'a>(html: &'a str, id: &str) -> &'a str {
    let start = html
        .find(&format!("<tr id=\"{id}\""))
        .unwrap_or_else(|| panic!("a row {id} in {html}"));
    let end = html[start..].find("</tr>").expect("the row ends");
    &html[start..start + end]
}

#[test]
fn the_queue_page_shows_counts_unserved_and_paused_queues_and_buttons_for_admins() {
    let host = Orchestra::start(Options::new().plugin("echo"));
    let token = host.token().unwrap().to_owned();
    let done = host.submit("echo", json!({"n": 1}));
    host.wait_for_state(&done, &["succeeded"], Duration::from_secs(60));
    host.submit_job(json!({"plugin": "echo", "queue": "nobody-here"}));
    host.submit_job(json!({"plugin": "echo", "queue": "nobody-here"}));
    assert_eq!(host.post_empty("/api/queues/nobody-here/pause").0, 200);
    let (status, _) = host.put(
        "/api/queues/nobody-here/concurrency",
        &json!({"concurrency": 3}),
    );
    assert_eq!(status, 200);

    let queues = page(&host, &token, "/queues");
    assert_eq!(queues.status, 200, "{}", queues.text);
    assert!(
        queues
            .text
            .contains("<a href=\"/queues\" aria-current=\"page\">Queues</a>")
    );
    assert!(
        queues
            .text
            .contains("data-events=\"/api/events?types=job.*,queue.*\"")
    );
    let default = row(&queues.text, "queue-default");
    for part in [
        "<a href=\"/jobs?queue=default\">default</a>",
        "<td>yes</td>",
        "<td class=\"queue-state\">running</td>",
        "<td class=\"num\">none</td>",
        "hx-post=\"/api/queues/default/pause\"",
    ] {
        assert!(default.contains(part), "{part} in {default}");
    }
    assert!(
        default.contains("<td class=\"num\">1</td>"),
        "one finished in the last five minutes: {default}"
    );
    let unserved = row(&queues.text, "queue-nobody-here");
    for part in [
        "<td class=\"num\">2</td>",
        "no: nobody here runs its jobs",
        "<strong class=\"paused\">paused</strong>",
        "<td class=\"num\">3</td>",
        "hx-post=\"/api/queues/nobody-here/resume\"",
        "aria-label=\"Resume queue nobody-here\"",
    ] {
        assert!(unserved.contains(part), "{part} in {unserved}");
    }
    assert!(!unserved.contains("/pause\""), "{unserved}");

    let viewer = page(&host, &read_token(&host), "/queues");
    assert_eq!(viewer.status, 200);
    assert!(viewer.text.contains("no: nobody here runs its jobs"));
    assert!(
        !viewer.text.contains("hx-post"),
        "a read token sees no buttons"
    );
    assert!(!viewer.text.contains("<button"), "{}", viewer.text);
}

#[test]
fn the_plugin_page_shows_versions_limits_clamps_and_load_errors_first() {
    let host = Orchestra::start(
        Options::new()
            .config("max_fuel = 20000000000\n")
            .plugin("echo")
            .plugin("spin")
            .manifest("spin", "fuel = 100000000000\n"),
    );
    host.write_plugin_file("bad.wasm", b"this is not a wasm component");
    let bad = host
        .wait_for_plugin("bad", "reported", |p| {
            p.is_some_and(|p| !p["error"].is_null())
        })
        .expect("bad is listed");
    let error = bad["error"].as_str().unwrap();
    let echo = host.plugin("echo").expect("echo is listed");
    let digest = echo["digest"].as_str().unwrap();

    let plugins = page(&host, host.token().unwrap(), "/plugins");
    assert_eq!(plugins.status, 200, "{}", plugins.text);
    let text = &plugins.text;
    let problems = text
        .find("<h2 id=\"load-errors\"")
        .expect("a load error section");
    assert!(
        problems < text.find("<table>").unwrap(),
        "errors come first"
    );
    let escaped = escaped(error);
    assert!(
        text.contains(&format!(
            "<li id=\"error-bad\"><strong>bad</strong>: <span class=\"error\">{escaped}</span></li>"
        )),
        "{error} in {text}"
    );
    assert!(!text.contains("id=\"error-echo\""), "{text}");
    let echo_row = row(text, "plugin-echo");
    assert!(
        echo_row.contains(&format!("<code title=\"module digest\">{digest}</code>")),
        "{echo_row}"
    );
    assert!(
        echo_row.contains("<td>none</td>"),
        "nothing lowered: {echo_row}"
    );
    let spin_row = row(text, "plugin-spin");
    assert!(
        spin_row.contains("20000000000 fuel,")
            && spin_row.contains("fuel: asked 100000000000, gets 20000000000"),
        "{spin_row}"
    );
    let bad_row = row(text, "plugin-bad");
    assert!(
        bad_row.contains("<strong class=\"error\">load error</strong>")
            && bad_row.contains("not loaded"),
        "{bad_row}"
    );
}

#[test]
fn the_agent_page_shows_status_reasons_work_done_and_escapes_names() {
    let ws = Workspace::new();
    let config = format!(
        "agent_health_schedule = \"* * * * * *\"\nagent_health_misses = 1\n\
         [[agents]]\nid = \"sick\"\nname = \"sick\"\nrepository_path = \"{repo}\"\n\
         command = [\"/usr/bin/env\", \"bash\", \"-c\", \"{{command}}\"]\n\
         health_command = [\"/usr/bin/false\"]\nhealth_interval_seconds = 1\n",
        repo = ws.repo()
    );
    let host = Orchestra::start(ws.options().config(&config));
    let mut shell = ws.shell_agent("shell");
    shell["name"] = json!("<b>the shell</b>");
    host.register_agent(&shell);
    wait_until("sick to go offline", Duration::from_secs(30), || {
        let sick = host.agent("sick");
        if sick["status"] == "offline" {
            Ok(())
        } else {
            Err(sick.to_string())
        }
    });
    let (task, _, agent) = host.submit_task(&json!({
        "command": "echo hi", "repository_path": ws.repo(),
    }));
    assert_eq!(agent, "shell", "the only healthy agent");
    host.wait_for_task(&task, &["succeeded"], Duration::from_secs(60));
    let reason = host.agent("sick")["status_reason"]
        .as_str()
        .unwrap()
        .to_owned();

    let agents = page(&host, &read_token(&host), "/agents");
    assert_eq!(agents.status, 200, "{}", agents.text);
    assert!(
        agents
            .text
            .contains("data-events=\"/api/events?types=agent.*,job.started,job.succeeded,job.failed,job.cancelled\"")
    );
    let sick = row(&agents.text, "agent-sick");
    assert!(
        sick.contains(&format!(
            "<span class=\"agent-offline\">offline</span><br><span class=\"reason\">{}</span>",
            escaped(&reason)
        )),
        "{reason} in {sick}"
    );
    let shell = row(&agents.text, "agent-shell");
    assert!(!shell.contains("<b>"), "escaped: {shell}");
    for part in [
        "&#60;b&#62;the shell&#60;/b&#62;",
        "<span class=\"agent-idle\">idle</span>",
        "0 of 1",
        "<td class=\"num\" id=\"runs-shell\">1</td><td class=\"num\">1</td><td class=\"num\">0</td>",
    ] {
        assert!(shell.contains(part), "{part} in {shell}");
    }
}

#[test]
fn the_alert_page_shows_rules_in_words_and_incidents_open_first_and_the_overview_the_open_ones() {
    let host = Orchestra::start(Options::new().plugin("flaky"));
    let rule = json!({
        "condition": {"kind": "job_failed", "plugin": "flaky"},
        "webhook": {"url": "http://127.0.0.1:9/hooks/T0/very-secret-path", "secret": "s3cret-value-of-fair-length"},
    });
    assert_eq!(host.put("/api/alerts/failures", &rule).0, 201);
    let depth = json!({"condition": {"kind": "queue_depth", "queue": "default", "above": 50}});
    assert_eq!(host.put("/api/alerts/backlog", &depth).0, 201);
    let first = host.submit_job(json!({"plugin": "flaky", "args": {"fatal": true}}));
    let second = host.submit_job(json!({"plugin": "flaky", "args": {"fatal": true}}));
    for job in [&first, &second] {
        host.wait_for_state(job, &["failed"], Duration::from_secs(60));
    }
    let incidents = |query: &str| {
        let (status, body) = host.get(&format!("/api/alerts/incidents?{query}"));
        assert_eq!(status, 200, "{body}");
        body["incidents"].as_array().unwrap().clone()
    };
    wait_until("two incidents", Duration::from_secs(30), || {
        let open = incidents("open=true");
        if open.len() == 2 {
            Ok(())
        } else {
            Err(format!("{open:?}"))
        }
    });
    assert_eq!(host.delete(&format!("/api/jobs/{first}")).0, 204);
    wait_until("the first to resolve", Duration::from_secs(30), || {
        let resolved = incidents("open=false");
        if resolved.len() == 1 {
            Ok(())
        } else {
            Err(format!("{resolved:?}"))
        }
    });
    let open = &incidents("open=true")[0];
    let resolved = &incidents("open=false")[0];
    assert_eq!(open["subject"], second.as_str());

    let alerts = page(&host, &read_token(&host), "/alerts");
    assert_eq!(alerts.status, 200, "{}", alerts.text);
    let text = &alerts.text;
    assert!(
        !text.contains("very-secret-path") && !text.contains("s3cret-value-of-fair-length"),
        "{text}"
    );
    let failures = row(text, "rule-failures");
    assert!(
        failures.contains("<td>a job of plugin flaky fails for good</td><td>http://127.0.0.1:9 (signed)</td><td>yes</td>"),
        "{failures}"
    );
    let backlog = row(text, "rule-backlog");
    assert!(
        backlog.contains("<td>more than 50 jobs wait in queue default</td><td>none: logged and published only</td>"),
        "{backlog}"
    );
    let open_id = format!("incident-{}", open["id"].as_str().unwrap());
    let resolved_id = format!("incident-{}", resolved["id"].as_str().unwrap());
    let open_row = row(text, &open_id);
    assert!(
        open_row.contains(&second) && open_row.contains("<strong class=\"error\">open</strong>"),
        "{open_row}"
    );
    assert!(
        open_row.contains(&escaped(open["summary"].as_str().unwrap())),
        "{open_row}"
    );
    let resolved_row = row(text, &resolved_id);
    assert!(
        resolved_row.contains(&first)
            && resolved_row.contains(resolved["resolved_at"].as_str().unwrap()),
        "{resolved_row}"
    );
    assert!(text.find(&open_id) < text.find(&resolved_id), "open first");
    let admin = page(&host, host.token().unwrap(), "/alerts");
    assert!(
        admin
            .text
            .contains("http://127.0.0.1:9/hooks/T0/very-secret-path (signed)"),
        "an admin sees the whole URL"
    );
    assert!(
        !admin.text.contains("s3cret-value-of-fair-length"),
        "never the secret"
    );

    let overview = page(&host, host.token().unwrap(), "/");
    assert!(
        overview
            .text
            .contains("<a href=\"/alerts\">All alerts and incidents</a>"),
        "{}",
        overview.text
    );
    assert!(
        overview.text.contains(&open_id) && !overview.text.contains(&resolved_id),
        "{}",
        overview.text
    );
}
