//! The command line: `orchestra enqueue` submits over HTTP and says what went wrong.

use crate::common::{Options, Orchestra, TIMEOUT};
use serde_json::{Value, json};
use std::process::{Command, Output};

/// Runs `orchestra enqueue ARGS…` against `host`.
fn enqueue(host: &Orchestra, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_orchestra"))
        .arg("enqueue")
        .args(args)
        .env("ORCHESTRA_URL", host.url(""))
        .output()
        .expect("running orchestra enqueue")
}

#[test]
fn enqueue_submits_a_job_that_runs() {
    let host = Orchestra::start(Options::new().plugin("echo"));
    let out = enqueue(
        &host,
        &["echo", "--args", r#"{"from":"cli"}"#, "--priority", "5"],
    );
    assert!(out.status.success(), "enqueue failed: {out:?}");
    let answer: Value = serde_json::from_slice(&out.stdout).expect("enqueue prints JSON");
    let id = answer["id"].as_str().expect("an id");
    let job = host.wait_for_state(id, &["succeeded"], TIMEOUT);
    assert_eq!(job["result"], json!({"from": "cli"}));
    assert_eq!(job["priority"], 5);
}

#[test]
fn enqueue_reports_refusals_and_bad_args() {
    let host = Orchestra::start(Options::new().plugin("echo"));
    let unknown = enqueue(&host, &["nosuch"]);
    assert!(!unknown.status.success());
    let stderr = String::from_utf8_lossy(&unknown.stderr);
    assert!(
        stderr.contains("422") && stderr.contains("unknown plugin"),
        "{stderr}"
    );
    let bad = enqueue(&host, &["echo", "--args", "{nope"]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--args is not JSON"));
    let (_, list) = host.get("/api/jobs");
    assert_eq!(list["jobs"], json!([]), "nothing was stored");
}
