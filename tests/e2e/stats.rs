//! Analytics: `GET /api/stats/series` over a day of generated history (written to the
//! database through the store, as the host's own runs write it), over jobs the host runs
//! now, and after the jobs are cleaned away.

use crate::common::*;
use orchestra::model::{JsonText, NewJob, Usage};
use orchestra::store::sqlite::SqliteStore;
use orchestra::store::{AfterFailure, ClaimParams, Completion, Durability, Failure, JobStore};
use serde_json::{Value, json};
use std::path::Path;
use std::time::Duration;

const HOUR: i64 = 3_600_000;
const DAY: i64 = 24 * HOUR;

/// Runs of `echo` in hour `h` of the generated day, and how many of them fail.
fn runs_in(h: i64) -> (i64, i64) {
    (4 + h % 3, i64::from(h % 6 == 0))
}

/// Writes a day of history from `day`: in hour `h`, [`runs_in`] runs of `echo`, each
/// picked up `h` ms after it was due and running 20 ms (the failed ones 80 ms).
fn generate(db: &Path, day: i64) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let store = SqliteStore::open(db, Durability::Normal).await.unwrap();
        for h in 0..24 {
            let (runs, failing) = runs_in(h);
            for n in 0..runs {
                let at = day + h * HOUR + n * 60_000;
                let job = NewJob::new("echo", JsonText::from_value(&json!({})), "default");
                store.enqueue(job, at).await.unwrap();
                let params = ClaimParams {
                    queues: vec!["default".into()],
                    limit: 1,
                    owner: "history".into(),
                    lease_until: at + HOUR,
                    parked_agents: Vec::new(),
                    waiting_plugins: Vec::new(),
                };
                let claimed = store.claim(&params, at + h).await.unwrap().remove(0);
                let (id, lease) = (claimed.job.id, claimed.lease);
                let usage = |wall_ms| Usage {
                    wall_ms,
                    ..Usage::default()
                };
                if n < failing {
                    let failure = Failure {
                        error: orchestra::model::JobError::new(
                            orchestra::model::ErrorKind::Fatal,
                            "generated",
                        ),
                        then: AfterFailure::Fail,
                        plugin_digest: None,
                        usage: usage(80),
                    };
                    store.fail(id, lease, failure, at + h + 80).await.unwrap();
                } else {
                    let done = Completion {
                        result: JsonText::from_value(&json!({})),
                        plugin_digest: "generated".into(),
                        usage: usage(20),
                    };
                    store.complete(id, lease, done, at + h + 20).await.unwrap();
                }
            }
        }
        store.close().await;
    });
}

/// The values of `metric` for `key` in a series answer.
fn values(answer: &Value, key: Option<&str>, metric: &str) -> Vec<Value> {
    let series = answer["series"].as_array().expect("series");
    let found = series
        .iter()
        .find(|s| s["key"].as_str() == key && s["metric"] == metric)
        .unwrap_or_else(|| panic!("no {metric} series for {key:?} in {answer}"));
    found["values"].as_array().unwrap().clone()
}

fn number(value: &Value) -> f64 {
    value
        .as_f64()
        .unwrap_or_else(|| panic!("not a number: {value}"))
}

#[test]
fn series_show_a_day_of_history_outlive_cleanup_and_count_runs_as_they_happen() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("history.db");
    let day = (now_ms() / DAY - 2) * DAY;
    generate(&db, day);
    let host = Orchestra::start(
        Options::new()
            .plugin("echo")
            .db(&db)
            .config("retain_succeeded_days = 0\nretain_failed_days = 0\n"),
    );
    let range = format!("from={}&to={}", rfc3339(day), rfc3339(day + DAY));

    let (status, hourly) = host.get(&format!("/api/stats/series?bucket=hour&by=plugin&{range}"));
    assert_eq!(status, 200, "{hourly}");
    let times = hourly["times"].as_array().unwrap();
    assert_eq!(times.len(), 24);
    assert_eq!(times[0], rfc3339(day));
    let succeeded = values(&hourly, Some("echo"), "succeeded");
    let failed = values(&hourly, Some("echo"), "failed");
    let rate = values(&hourly, Some("echo"), "failure_rate");
    let pickup = values(&hourly, Some("echo"), "pickup_p50_ms");
    for h in 0..24 {
        let (runs, failing) = runs_in(h);
        let i = h as usize;
        assert_eq!(number(&succeeded[i]), (runs - failing) as f64, "hour {h}");
        assert_eq!(number(&failed[i]), failing as f64, "hour {h}");
        assert!((number(&rate[i]) - failing as f64 / runs as f64).abs() < 1e-9);
        if h > 0 {
            let p50 = number(&pickup[i]);
            assert!((p50 - h as f64).abs() <= h as f64 * 0.05, "hour {h}: {p50}");
        }
    }
    let p50 = number(&values(&hourly, Some("echo"), "run_time_p50_ms")[1]);
    assert!((p50 - 20.0).abs() < 1.0, "run time p50 {p50}");
    let p95 = number(&values(&hourly, Some("echo"), "run_time_p95_ms")[0]);
    assert!(
        (p95 - 80.0).abs() < 4.0,
        "the failed run is the slowest: {p95}"
    );

    let (status, daily) = host.get(&format!(
        "/api/stats/series?bucket=day&metric=succeeded,failed&{range}"
    ));
    assert_eq!(status, 200, "{daily}");
    let total: i64 = (0..24).map(|h| runs_in(h).0).sum();
    assert_eq!(
        number(&values(&daily, None, "succeeded")[0]),
        (total - 4) as f64
    );
    assert_eq!(number(&values(&daily, None, "failed")[0]), 4.0);
    assert_eq!(
        daily["series"].as_array().unwrap().len(),
        2,
        "only what was asked"
    );

    assert!(!host.list_ids("plugin=echo&limit=1").is_empty());
    let (status, cleaned) = host.post_empty("/api/maintenance/cleanup");
    assert_eq!(status, 200, "{cleaned}");
    assert!(host.list_ids("plugin=echo").is_empty(), "{cleaned}");
    let (_, after) = host.get(&format!("/api/stats/series?bucket=hour&by=plugin&{range}"));
    assert_eq!(after, hourly, "the series outlive the jobs");

    let ids: Vec<String> = (0..3)
        .map(|n| host.submit("echo", json!({"n": n})))
        .collect();
    for id in &ids {
        host.wait_for_state(id, &["succeeded"], Duration::from_secs(30));
    }
    let now = wait_until("the runs counted", Duration::from_secs(10), || {
        let (_, now) = host.get("/api/stats/series?bucket=minute&metric=succeeded&by=queue");
        let counted: f64 = values(&now, Some("default"), "succeeded")
            .iter()
            .map(number)
            .sum();
        if counted == 3.0 {
            Ok(now)
        } else {
            Err(now.to_string())
        }
    });
    assert_eq!(now["times"].as_array().unwrap().len(), 60);
}

#[test]
fn series_refuse_what_they_cannot_answer() {
    let host = Orchestra::start(Options::new());
    let refused = [
        ("bucket=week", "bucket"),
        ("by=host", "by"),
        ("metric=succeeded,latency", "metric"),
        ("from=yesterday", "from"),
        ("from=2026-01-02T00:00:00Z&to=2026-01-01T00:00:00Z", "from"),
        (
            "bucket=minute&from=2025-01-01T00:00:00Z&to=2026-01-01T00:00:00Z",
            "bucket",
        ),
    ];
    for (query, field) in refused {
        let (status, body) = host.get(&format!("/api/stats/series?{query}"));
        assert_eq!(status, 422, "{query}: {body}");
        assert_eq!(body["field"], field, "{query}: {body}");
    }
    let (status, body) = host.get("/api/stats/series?colour=red");
    assert_eq!(status, 400, "{body}");
    let (status, empty) = host.get("/api/stats/series?bucket=day");
    assert_eq!(status, 200, "{empty}");
    assert_eq!(empty["times"].as_array().unwrap().len(), 30);
    let failed = values(&empty, None, "failed");
    assert!(failed.iter().all(|v| v == 0.0), "{empty}");
    assert!(
        values(&empty, None, "failure_rate")
            .iter()
            .all(Value::is_null)
    );
}
