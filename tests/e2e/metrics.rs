//! `GET /metrics`: the Prometheus text format, read by a Prometheus parser, with the
//! counters moving as jobs run.

use crate::common::{Options, Orchestra, TIMEOUT};
use prometheus_parse::{Sample, Scrape, Value};
use serde_json::json;

/// Reads `/metrics` with the host's token and parses it.
fn scrape(host: &Orchestra) -> Scrape {
    let mut response = ureq::get(host.url("/metrics"))
        .header("authorization", host.authorization())
        .call()
        .expect("/metrics answers");
    let kind = response.headers().get("content-type").cloned();
    assert_eq!(
        kind.as_ref().and_then(|v| v.to_str().ok()),
        Some("application/openmetrics-text; version=1.0.0; charset=utf-8")
    );
    let text = response.body_mut().read_to_string().expect("the metrics");
    Scrape::parse(text.lines().map(|line| Ok(line.to_owned()))).expect("the Prometheus text format")
}

/// The value of the sample `name` whose labels include `labels`.
fn value(scrape: &Scrape, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    scrape
        .samples
        .iter()
        .filter(|s: &&Sample| s.metric == name)
        .find(|s| labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
        .map(|s| match s.value {
            Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => v,
            Value::Histogram(ref buckets) => buckets.last().map_or(0.0, |b| b.count),
            Value::Summary(_) => f64::NAN,
        })
}

#[test]
fn metrics_count_jobs_and_runs_and_show_the_queues() {
    let host = Orchestra::start(
        Options::new()
            .plugin("echo")
            .plugin("flaky")
            .manifest("flaky", "retry_delays_seconds = [0]\nmax_attempts = 2\n"),
    );
    let before = scrape(&host);
    let created = [
        ("plugin", "echo"),
        ("queue", "default"),
        ("event", "created"),
    ];
    assert_eq!(value(&before, "orchestra_jobs_total", &created), None);

    let echoes: Vec<String> = (0..3)
        .map(|n| host.submit("echo", json!({"n": n})))
        .collect();
    host.wait_for_all(&echoes, &["succeeded"], TIMEOUT);
    let flaky = host.submit("flaky", json!({"succeed_on": 9}));
    host.wait_for_state(&flaky, &["failed"], TIMEOUT);
    host.post("/api/queues/held/pause", &json!({}));
    host.submit_job(json!({"plugin": "echo", "queue": "held"}));

    let after = scrape(&host);
    let count = |name: &str, labels: &[(&str, &str)]| value(&after, name, labels).unwrap_or(0.0);
    assert_eq!(count("orchestra_jobs_total", &created), 3.0);
    let echo = |event| [("plugin", "echo"), ("queue", "default"), ("event", event)];
    assert_eq!(count("orchestra_jobs_total", &echo("started")), 3.0);
    assert_eq!(count("orchestra_jobs_total", &echo("succeeded")), 3.0);
    let flaky_event = |event| [("plugin", "flaky"), ("event", event)];
    assert_eq!(count("orchestra_jobs_total", &flaky_event("retried")), 1.0);
    assert_eq!(count("orchestra_jobs_total", &flaky_event("failed")), 1.0);
    let failed_runs = [("plugin", "flaky"), ("outcome", "failed")];
    assert_eq!(count("orchestra_runs_total", &failed_runs), 2.0);
    assert!(count("orchestra_fuel_total", &[("plugin", "echo")]) > 0.0);
    assert_eq!(
        count("orchestra_run_seconds_count", &[("plugin", "echo")]),
        3.0
    );
    assert_eq!(count("orchestra_pickup_seconds_count", &[]), 5.0);
    assert_eq!(
        count(
            "orchestra_queue_jobs",
            &[("queue", "held"), ("state", "enqueued")]
        ),
        1.0
    );
    assert_eq!(
        count("orchestra_queue_served", &[("queue", "held")]),
        0.0,
        "nobody serves it"
    );
    assert_eq!(
        count("orchestra_queue_served", &[("queue", "default")]),
        1.0
    );
    assert_eq!(count("orchestra_plugin_load_errors", &[]), 0.0);
    assert!(
        count("orchestra_db_commit_seconds_count", &[]) > 0.0,
        "group commits are timed"
    );
}

#[test]
fn metrics_are_served_without_a_token_only_on_the_metrics_address() {
    let port = crate::common::free_port();
    let host = Orchestra::start(
        Options::new()
            .plugin("echo")
            .config(&format!("metrics_listen = \"127.0.0.1:{port}\"\n")),
    );
    let id = host.submit("echo", json!({}));
    host.wait_for_state(&id, &["succeeded"], TIMEOUT);
    let agent = crate::common::new_agent(None, std::time::Duration::from_secs(10));
    let mut response = agent
        .get(format!("http://127.0.0.1:{port}/metrics"))
        .call()
        .expect("the metrics address answers");
    assert_eq!(response.status(), 200);
    let text = response.body_mut().read_to_string().unwrap();
    let scrape = Scrape::parse(text.lines().map(|l| Ok(l.to_owned()))).expect("the text format");
    let created = [("plugin", "echo"), ("event", "created")];
    assert_eq!(value(&scrape, "orchestra_jobs_total", &created), Some(1.0));
    let api = agent
        .get(format!("http://127.0.0.1:{port}/api/jobs"))
        .call()
        .unwrap();
    assert_eq!(api.status(), 404, "only /metrics is served there");
    let guarded = agent.get(host.url("/metrics")).call().unwrap();
    assert_eq!(
        guarded.status(),
        401,
        "the API's address still asks for a token"
    );
}
