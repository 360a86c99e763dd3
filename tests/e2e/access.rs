//! Access control: every route but `/healthz` needs a token, `read` tokens only read,
//! the first start prints an admin token, tokens are made and revoked over the API,
//! foreign hosts and origins are refused, failed logins are limited, and changes to
//! agents and tokens are audited.

use crate::common::{Options, Orchestra, new_agent};
use serde_json::{Value, json};
use std::process::Command;
use std::time::Duration;

/// Every route with a method, and a body for those that take one: `(method, path,
/// body)`. Ids need not exist: a request that gets past access control may be refused
/// for other reasons, never with 401 or 403.
fn routes() -> Vec<(&'static str, &'static str, Option<Value>)> {
    let id = "01890000-0000-7000-8000-000000000000";
    let leaked =
        |path: &str| -> &'static str { Box::leak(path.replace("ID", id).into_boxed_str()) };
    let job = Some(json!({"plugin": "echo"}));
    vec![
        ("GET", "/api/jobs", None),
        ("POST", "/api/jobs", job.clone()),
        (
            "POST",
            "/api/jobs/bulk",
            Some(json!({"action": "retry", "ids": []})),
        ),
        ("GET", leaked("/api/jobs/ID"), None),
        ("DELETE", leaked("/api/jobs/ID"), None),
        ("POST", leaked("/api/jobs/ID/retry"), None),
        ("POST", leaked("/api/jobs/ID/cancel"), None),
        ("GET", leaked("/api/jobs/ID/logs"), None),
        (
            "POST",
            "/api/batches",
            Some(json!({"jobs": [{"plugin": "echo"}]})),
        ),
        ("GET", leaked("/api/batches/ID"), None),
        ("POST", leaked("/api/batches/ID/cancel"), None),
        ("GET", "/api/queues", None),
        ("POST", "/api/queues/default/pause", None),
        ("POST", "/api/queues/default/resume", None),
        (
            "PUT",
            "/api/queues/default/concurrency",
            Some(json!({"concurrency": 2})),
        ),
        ("GET", "/api/recurring", None),
        ("GET", "/api/recurring/preview?cron=@daily", None),
        ("GET", "/api/recurring/r", None),
        (
            "PUT",
            "/api/recurring/r",
            Some(json!({"cron": "@daily", "plugin": "echo"})),
        ),
        ("DELETE", "/api/recurring/r", None),
        ("POST", "/api/recurring/r/trigger", None),
        ("POST", "/api/recurring/r/pause", None),
        ("POST", "/api/recurring/r/resume", None),
        ("GET", "/api/workflows/w", None),
        (
            "PUT",
            "/api/workflows/w",
            Some(json!({"name": "w", "stages": []})),
        ),
        ("DELETE", "/api/workflows/w", None),
        ("POST", "/api/workflows/w/runs", Some(json!({}))),
        ("GET", leaked("/api/workflow-runs/ID"), None),
        ("POST", leaked("/api/workflow-runs/ID/cancel"), None),
        ("GET", "/api/agents", None),
        ("POST", "/api/agents", Some(json!({"id": "a"}))),
        ("GET", "/api/agents/a", None),
        ("PATCH", "/api/agents/a", Some(json!({"name": "b"}))),
        ("DELETE", "/api/agents/a", None),
        ("POST", "/api/agents/a/heartbeat", None),
        ("GET", "/api/tasks", None),
        (
            "POST",
            "/api/tasks",
            Some(json!({"command": "x", "repository_path": "/"})),
        ),
        ("GET", leaked("/api/tasks/ID"), None),
        ("POST", leaked("/api/tasks/ID/cancel"), None),
        ("GET", "/api/plugins", None),
        ("GET", "/api/stats", None),
        ("GET", "/api/stats/series", None),
        ("GET", "/api/session", None),
        ("DELETE", "/api/session", None),
        ("POST", "/api/maintenance/cleanup", None),
        ("GET", "/api/tokens", None),
        ("POST", "/api/tokens", Some(json!({"role": "read"}))),
        ("DELETE", "/api/tokens/nobody", None),
        ("GET", "/api/audit", None),
        ("GET", "/api/alerts", None),
        (
            "PUT",
            "/api/alerts/r",
            Some(json!({"condition": {"kind": "agent_offline"}})),
        ),
        ("DELETE", "/api/alerts/r", None),
        ("GET", "/api/alerts/incidents", None),
        ("GET", "/metrics", None),
        ("GET", "/api/openapi.json", None),
        ("GET", "/api/no-such-route", None),
    ]
}

/// Sends `method path` with `body`, as `token` (none: no `Authorization`).
pub(crate) fn send(
    host: &Orchestra,
    token: Option<&str>,
    method: &str,
    path: &str,
    body: Option<&Value>,
) -> (u16, Value) {
    let agent = new_agent(token, Duration::from_secs(30));
    let request = ureq::http::Request::builder()
        .method(method)
        .uri(host.url(path))
        .header("content-type", "application/json")
        .body(body.map(Value::to_string).unwrap_or_default())
        .expect("a request");
    let mut response = agent.run(request).expect("an answer");
    let status = response.status().as_u16();
    let text = response.body_mut().read_to_string().unwrap_or_default();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// Makes a token of `role` with the host's admin token; returns it.
pub(crate) fn make_token(host: &Orchestra, role: &str, name: &str) -> String {
    let (status, made) = host.post("/api/tokens", &json!({"role": role, "name": name}));
    assert_eq!(status, 201, "{made}");
    made["token"]
        .as_str()
        .expect("the token, shown once")
        .to_owned()
}

#[test]
fn every_route_needs_a_token_and_changes_need_an_admin() {
    let host = Orchestra::start(Options::new().plugin("echo"));
    let reader = make_token(&host, "read", "reader");
    let (status, health) = send(&host, None, "GET", "/healthz", None);
    assert_eq!(status, 200, "/healthz needs no token: {health}");
    for stream in ["/api/events", "/api/events/ws"] {
        let (status, answer) = send(&host, None, "GET", stream, None);
        assert_eq!(status, 401, "{stream} without a token: {answer}");
    }
    for (method, path, body) in routes() {
        let (status, answer) = send(&host, None, method, path, body.as_ref());
        assert_eq!(status, 401, "{method} {path} without a token: {answer}");
        assert!(answer["error"].is_string(), "{method} {path}: {answer}");
        let (status, answer) = send(&host, Some("orch_wrong"), method, path, body.as_ref());
        assert!(
            matches!(status, 401 | 429),
            "{method} {path} with a wrong token (429 once over the limit): {status} {answer}"
        );

        let (status, answer) = send(&host, Some(&reader), method, path, body.as_ref());
        // Logging out changes only the caller's own session.
        let reads = method == "GET" || (method == "DELETE" && path == "/api/session");
        if reads && !["/api/tokens", "/api/audit"].contains(&path) {
            assert!(
                status != 401 && status != 403,
                "{method} {path} is open to a read token: {status} {answer}"
            );
        } else {
            assert_eq!(status, 403, "{method} {path} with a read token: {answer}");
            assert!(answer["error"].is_string(), "{answer}");
        }
        let (status, answer) = send(&host, host.token(), method, path, body.as_ref());
        assert!(
            status != 401 && status != 403,
            "{method} {path} is open to an admin: {status} {answer}"
        );
    }
}

#[test]
fn the_first_start_prints_an_admin_token_once() {
    let mut host = Orchestra::start(Options::new().plugin("echo"));
    let token = host
        .token()
        .expect("the first start prints a token")
        .to_owned();
    let log = host.log();
    assert!(
        log.contains(&format!("curl -H 'Authorization: Bearer {token}'")),
        "with how to use it: {log}"
    );
    let (status, _) = send(&host, Some(&token), "GET", "/api/jobs", None);
    assert_eq!(status, 200);
    host.kill();
    host.restart();
    let printed = host.log().matches("made an admin token").count();
    assert_eq!(printed, 1, "a database with tokens gets no new one");
    let (status, _) = send(&host, Some(&token), "GET", "/api/jobs", None);
    assert_eq!(status, 200, "the token survives a restart");
}

#[test]
fn tokens_are_made_listed_and_revoked_over_the_api() {
    let host = Orchestra::start(Options::new().plugin("echo"));
    let deputy = make_token(&host, "admin", "deputy");
    let (status, listed) = send(&host, Some(&deputy), "GET", "/api/tokens", None);
    assert_eq!(status, 200, "{listed}");
    let names: Vec<&str> = listed["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t["name"].as_str())
        .collect();
    assert_eq!(names, ["admin", "deputy"]);
    assert!(!listed.to_string().contains(&deputy), "never shown again");
    let (status, taken) = host.post("/api/tokens", &json!({"role": "read", "name": "deputy"}));
    assert_eq!(status, 409, "{taken}");
    let (status, bad) = host.post("/api/tokens", &json!({"role": "read", "name": "a b"}));
    assert_eq!((status, &bad["field"]), (422, &json!("name")), "{bad}");

    let (status, revoked) = host.delete("/api/tokens/deputy");
    assert_eq!(status, 200, "{revoked}");
    assert!(revoked["revoked_at"].is_string(), "{revoked}");
    let (status, _) = send(&host, Some(&deputy), "GET", "/api/jobs", None);
    assert_eq!(status, 401, "a revoked token is refused at once");
    assert_eq!(host.delete("/api/tokens/deputy").0, 404);
}

#[test]
fn foreign_hosts_and_origins_are_refused() {
    let host = Orchestra::start(Options::new().plugin("echo"));
    let (status, answer) = host.get_with_header("/api/jobs", "host", "evil.example");
    assert_eq!(status, 403, "a name this host does not answer to: {answer}");
    let (status, answer) = host.get_with_header("/healthz", "host", "evil.example");
    assert_eq!(status, 403, "not even /healthz: {answer}");
    let (status, answer) = host.get_with_header("/api/jobs", "origin", "http://evil.example");
    assert_eq!(status, 403, "another site's page: {answer}");
    let own = host.url("");
    let (status, answer) = host.get_with_header("/api/jobs", "origin", &own);
    assert_eq!(status, 200, "the host's own origin: {answer}");
    let (status, answer) = host.get_with_header("/api/jobs", "host", "localhost");
    assert_eq!(status, 200, "localhost: {answer}");
}

#[test]
fn failed_logins_are_limited_while_valid_tokens_keep_working() {
    let host = Orchestra::start(Options::new().plugin("echo"));
    let mut statuses = Vec::new();
    for n in 0..25 {
        let wrong = format!("orch_wrong{n}");
        statuses.push(send(&host, Some(&wrong), "GET", "/api/jobs", None).0);
    }
    assert_eq!(statuses[0], 401);
    assert_eq!(*statuses.last().unwrap(), 429, "{statuses:?}");
    let (status, _) = send(&host, host.token(), "GET", "/api/jobs", None);
    assert_eq!(status, 200, "a valid token keeps working");
}

#[test]
fn no_auth_serves_loopback_only() {
    let host = Orchestra::start(Options::new().plugin("echo").no_auth());
    assert!(host.token().is_none(), "no token is made");
    let (status, answer) = send(
        &host,
        None,
        "POST",
        "/api/jobs",
        Some(&json!({"plugin": "echo"})),
    );
    assert_eq!(status, 201, "{answer}");
    assert!(host.log().contains("--no-auth"), "a warning at start");

    let refused = Command::new(env!("CARGO_BIN_EXE_orchestra"))
        .args(["serve", "--no-auth", "--listen", "0.0.0.0:0", "--db"])
        .arg(tempfile::tempdir().unwrap().path().join("o.db"))
        .output()
        .expect("running orchestra serve");
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("only on a loopback address"), "{stderr}");
}

#[test]
fn changes_to_agents_and_tokens_are_audited() {
    let ws = crate::common::agents::Workspace::new();
    let host = Orchestra::start(ws.options());
    let reader = make_token(&host, "read", "auditor");
    host.register_agent(&ws.shell_agent("a1"));
    let (status, changed) = host.patch("/api/agents/a1", &json!({"max_concurrency": 2}));
    assert_eq!(status, 200, "{changed}");
    assert_eq!(host.delete("/api/agents/a1").0, 204);
    assert_eq!(host.delete("/api/tokens/auditor").0, 200);

    let (status, audit) = host.get("/api/audit");
    assert_eq!(status, 200, "{audit}");
    let entries: Vec<(String, String, String)> = audit["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .map(|e| {
            let text = |field: &str| e[field].as_str().unwrap_or_default().to_owned();
            (text("actor"), text("action"), text("target"))
        })
        .collect();
    let expected = [
        ("admin", "token.revoked", "auditor"),
        ("admin", "agent.deleted", "a1"),
        ("admin", "agent.changed", "a1"),
        ("admin", "agent.created", "a1"),
        ("admin", "token.created", "auditor"),
    ];
    let expected: Vec<(String, String, String)> = expected
        .iter()
        .map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string()))
        .collect();
    assert_eq!(entries, expected, "newest first: {audit:#}");
    let changed = &audit["entries"][2];
    assert_eq!(changed["detail"]["max_concurrency"], 2, "{changed}");
    assert!(changed["at"].is_string(), "{changed}");

    let other = make_token(&host, "read", "auditor2");
    let (status, _) = send(&host, Some(&other), "GET", "/api/audit", None);
    assert_eq!(status, 403, "the audit log is for admins");
    let (status, _) = send(&host, Some(&reader), "GET", "/api/audit", None);
    assert_eq!(status, 401, "a revoked token is refused");
}

#[test]
fn a_read_token_sees_no_agent_environment_values() {
    let ws = crate::common::agents::Workspace::new();
    let host = Orchestra::start(ws.options());
    let reader = make_token(&host, "read", "viewer");
    host.register_agent(&ws.coding_agent("coder"));
    let (_, as_admin) = host.get("/api/agents/coder");
    assert_eq!(as_admin["env"]["AGENT_MODE"], "test", "{as_admin}");
    for path in ["/api/agents/coder", "/api/agents"] {
        let (status, as_reader) = send(&host, Some(&reader), "GET", path, None);
        assert_eq!(status, 200, "{as_reader}");
        let text = as_reader.to_string();
        assert!(
            text.contains("AGENT_MODE") && !text.contains("\"test\""),
            "{path}: {text}"
        );
    }
}

/// A child process killed when dropped, even when a test fails.
struct Killed(std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        self.0.kill().ok();
        self.0.wait().ok();
    }
}

#[test]
fn a_host_whose_output_is_closed_still_starts() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("plugins")).unwrap();
    let port = crate::common::free_port();
    let mut child = Killed(
        Command::new(env!("CARGO_BIN_EXE_orchestra"))
            .args(["serve", "--listen", &format!("127.0.0.1:{port}"), "--db"])
            .arg(dir.path().join("o.db"))
            .arg("--plugins")
            .arg(dir.path().join("plugins"))
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("spawning orchestra"),
    );
    drop(child.0.stdout.take()); // nobody reads the first token
    let agent = new_agent(None, Duration::from_secs(2));
    crate::common::wait_until("the host to answer", crate::common::TIMEOUT, || {
        if let Some(status) = child.0.try_wait().unwrap() {
            panic!("the host exited ({status}) when it could not show its token");
        }
        match agent.get(format!("http://127.0.0.1:{port}/healthz")).call() {
            Ok(response) if response.status() == 200 => Ok(()),
            other => Err(format!("{other:?}")),
        }
    });
}
