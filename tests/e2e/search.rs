//! Searching jobs by text among thousands, through the trigram index the host builds in
//! the background, and the gauge of jobs it has yet to index.

use crate::common::{Options, Orchestra, TIMEOUT, wait_until};
use serde_json::json;

/// The value of the `orchestra_search_backlog_jobs` gauge.
fn backlog(host: &Orchestra) -> Result<u64, String> {
    let text = ureq::get(host.url("/metrics"))
        .header("authorization", host.authorization())
        .call()
        .map_err(|e| e.to_string())?
        .body_mut()
        .read_to_string()
        .map_err(|e| e.to_string())?;
    text.lines()
        .find_map(|line| line.strip_prefix("orchestra_search_backlog_jobs "))
        .ok_or_else(|| "no orchestra_search_backlog_jobs".to_owned())?
        .parse()
        .map_err(|e| format!("{e}"))
}

#[test]
fn a_job_is_found_by_an_arg_among_thousands_once_indexed() {
    let host = Orchestra::start(Options::new().plugin("echo"));
    host.post("/api/queues/parked/pause", &json!({}));
    for thousand in 0..3 {
        let jobs: Vec<_> = (0..1000)
            .map(|n| {
                let order = format!("order-{}", thousand * 1000 + n);
                json!({"plugin": "echo", "queue": "parked", "args": {"order": order}})
            })
            .collect();
        let (status, answer) = host.post("/api/batches", &json!({ "jobs": jobs }));
        assert_eq!(status, 201, "{answer}");
    }
    assert!(backlog(&host).is_ok(), "the gauge is exposed");
    wait_until("every job indexed", TIMEOUT, || match backlog(&host)? {
        0 => Ok(()),
        left => Err(format!("{left} jobs to index")),
    });

    let (status, found) = host.get("/api/jobs?q=ORDER-1234");
    assert_eq!(status, 200, "{found}");
    let jobs = found["jobs"].as_array().unwrap();
    let orders: Vec<&str> = jobs
        .iter()
        .map(|job| job["args"]["order"].as_str().unwrap())
        .collect();
    assert_eq!(orders, ["order-1234"]);
    let (status, none) = host.get("/api/jobs?q=order-3000");
    assert_eq!(status, 200);
    assert_eq!(none["jobs"], json!([]));
}
