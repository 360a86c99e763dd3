//! The command line: `orchestra enqueue` submits over HTTP and says what went wrong;
//! `orchestra token` makes, lists and revokes API tokens.

use crate::common::{Options, Orchestra, TIMEOUT};
use serde_json::{Value, json};
use std::process::{Command, Output};

/// Runs `orchestra enqueue ARGS…` against `host`.
fn enqueue(host: &Orchestra, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_orchestra"))
        .arg("enqueue")
        .args(args)
        .env("ORCHESTRA_URL", host.url(""))
        .env("ORCHESTRA_TOKEN", host.token().expect("the host's token"))
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

/// Runs `orchestra token ARGS…` on the database `db`.
fn token(db: &std::path::Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_orchestra"))
        .arg("token")
        .args(args)
        .arg("--db")
        .arg(db)
        .output()
        .expect("running orchestra token")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn tokens_are_made_listed_and_revoked_and_shown_only_once() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("tokens.db");
    let made = token(&db, &["create", "--role", "admin", "--name", "ops"]);
    assert!(made.status.success(), "{made:?}");
    let out = text(&made.stdout);
    let secret = out.lines().last().expect("the token, last").trim();
    assert!(
        secret.starts_with("orch_") && secret.len() == 69,
        "the token is the last line: {out}"
    );
    let reader = token(&db, &["create", "--role", "read"]);
    assert!(reader.status.success(), "{reader:?}");

    let listed = token(&db, &["list"]);
    let list = text(&listed.stdout);
    assert!(listed.status.success(), "{listed:?}");
    assert!(
        list.contains("ops\tadmin") && list.contains("\tread\t"),
        "{list}"
    );
    assert!(
        !list.contains(secret),
        "a token is never shown again: {list}"
    );
    for file in std::fs::read_dir(dir.path()).unwrap() {
        let stored = std::fs::read(file.unwrap().path()).unwrap();
        assert!(
            !stored.windows(secret.len()).any(|w| w == secret.as_bytes()),
            "the database keeps no token in clear"
        );
    }

    let taken = token(&db, &["create", "--role", "read", "--name", "ops"]);
    assert!(!taken.status.success());
    assert!(text(&taken.stderr).contains("exists already"), "{taken:?}");
    let bad = token(&db, &["create", "--role", "read", "--name", "no spaces"]);
    assert!(!bad.status.success());
    assert!(text(&bad.stderr).contains("is invalid"), "{bad:?}");

    let revoked = token(&db, &["revoke", "ops"]);
    assert!(revoked.status.success(), "{revoked:?}");
    let list = text(&token(&db, &["list"]).stdout);
    assert!(
        list.contains("ops\tadmin") && list.contains("revoked"),
        "{list}"
    );
    let again = token(&db, &["revoke", "ops"]);
    assert!(!again.status.success());
    assert!(
        text(&again.stderr).contains("no token named ops"),
        "{again:?}"
    );
}

#[test]
fn tokens_are_not_made_behind_a_running_host() {
    let host = Orchestra::start(Options::new().plugin("echo"));
    let refused = token(&host.db_path(), &["create", "--role", "admin"]);
    assert!(!refused.status.success());
    assert!(
        text(&refused.stderr).contains("SQLite is one host"),
        "the database is in use: {refused:?}"
    );
}
