//! The command line: `orchestra enqueue` submits over HTTP and says what went wrong;
//! `orchestra token` makes, lists and revokes API tokens; `orchestra plugin check` loads a
//! module and runs a dry job, `orchestra plugin new` writes a Rust, Python or JavaScript
//! project that tests, builds and checks.

use crate::common::{Options, Orchestra, TIMEOUT, plugin_module, workspace};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
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

/// Runs `orchestra plugin ARGS…`.
fn plugin(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_orchestra"))
        .arg("plugin")
        .args(args)
        .output()
        .expect("running orchestra plugin")
}

/// Runs `orchestra plugin check FILE ARGS…`.
fn check(file: &Path, args: &[&str]) -> Output {
    let file = file.to_str().expect("a UTF-8 path");
    plugin(&[&["check", file], args].concat())
}

#[test]
fn plugin_check_runs_a_dry_job_and_prints_what_a_job_would_show() {
    let out = check(&plugin_module("echo"), &["--args", r#"{"hello":"world"}"#]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    for shown in [
        "plugin echo loads",
        "contract: orchestra:plugin@0.2.0",
        "fuel 10000000000, timeout_ms 300000, memory_mb 256",
        "max_attempts 3",
        "queue default",
        "progress 50%: args are valid JSON",
        "log info: echo: attempt 1",
        "log stdout: echo: job dry-run echoes 17 bytes",
        r#"succeeded: {"hello":"world"}"#,
        "usage: ",
    ] {
        assert!(stdout.contains(shown), "`{shown}` missing in:\n{stdout}");
    }
}

#[test]
fn plugin_check_fails_with_the_dry_jobs_error() {
    let out = check(&plugin_module("flaky"), &["--args", r#"{"fatal":true}"#]);
    let stdout = text(&out.stdout);
    assert!(!out.status.success(), "{out:?}");
    assert!(
        stdout.contains("contract: orchestra:plugin@0.1.0"),
        "{stdout}"
    );
    assert!(stdout.contains("failed (fatal): "), "{stdout}");
    assert!(
        text(&out.stderr).contains("the dry job failed with fatal (a job would fail at once)"),
        "{out:?}"
    );
}

#[test]
fn plugin_check_refuses_what_the_host_would_not_load() {
    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("junk.wasm");
    std::fs::write(&junk, b"not a component").unwrap();
    let out = check(&junk, &[]);
    assert!(!out.status.success(), "{out:?}");
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("junk.wasm does not load: module does not compile"),
        "{stderr}"
    );

    let small = dir.path().join("small.toml");
    std::fs::write(&small, "memory_mb = 16\n").unwrap();
    let small = small.to_str().unwrap();
    let out = check(&plugin_module("bigmem"), &["--manifest", small]);
    assert!(!out.status.success(), "{out:?}");
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("it needs at least 33 MiB") && stderr.contains("memory_mb of 16 MiB"),
        "{stderr}"
    );
    let out = check(&plugin_module("echo"), &["--args", "{nope"]);
    assert!(text(&out.stderr).contains("--args is not JSON"), "{out:?}");
}

#[test]
fn plugin_new_writes_a_rust_project_that_tests_builds_and_checks() {
    let dir = tempfile::tempdir().unwrap();
    let project = new_project(dir.path(), "hello-plugin", "rust");
    // The project's own builds share a target folder, which keeps its dependencies.
    let target = workspace().join("target/plugin-new");
    let cargo = |args: &[&str]| {
        let out = Command::new(env!("CARGO"))
            .args(args)
            .current_dir(&project)
            .env("CARGO_TARGET_DIR", &target)
            .env("CARGO_NET_OFFLINE", "true")
            .output()
            .expect("running cargo");
        assert!(out.status.success(), "cargo {args:?}: {out:?}");
        out
    };
    let tested = cargo(&["test"]);
    assert!(
        text(&tested.stdout).contains("test result: ok. 2 passed"),
        "{tested:?}"
    );
    cargo(&["build", "--release", "--target", "wasm32-wasip2"]);
    let module = target.join("wasm32-wasip2/release/hello_plugin.wasm");
    assert_greets(&module);
    let out = check(&module, &["--args", r#"{"name":""}"#]);
    assert!(!out.status.success(), "{out:?}");
    assert!(
        text(&out.stdout).contains("failed (retryable): the name is empty"),
        "{out:?}"
    );
}

/// Asserts that `plugin check` loads `module`, a project `plugin new` wrote, and that its
/// dry job greets a name. (Each check of a Python or JavaScript module compiles it anew:
/// their failures are left to the projects' own tests.)
fn assert_greets(module: &Path) {
    let out = check(module, &["--args", r#"{"name":"world"}"#]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    assert!(
        stdout.contains(r#"succeeded: {"text":"hello, world"}"#),
        "{stdout}"
    );
    assert!(stdout.contains("max_attempts 3"), "{stdout}");
}

#[test]
fn plugin_new_writes_a_python_project_that_tests_builds_and_checks() {
    let dir = tempfile::tempdir().unwrap();
    let project = new_project(dir.path(), "hello-py", "python");
    run_in(
        &project,
        None,
        &["python3", "-m", "unittest"],
        "Ran 2 tests",
    );
    let venv = toolchain("target/venv/bin");
    run_in(
        &project,
        Some(&venv),
        &["sh", "build.sh"],
        "Component built",
    );
    assert_greets(&project.join("hello-py.wasm"));
}

#[test]
fn plugin_new_writes_a_javascript_project_that_tests_builds_and_checks() {
    let dir = tempfile::tempdir().unwrap();
    let project = new_project(dir.path(), "hello-js", "js");
    run_in(&project, None, &["node", "--test"], "# pass 2");
    let node = toolchain("target/node/node_modules/.bin");
    run_in(
        &project,
        Some(&node),
        &["npm", "run", "build"],
        "componentize-js",
    );
    assert_greets(&project.join("hello-js.wasm"));
}

/// Writes a `lang` project for the plugin `name` with `plugin new` in `dir`/`name`.
fn new_project(dir: &Path, name: &str, lang: &str) -> PathBuf {
    let project = dir.join(name);
    let out = plugin(&[
        "new",
        name,
        "--lang",
        lang,
        "--dir",
        project.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{out:?}");
    project
}

/// A toolchain folder scripts/plugins.sh installs (shared, so nothing is downloaded here).
fn toolchain(path: &str) -> PathBuf {
    let dir = workspace().join(path);
    assert!(
        dir.is_dir(),
        "run scripts/plugins.sh first: {} is missing",
        dir.display()
    );
    dir
}

/// Runs `command` in `dir`, with `bin` first on the `PATH` when given; asserts that it
/// succeeds and that its output shows `shown`.
fn run_in(dir: &Path, bin: Option<&Path>, command: &[&str], shown: &str) {
    let mut path =
        std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()).collect::<Vec<_>>();
    path.splice(0..0, bin.map(Path::to_owned));
    let out = Command::new(command[0])
        .args(&command[1..])
        .current_dir(dir)
        .env("PATH", std::env::join_paths(path).expect("a PATH"))
        .output()
        .unwrap_or_else(|e| panic!("running {command:?}: {e}"));
    let output = text(&out.stdout) + &text(&out.stderr);
    assert!(out.status.success(), "{command:?} failed: {output}");
    assert!(
        output.contains(shown),
        "`{shown}` missing from {command:?}: {output}"
    );
}

#[test]
fn plugin_new_refuses_bad_names_occupied_folders_and_a_missing_sdk() {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().to_str().unwrap();
    let out = plugin(&["new", "no spaces", "--lang", "rust", "--dir", base]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("cannot name a plugin"),
        "{out:?}"
    );

    std::fs::write(dir.path().join("keep"), "mine").unwrap();
    let out = plugin(&["new", "ok", "--lang", "rust", "--dir", base]);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("is not empty"), "{out:?}");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);

    let fresh = dir.path().join("fresh");
    let fresh = fresh.to_str().unwrap();
    let nosdk = &["new", "ok", "--lang", "rust", "--dir", fresh, "--sdk", base];
    let out = plugin(nosdk);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("no SDK crate at"), "{out:?}");

    let out = plugin(&[
        "new", "ok", "--lang", "python", "--dir", fresh, "--sdk", base,
    ]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("--sdk names the Rust SDK"),
        "{out:?}"
    );
    let out = plugin(&["new", "ok", "--lang", "go", "--dir", fresh]);
    assert!(
        !out.status.success(),
        "rust, python and js are offered: {out:?}"
    );
}
