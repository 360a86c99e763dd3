//! Bad input: every malformed or refused request gets the right 4xx with a JSON body
//! `{"error": "<non-empty>"}`, never a 5xx, and stores nothing.

use crate::common::agents::Workspace;
use crate::common::{Options, Orchestra, TIMEOUT, state};
use serde_json::{Value, json};

/// The status a bad request must get.
#[derive(Debug, Clone, Copy)]
enum Expect {
    /// Exactly this status.
    Status(u16),
    /// Any 4xx.
    ClientError,
}

use Expect::{ClientError, Status};

/// What is wrong with one answer, if anything: the status, or a missing JSON error.
fn problem(what: &str, (status, body): (u16, Value), expect: Expect) -> Option<String> {
    let status_ok = match expect {
        Status(wanted) => status == wanted,
        ClientError => (400..500).contains(&status),
    };
    let has_error = body["error"].as_str().is_some_and(|e| !e.trim().is_empty());
    (!status_ok || !has_error)
        .then(|| format!("{what}: expected {expect:?} with a JSON error, got {status} {body}"))
}

/// Fails listing every problem found.
fn assert_no_problems(problems: impl IntoIterator<Item = Option<String>>) {
    let problems: Vec<String> = problems.into_iter().flatten().collect();
    assert!(
        problems.is_empty(),
        "{} bad answers:\n{}",
        problems.len(),
        problems.join("\n")
    );
}

const JSON: Option<&str> = Some("application/json");

/// One bad `POST /api/jobs`.
struct Submission {
    what: &'static str,
    content_type: Option<&'static str>,
    body: Vec<u8>,
    expect: Expect,
}

/// A submission of `body` as JSON.
fn json_body(what: &'static str, body: Value, expect: Expect) -> Submission {
    Submission {
        what,
        content_type: JSON,
        body: body.to_string().into_bytes(),
        expect,
    }
}

/// A submission of raw bytes with an optional content type.
fn raw_body(
    what: &'static str,
    content_type: Option<&'static str>,
    body: &[u8],
    expect: Expect,
) -> Submission {
    Submission {
        what,
        content_type,
        body: body.to_vec(),
        expect,
    }
}

#[rustfmt::skip]
fn bad_submissions() -> Vec<Submission> {
    let valid = br#"{"plugin": "echo"}"#;
    let huge = json!({"plugin": "echo", "args": {"pad": "x".repeat(1_100_000)}});
    vec![
        raw_body("malformed JSON", JSON, br#"{"plugin": "echo","#, Status(400)),
        raw_body("an empty body", JSON, b"", Status(400)),
        raw_body("a JSON array body", JSON, b"[]", ClientError),
        json_body("no plugin field", json!({"args": {}}), ClientError),
        json_body("an unknown plugin", json!({"plugin": "nosuch"}), Status(422)),
        json_body("args that are not JSON", json!({"plugin": "echo", "args": "not json"}), Status(400)),
        json_body("args as an array", json!({"plugin": "echo", "args": [1, 2]}), Status(422)),
        json_body("args as a number", json!({"plugin": "echo", "args": 7}), Status(422)),
        json_body("args as a string of an array", json!({"plugin": "echo", "args": "[1]"}), Status(422)),
        json_body("priority 101", json!({"plugin": "echo", "priority": 101}), Status(422)),
        json_body("priority -101", json!({"plugin": "echo", "priority": -101}), Status(422)),
        json_body("a priority that is text", json!({"plugin": "echo", "priority": "high"}), ClientError),
        json_body("max_attempts 0", json!({"plugin": "echo", "max_attempts": 0}), Status(422)),
        json_body("max_attempts 101", json!({"plugin": "echo", "max_attempts": 101}), Status(422)),
        json_body("a negative delay", json!({"plugin": "echo", "delay_seconds": -1}), ClientError),
        json_body("a delay beyond ten years", json!({"plugin": "echo", "delay_seconds": 400_000_000}), Status(422)),
        json_body("run_at in year 0", json!({"plugin": "echo", "run_at": "0000-01-01T00:00:00Z"}), Status(422)),
        json_body("run_at before 2000", json!({"plugin": "echo", "run_at": "1999-12-31T23:59:59Z"}), Status(422)),
        json_body("run_at in year 9999", json!({"plugin": "echo", "run_at": "9999-12-31T23:59:59Z"}), Status(422)),
        json_body("a plugin name of 201 characters", json!({"plugin": "p".repeat(201)}), Status(422)),
        json_body("a unique_key of 201 characters", json!({"plugin": "echo", "unique_key": "k".repeat(201)}), Status(422)),
        json_body("an invalid queue name", json!({"plugin": "echo", "queue": "Bad Queue!"}), Status(422)),
        json_body("a repository without a repo root", json!({"plugin": "echo", "repository_path": "/tmp"}), Status(422)),
        json_body("an unknown field", json!({"plugin": "echo", "colour": "red"}), ClientError),
        json_body("a body over 1 MiB", huge, Status(413)),
        raw_body("a text/plain body", Some("text/plain"), valid, Status(415)),
        raw_body("no content type", None, valid, Status(415)),
    ]
}

#[test]
fn bad_submissions_are_refused_and_store_nothing() {
    let host = Orchestra::start(Options::new().plugin("echo"));
    let kept = host.submit("echo", json!({"kept": true}));
    host.wait_for_state(&kept, &["succeeded"], TIMEOUT);
    assert_eq!(host.count_jobs(), 1);

    assert_no_problems(bad_submissions().into_iter().map(|s| {
        let answer = host.post_raw("/api/jobs", s.content_type, &s.body);
        problem(s.what, answer, s.expect)
    }));
    assert_eq!(host.count_jobs(), 1, "refused submissions stored nothing");
    assert_eq!(host.list_ids(""), [kept], "only the valid job is listed");

    // A refused value is named in `field`, beside the `error` that says what is wrong.
    for (path, body, field) in [
        (
            "/api/jobs",
            json!({"plugin": "echo", "priority": 101}),
            "priority",
        ),
        ("/api/jobs", json!({"plugin": "nosuch"}), "plugin"),
        (
            "/api/batches",
            json!({"jobs": [{"plugin": "echo"}, {"plugin": "echo", "max_attempts": 0}]}),
            "jobs[1].max_attempts",
        ),
    ] {
        let (status, answer) = host.post(path, &body);
        assert_eq!(status, 422, "{body} answered {answer}");
        assert_eq!(answer["field"], field, "{body} answered {answer}");
        assert!(
            answer["error"].as_str().is_some_and(|e| !e.is_empty()),
            "{answer}"
        );
    }
    assert_eq!(host.count_jobs(), 1, "refused submissions stored nothing");
}

/// The methods the read-and-action cases use.
#[derive(Debug, Clone, Copy)]
enum Method {
    Get,
    Post,
    Delete,
}

use Method::{Delete, Get, Post};

/// One bad read or action: `method path` must get `expect`.
struct Request {
    what: &'static str,
    method: Method,
    path: String,
    expect: Expect,
}

/// Sends `method path` without a body.
fn send(host: &Orchestra, method: Method, path: &str) -> (u16, Value) {
    match method {
        Get => host.get(path),
        Post => host.post_empty(path),
        Delete => host.delete(path),
    }
}

/// Bad reads and actions on a host holding the succeeded job `done` and the running
/// job `running`.
#[rustfmt::skip]
fn bad_requests(done: &str, running: &str) -> Vec<Request> {
    let unknown = "01900000-0000-7000-8000-000000000000";
    let request = |what, method, path: String, expect| Request { what, method, path, expect };
    vec![
        request("a job id that is no UUID", Get, "/api/jobs/not-a-uuid".into(), Status(400)),
        request("an unknown job", Get, format!("/api/jobs/{unknown}"), Status(404)),
        request("retry of a succeeded job", Post, format!("/api/jobs/{done}/retry"), Status(409)),
        request("retry of a running job", Post, format!("/api/jobs/{running}/retry"), Status(409)),
        request("cancel of a finished job", Post, format!("/api/jobs/{done}/cancel"), Status(409)),
        request("retry of an unknown job", Post, format!("/api/jobs/{unknown}/retry"), Status(404)),
        request("cancel of an unknown job", Post, format!("/api/jobs/{unknown}/cancel"), Status(404)),
        request("cancel of a job id that is no UUID", Post, "/api/jobs/nope/cancel".into(), Status(400)),
        request("delete of an unknown job", Delete, format!("/api/jobs/{unknown}"), Status(404)),
        request("delete of a job id that is no UUID", Delete, "/api/jobs/nope".into(), Status(400)),
        request("delete of a running job", Delete, format!("/api/jobs/{running}"), Status(409)),
        request("an unknown state filter", Get, "/api/jobs?state=bogus".into(), Status(400)),
        request("limit=0", Get, "/api/jobs?limit=0".into(), Status(400)),
        request("limit=1001", Get, "/api/jobs?limit=1001".into(), Status(400)),
        request("limit=abc", Get, "/api/jobs?limit=abc".into(), Status(400)),
        request("a cursor that is no job id", Get, "/api/jobs?cursor=zzz".into(), Status(400)),
        request("an unknown query parameter", Get, "/api/jobs?colour=red".into(), Status(400)),
        request("an unknown route", Get, "/nope".into(), Status(404)),
        request("an unknown API route", Get, "/api/nope".into(), Status(404)),
        request("an unknown job action", Post, format!("/api/jobs/{done}/explode"), Status(404)),
        request("a job id that is not UTF-8", Get, "/api/jobs/%ff%fe".into(), Status(400)),
        request("cancel of a job id that is not UTF-8", Post, "/api/jobs/%ff%fe/cancel".into(), Status(400)),
        request("delete of a job id that is not UTF-8", Delete, "/api/jobs/%ff".into(), Status(400)),
        request("a task id that is not UTF-8", Get, "/api/tasks/%ff%fe".into(), Status(400)),
        request("an agent id that is not UTF-8", Get, "/api/agents/%ff%fe".into(), Status(400)),
        request("a batch id that is not UTF-8", Get, "/api/batches/%ff%fe".into(), Status(400)),
        request("a queue name that is not UTF-8", Post, "/api/queues/%ff%fe/pause".into(), Status(400)),
        request("a recurring id that is not UTF-8", Post, "/api/recurring/%ff%fe/trigger".into(), Status(400)),
        request("a workflow id that is not UTF-8", Get, "/api/workflows/%ff%fe".into(), Status(400)),
        request("a workflow run id that is not UTF-8", Get, "/api/workflow-runs/%ff%fe".into(), Status(400)),
        request("a queue filter of 201 characters", Get, format!("/api/jobs?queue={}", "q".repeat(201)), Status(400)),
        request("a plugin filter of 201 characters", Get, format!("/api/jobs?plugin={}", "p".repeat(201)), Status(400)),
        request("a query that is not UTF-8", Get, "/api/jobs?state=%ff".into(), Status(400)),
        request("a queue name of 201 characters", Post, format!("/api/queues/{}/pause", "q".repeat(201)), Status(400)),
        request("a recurring id of 201 characters", Get, format!("/api/recurring/{}", "r".repeat(201)), Status(400)),
        request("a workflow id of 201 characters", Get, format!("/api/workflows/{}", "w".repeat(201)), Status(400)),
        request("a request target over 8 KiB", Get, format!("/api/jobs/{}", "x".repeat(9000)), Status(414)),
        request("a WebSocket request without an upgrade", Get, "/api/events/ws".into(), ClientError),
    ]
}

#[test]
fn bad_reads_and_actions_are_client_errors() {
    let host = Orchestra::start(Options::new().plugin("echo").plugin("sleep"));
    let done = host.submit("echo", json!({}));
    host.wait_for_state(&done, &["succeeded"], TIMEOUT);
    let running = host.submit("sleep", json!({"ms": 60_000}));
    host.wait_for_state(&running, &["processing"], TIMEOUT);

    assert_no_problems(
        bad_requests(&done, &running)
            .into_iter()
            .map(|r| problem(r.what, send(&host, r.method, &r.path), r.expect)),
    );

    assert_eq!(host.count_jobs(), 2, "nothing was added or removed");
    assert_eq!(
        state(&host.job(&done)),
        "succeeded",
        "the finished job is untouched"
    );
    assert_eq!(
        state(&host.job(&running)),
        "processing",
        "the running job is untouched"
    );
}

#[test]
fn a_wrong_method_gets_a_json_error() {
    let host = Orchestra::start(Options::new());
    assert_no_problems([
        problem("PUT /api/jobs", host.put_empty("/api/jobs"), Status(405)),
        problem(
            "DELETE /api/plugins",
            host.delete("/api/plugins"),
            Status(405),
        ),
        problem("POST /healthz", host.post_empty("/healthz"), Status(405)),
    ]);
}

#[test]
fn headers_over_the_limit_get_a_json_431_and_the_host_goes_on() {
    let host = Orchestra::start(Options::new().plugin("echo"));
    let padding = "x".repeat(100 * 1024);
    assert_no_problems([
        problem(
            "a 100 KiB header",
            host.get_with_header("/api/jobs", "x-padding", &padding),
            Status(431),
        ),
        problem(
            "a 100 KiB header on the queue list",
            host.get_with_header("/api/queues", "x-padding", &padding),
            Status(431),
        ),
    ]);
    let (status, _) = host.get_with_header("/api/jobs", "x-padding", &"x".repeat(1024));
    assert_eq!(status, 200, "a header under the limit is fine");
    let id = host.submit("echo", json!({}));
    host.wait_for_state(&id, &["succeeded"], TIMEOUT);
}

#[test]
fn relative_repository_paths_are_refused_not_resolved() {
    let ws = Workspace::new();
    let host = Orchestra::start(ws.options().plugin("echo"));
    // From any working directory, this climbs to `/` and comes down to the repository.
    let relative = format!("{}{}", "../".repeat(64), ws.repo().trim_start_matches('/'));
    let (status, answer) = host.post(
        "/api/jobs",
        &json!({"plugin": "echo", "repository_path": relative}),
    );
    assert_eq!(status, 422, "{answer}");
    assert!(
        answer["error"]
            .as_str()
            .is_some_and(|e| e.contains("absolute")),
        "{answer}"
    );
    host.submit_job(json!({"plugin": "echo", "repository_path": ws.repo()}));
    assert_eq!(host.count_jobs(), 1, "only the absolute path was accepted");
}

#[test]
fn serve_refuses_zero_workers() {
    match Orchestra::try_start(Options::new().workers(0)) {
        Ok(_) => panic!("a host with zero workers started: its jobs would never run"),
        Err(log) => assert!(
            log.contains("workers"),
            "the refusal names the setting:\n{log}"
        ),
    }
}
