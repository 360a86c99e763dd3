//! Alerts: a rule fires once per incident and resolves when its condition clears; each
//! incident is listed, published on the event stream and posted, signed, to the rule's
//! webhook (a real HTTP server on 127.0.0.1 here), retried while the webhook fails. Rules
//! are for admins to change, checked field by field, never show their secret, and come
//! from the settings file too.

use crate::access::{make_token, send};
use crate::common::agents::Workspace;
use crate::common::{Options, Orchestra, TIMEOUT, wait_until};
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The secret the tests' webhooks sign with.
const SECRET: &str = "a-webhook-secret-of-fair-length";

/// A request the webhook receiver got.
#[derive(Debug, Clone)]
struct Delivered {
    /// Its request line.
    line: String,
    /// Its headers, names in lowercase.
    headers: BTreeMap<String, String>,
    /// Its body.
    body: Vec<u8>,
}

impl Delivered {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("a JSON body")
    }

    /// Whether its signature is the HMAC-SHA256 of its body under [`SECRET`].
    fn signed(&self) -> bool {
        let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).expect("any key");
        mac.update(&self.body);
        let expected: String = mac
            .finalize()
            .into_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        self.headers.get("x-orchestra-signature") == Some(&format!("sha256={expected}"))
    }

    fn event(&self) -> &str {
        self.headers
            .get("x-orchestra-event")
            .map_or("", String::as_str)
    }
}

/// A webhook receiver on 127.0.0.1: records every request, and answers each with the
/// next status of its script (200 once the script is spent).
struct Receiver {
    url: String,
    got: Arc<Mutex<Vec<Delivered>>>,
}

impl Receiver {
    fn start(script: Vec<u16>) -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").expect("binding the receiver");
        let url = format!(
            "http://{}/hooks/orchestra?team=ops",
            listener.local_addr().expect("an address")
        );
        let got = Arc::new(Mutex::new(Vec::new()));
        let record = got.clone();
        let mut script = script.into_iter();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let Some(request) = read_request(&mut stream) else {
                    continue;
                };
                record.lock().expect("receiver lock").push(request);
                let status = script.next().unwrap_or(200);
                let _ = write!(
                    stream,
                    "HTTP/1.1 {status} Scripted\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                );
            }
        });
        Receiver { url, got }
    }

    /// The requests received so far.
    fn got(&self) -> Vec<Delivered> {
        self.got.lock().expect("receiver lock").clone()
    }

    /// Waits until `n` requests have come, and returns them.
    fn wait_for(&self, n: usize) -> Vec<Delivered> {
        wait_until(&format!("{n} webhook deliveries"), TIMEOUT, || {
            let got = self.got();
            if got.len() >= n {
                Ok(got)
            } else {
                Err(format!("{got:?}"))
            }
        })
    }
}

/// Reads one HTTP/1.1 request with a `content-length` body.
fn read_request(stream: &mut std::net::TcpStream) -> Option<Delivered> {
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .ok()?;
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let mut headers = BTreeMap::new();
    loop {
        let mut header = String::new();
        reader.read_line(&mut header).ok()?;
        let header = header.trim_end();
        if header.is_empty() {
            break;
        }
        let (name, value) = header.split_once(':')?;
        headers.insert(name.trim().to_ascii_lowercase(), value.trim().to_owned());
    }
    let length: usize = headers.get("content-length")?.parse().ok()?;
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    let line = line.trim_end().to_owned();
    Some(Delivered {
        line,
        headers,
        body,
    })
}

/// Waits for the next event of type `wanted`, skipping others.
pub(crate) fn next_event(events: &mpsc::Receiver<Value>, wanted: &str) -> Value {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let event = events
            .recv_timeout(left)
            .unwrap_or_else(|_| panic!("no `{wanted}` event in time"));
        if event["type"] == wanted {
            return event;
        }
    }
}

/// `GET /api/alerts/incidents?{query}`'s incidents.
fn incidents(host: &Orchestra, query: &str) -> Vec<Value> {
    let (status, body) = host.get(&format!("/api/alerts/incidents?{query}"));
    assert_eq!(status, 200, "{body}");
    body["incidents"].as_array().expect("a list").clone()
}

/// Checks one delivery: its event, signature, rule and incident.
fn check_delivery(delivered: &Delivered, event: &str, rule: &str, incident: &Value) -> Value {
    assert_eq!(
        delivered.line, "POST /hooks/orchestra?team=ops HTTP/1.1",
        "posted to the webhook's URL"
    );
    assert_eq!(delivered.event(), event, "{delivered:?}");
    assert!(delivered.signed(), "a valid signature: {delivered:?}");
    assert_eq!(
        delivered.headers.get("content-type").map(String::as_str),
        Some("application/json")
    );
    let body = delivered.json();
    assert_eq!(body["event"], event, "{body}");
    assert_eq!(body["rule"], rule, "{body}");
    assert_eq!(body["incident"]["id"], *incident, "{body}");
    assert!(body["sent_at"].is_string(), "{body}");
    assert!(!String::from_utf8_lossy(&delivered.body).contains(SECRET));
    body
}

#[test]
fn a_rule_fires_once_per_incident_and_resolves_with_signed_webhooks() {
    let host = Orchestra::start(Options::new().plugin("echo"));
    let hook = Receiver::start(Vec::new());
    let events = host.listen("/api/events?types=alert.*", None);
    let (status, answer) = host.post_empty("/api/queues/default/pause");
    assert_eq!(status, 200, "{answer}");
    let jobs: Vec<String> = (0..3)
        .map(|n| host.submit("echo", json!({"n": n})))
        .collect();
    let rule = json!({
        "condition": {"kind": "queue_depth", "queue": "default", "above": 2},
        "webhook": {"url": hook.url, "secret": SECRET},
    });
    let (status, stored) = host.put("/api/alerts/backlog", &rule);
    assert_eq!(status, 201, "{stored}");
    assert_eq!(stored["webhook"]["has_secret"], true, "{stored}");
    assert!(!stored.to_string().contains(SECRET), "{stored}");

    let fired = next_event(&events, "alert.fired");
    assert_eq!(
        (&fired["rule_id"], &fired["subject"]),
        (&json!("backlog"), &json!("default")),
        "{fired}"
    );
    let incident = fired["incident_id"].clone();
    let [delivered] = hook.wait_for(1).try_into().expect("one delivery");
    let body = check_delivery(&delivered, "alert.fired", "backlog", &incident);
    assert_eq!(body["incident"]["subject"], "default", "{body}");
    assert!(
        body["incident"]["summary"]
            .as_str()
            .is_some_and(|s| s.contains("3 jobs waiting")),
        "{body}"
    );
    assert_eq!(body["incident"]["resolved_at"], Value::Null, "{body}");
    let open = incidents(&host, "open=true");
    assert_eq!(open.len(), 1, "{open:?}");
    assert_eq!(open[0]["id"], incident, "{open:?}");
    // The condition still holds through several evaluations: nothing fires again.
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(hook.got().len(), 1, "{:?}", hook.got());
    assert_eq!(incidents(&host, "").len(), 1);

    let (status, answer) = host.post_empty("/api/queues/default/resume");
    assert_eq!(status, 200, "{answer}");
    host.wait_for_all(&jobs, &["succeeded"], TIMEOUT);
    let resolved = next_event(&events, "alert.resolved");
    assert_eq!(resolved["incident_id"], incident, "{resolved}");
    let delivered = hook.wait_for(2);
    let body = check_delivery(&delivered[1], "alert.resolved", "backlog", &incident);
    assert!(body["incident"]["resolved_at"].is_string(), "{body}");
    assert!(incidents(&host, "open=true").is_empty());
    let closed = incidents(&host, "open=false");
    assert_eq!(closed.len(), 1, "{closed:?}");
    assert_eq!(
        closed[0]["resolved_at"], body["incident"]["resolved_at"],
        "{closed:?}"
    );
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(hook.got().len(), 2, "nothing more: {:?}", hook.got());
    assert!(
        events.try_iter().all(|e| e["type"] != "alert.fired"),
        "fired once only"
    );
}

#[test]
fn a_failed_job_alerts_and_a_failing_webhook_is_retried_until_delivered() {
    let host = Orchestra::start(Options::new().plugin("flaky"));
    let hook = Receiver::start(vec![500]);
    let rule = json!({
        "condition": {"kind": "job_failed", "plugin": "flaky"},
        "webhook": {"url": hook.url, "secret": SECRET},
    });
    let (status, stored) = host.put("/api/alerts/failures", &rule);
    assert_eq!(status, 201, "{stored}");
    let events = host.listen("/api/events?types=alert.*", None);
    let job = host.submit("flaky", json!({"fatal": true}));
    host.wait_for_state(&job, &["failed"], TIMEOUT);
    let fired = next_event(&events, "alert.fired");
    assert_eq!(fired["job_id"], job.as_str(), "about the job: {fired}");

    let delivered = hook.wait_for(2);
    let incident = delivered[0].json()["incident"]["id"].clone();
    for attempt in &delivered {
        let body = check_delivery(attempt, "alert.fired", "failures", &incident);
        assert_eq!(body["incident"]["subject"], job.as_str(), "{body}");
    }
    let deliveries = wait_until("the delivery job to succeed", TIMEOUT, || {
        let (jobs, _) = host.list("plugin=orchestra.webhook");
        match jobs.as_slice() {
            [one] if one["state"] == "succeeded" => Ok(jobs),
            _ => Err(format!("{jobs:?}")),
        }
    });
    assert_eq!(deliveries[0]["queue"], "maintenance", "{deliveries:?}");
    assert_eq!(deliveries[0]["attempt"], 2, "retried once: {deliveries:?}");
    let open = incidents(&host, "open=true");
    assert_eq!(open.len(), 1, "{open:?}");

    let (status, answer) = host.delete(&format!("/api/jobs/{job}"));
    assert_eq!(status, 204, "{answer}");
    let delivered = hook.wait_for(3);
    check_delivery(&delivered[2], "alert.resolved", "failures", &incident);
    assert!(incidents(&host, "open=true").is_empty());
    let (status, answer) = host.post("/api/jobs", &json!({"plugin": "orchestra.webhook"}));
    assert_eq!(
        status, 422,
        "clients cannot submit the built-in delivery: {answer}"
    );
}

#[test]
fn a_failure_rate_and_a_queue_s_wait_fire_and_resolve() {
    let host = Orchestra::start(Options::new().plugin("flaky").plugin("echo"));
    let events = host.listen("/api/events?types=alert.*", None);
    let rate = json!({"condition": {"kind": "failure_rate", "plugin": "flaky", "above": 0.5,
                                    "window_seconds": 60, "min_runs": 2}});
    let (status, stored) = host.put("/api/alerts/flaky-errors", &rate);
    assert_eq!(status, 201, "{stored}");
    let failed: Vec<String> = (0..2)
        .map(|_| host.submit_job(json!({"plugin": "flaky", "args": {"fatal": true}})))
        .collect();
    host.wait_for_all(&failed, &["failed"], TIMEOUT);
    let fired = next_event(&events, "alert.fired");
    assert_eq!(fired["subject"], "plugin=flaky", "{fired}");
    assert!(
        fired["summary"]
            .as_str()
            .is_some_and(|s| s.starts_with("2 of 2 runs")),
        "{fired}"
    );
    let passed: Vec<String> = (0..3)
        .map(|_| host.submit_job(json!({"plugin": "flaky", "args": {"succeed_on": 1}})))
        .collect();
    host.wait_for_all(&passed, &["succeeded"], TIMEOUT);
    let resolved = next_event(&events, "alert.resolved");
    assert_eq!(
        resolved["incident_id"], fired["incident_id"],
        "2 of 5 failed: {resolved}"
    );

    let (status, answer) = host.post_empty("/api/queues/long-running/pause");
    assert_eq!(status, 200, "{answer}");
    let wait =
        json!({"condition": {"kind": "queue_age", "queue": "long-running", "above_seconds": 1}});
    let (status, stored) = host.put("/api/alerts/stuck", &wait);
    assert_eq!(status, 201, "{stored}");
    let waiting = host.submit_job(json!({"plugin": "echo", "queue": "long-running"}));
    let fired = next_event(&events, "alert.fired");
    assert_eq!(
        (&fired["rule_id"], &fired["subject"]),
        (&json!("stuck"), &json!("long-running")),
        "{fired}"
    );
    host.post_empty("/api/queues/long-running/resume");
    host.wait_for_state(&waiting, &["succeeded"], TIMEOUT);
    let resolved = next_event(&events, "alert.resolved");
    assert_eq!(resolved["incident_id"], fired["incident_id"], "{resolved}");
    assert_eq!(incidents(&host, "open=false").len(), 2);
}

#[test]
fn an_agent_that_goes_offline_alerts_until_it_is_back() {
    let ws = Workspace::new();
    let config = "agent_health_schedule = \"* * * * * *\"\nagent_health_misses = 2\n";
    let host = Orchestra::start(ws.options().config(config));
    let rule = json!({"condition": {"kind": "agent_offline", "agent": "remote"}});
    let (status, stored) = host.put("/api/alerts/remote-down", &rule);
    assert_eq!(status, 201, "{stored}");
    let events = host.listen("/api/events?types=alert.*", None);
    let mut remote = ws.shell_agent("remote");
    remote["health_interval_seconds"] = json!(1);
    host.register_agent(&remote);
    let (status, beat) = host.post_empty("/api/agents/remote/heartbeat");
    assert_eq!(status, 200, "{beat}");
    let fired = next_event(&events, "alert.fired");
    assert_eq!(
        (&fired["subject"], &fired["agent_id"]),
        (&json!("remote"), &json!("remote")),
        "{fired}"
    );
    assert!(
        fired["summary"]
            .as_str()
            .is_some_and(|s| s.starts_with("agent remote is offline")),
        "{fired}"
    );
    let (status, beat) = host.post_empty("/api/agents/remote/heartbeat");
    assert_eq!(status, 200, "{beat}");
    let resolved = next_event(&events, "alert.resolved");
    assert_eq!(resolved["incident_id"], fired["incident_id"], "{resolved}");
}

#[test]
fn rules_are_for_admins_checked_by_field_and_never_show_their_secret() {
    let host = Orchestra::start(Options::new());
    let reader = make_token(&host, "read", "watcher");
    let rule = json!({
        "condition": {"kind": "agent_offline"},
        "webhook": {"url": "https://hooks.example.com/services/T0/B0/token", "secret": SECRET},
    });
    for (method, body) in [("PUT", Some(&rule)), ("DELETE", None)] {
        let (status, answer) = send(&host, Some(&reader), method, "/api/alerts/agents", body);
        assert_eq!(status, 403, "{method} with a read token: {answer}");
    }
    let refusals = [
        (
            json!({"condition": {"kind": "queue_depth", "queue": "Bad!", "above": 1}}),
            "condition.queue",
        ),
        (
            json!({"condition": {"kind": "failure_rate", "above": 2, "window_seconds": 60}}),
            "condition.above",
        ),
        (
            json!({"condition": {"kind": "failure_rate", "above": 0.5, "window_seconds": 0}}),
            "condition.window_seconds",
        ),
        (
            json!({"condition": {"kind": "agent_offline"}, "webhook": {"url": "ftp://example.com/"}}),
            "webhook.url",
        ),
        (
            json!({"condition": {"kind": "agent_offline"},
                   "webhook": {"url": "https://example.com/", "secret": "short"}}),
            "webhook.secret",
        ),
        (
            json!({"id": "other", "condition": {"kind": "agent_offline"}}),
            "id",
        ),
    ];
    for (body, field) in refusals {
        let (status, answer) = host.put("/api/alerts/agents", &body);
        assert_eq!(status, 422, "{body}: {answer}");
        assert_eq!(answer["field"], field, "{body}: {answer}");
    }
    let (status, answer) = host.put("/api/alerts/bad%20id", &rule);
    assert_eq!((status, &answer["field"]), (422, &json!("id")), "{answer}");
    let (status, answer) = host.put(
        "/api/alerts/agents",
        &json!({"condition": {"kind": "disk"}}),
    );
    assert_eq!(status, 422, "{answer}");
    assert!(answer["error"].is_string(), "{answer}");

    let (status, stored) = host.put("/api/alerts/agents", &rule);
    assert_eq!(status, 201, "{stored}");
    let (status, stored) = host.put("/api/alerts/agents", &rule);
    assert_eq!(status, 200, "replaced: {stored}");
    let (status, listed) = host.get("/api/alerts");
    assert_eq!(status, 200, "{listed}");
    assert_eq!(
        listed["alerts"][0]["webhook"],
        json!({"url": "https://hooks.example.com/services/T0/B0/token", "has_secret": true})
    );
    assert_eq!(listed["alerts"][0]["condition"]["kind"], "agent_offline");
    let (status, as_reader) = send(&host, Some(&reader), "GET", "/api/alerts", None);
    assert_eq!(status, 200, "{as_reader}");
    assert_eq!(
        as_reader["alerts"][0]["webhook"]["url"], "https://hooks.example.com",
        "a read token sees only where it goes: {as_reader}"
    );
    let (status, deleted) = host.delete("/api/alerts/agents");
    assert_eq!(status, 204, "{deleted}");
    let (status, again) = host.delete("/api/alerts/agents");
    assert_eq!(status, 404, "{again}");
    let (_, audit) = host.get("/api/audit");
    let actions: Vec<&str> = audit["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .filter(|e| e["target"] == "agents")
        .filter_map(|e| e["action"].as_str())
        .collect();
    assert_eq!(
        actions,
        ["alert.deleted", "alert.changed", "alert.created"],
        "{audit}"
    );
    for secretless in [&listed, &as_reader, &audit] {
        assert!(!secretless.to_string().contains(SECRET), "{secretless}");
    }
    for query in ["open=maybe", "limit=0", "limit=lots", "since=1"] {
        let (status, answer) = host.get(&format!("/api/alerts/incidents?{query}"));
        assert_eq!(status, 400, "{query}: {answer}");
    }
}

#[test]
fn a_rule_from_the_settings_file_watches_plugins_that_fail_to_load() {
    let toml = "retain_failed_days = 0\n[[alerts]]\nid = \"plugins\"\n\
                condition = { kind = \"plugin_load_failed\" }\n";
    let host = Orchestra::start(Options::new().plugin("echo").config(toml));
    let (status, listed) = host.get("/api/alerts");
    assert_eq!(status, 200, "{listed}");
    assert_eq!(listed["alerts"][0]["id"], "plugins", "{listed}");
    assert_eq!(listed["alerts"][0]["webhook"], Value::Null, "{listed}");
    let events = host.listen("/api/events?types=alert.*", None);
    host.write_plugin_file("broken.wasm", b"this is not a wasm component");
    let fired = next_event(&events, "alert.fired");
    assert_eq!(
        (&fired["rule_id"], &fired["subject"]),
        (&json!("plugins"), &json!("broken")),
        "{fired}"
    );
    host.remove_plugin("broken");
    let resolved = next_event(&events, "alert.resolved");
    assert_eq!(resolved["incident_id"], fired["incident_id"], "{resolved}");
    let all = incidents(&host, "");
    assert_eq!(all.len(), 1, "{all:?}");
    assert!(all[0]["resolved_at"].is_string(), "{all:?}");
    assert!(
        host.log()
            .contains("alert fired: plugin broken failed to load"),
        "logged"
    );
}
