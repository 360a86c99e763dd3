//! A job's log: `GET /api/jobs/{id}` carries only its latest lines and its counts,
//! whatever the job logged; `GET /api/jobs/{id}/logs` pages through all of it.

use crate::common::agents::Workspace;
use crate::common::{Orchestra, TIMEOUT, has_log};
use serde_json::json;

/// Lines `GET /api/jobs/{id}` shows at most.
const DETAIL_LINES: usize = 100;

#[test]
fn a_long_log_is_read_page_by_page_and_the_job_stays_small() {
    let ws = Workspace::new();
    let host = Orchestra::start(ws.options());
    host.register_agent(&ws.shell_agent("sh"));
    let (_, id, _) =
        host.submit_task(&json!({"command": "seq 1 3000", "repository_path": ws.repo()}));
    let job = host.wait_for_state(&id, &["succeeded"], TIMEOUT);

    let latest = job["logs"]
        .as_array()
        .expect("the job shows its latest lines");
    assert_eq!(
        latest.len(),
        DETAIL_LINES,
        "only the latest lines: {}",
        latest.len()
    );
    assert!(
        has_log(&job, "stdout", "3000"),
        "the last line is among them"
    );
    let total = job["log_count"].as_u64().expect("a log_count");
    assert!(total > 3000, "every line is counted: {total}");
    assert_eq!(job["log_counts"], json!([{"attempt": 1, "count": total}]));

    let all = host.log_lines(&id, "limit=700");
    assert_eq!(all.len() as u64, total, "each line once");
    let seqs: Vec<i64> = all
        .iter()
        .map(|l| l["seq"].as_i64().expect("a seq"))
        .collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "in order, none twice");
    let printed: Vec<&str> = all
        .iter()
        .filter(|l| l["level"] == "stdout")
        .map(|l| l["message"].as_str().expect("a message"))
        .collect();
    let expected: Vec<String> = (1..=3000).map(|n| n.to_string()).collect();
    assert_eq!(printed, expected, "every printed line, in order");
    assert_eq!(
        &all[all.len() - DETAIL_LINES..],
        latest.as_slice(),
        "the job shows the end"
    );

    assert_eq!(host.log_lines(&id, "attempt=1").len(), all.len());
    assert!(host.log_lines(&id, "attempt=2").is_empty());
    let (status, page) = host.get(&format!("/api/jobs/{id}/logs"));
    assert_eq!(status, 200, "{page}");
    assert_eq!(
        page["lines"].as_array().map(Vec::len),
        Some(100),
        "100 by default"
    );
    for (query, wanted) in [
        ("limit=1001", 400),
        ("after=x", 400),
        ("after=0", 422),
        ("colour=red", 400),
    ] {
        let (status, answer) = host.get(&format!("/api/jobs/{id}/logs?{query}"));
        assert_eq!(status, wanted, "{query}: {answer}");
        assert!(answer["error"].is_string(), "{answer}");
    }
    let (status, answer) = host.get("/api/jobs/01900000-0000-7000-8000-000000000000/logs");
    assert_eq!(status, 404, "{answer}");
}
