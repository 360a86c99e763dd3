//! Agents: registration and its rules, health checks and heartbeats, the move of waiting
//! tasks off an agent that went offline, and the event stream under a stalled client.

use crate::common::agents::Workspace;
use crate::common::{Orchestra, TIMEOUT, has_log, wait_until};
use serde_json::{Value, json};
use std::fs;
use std::io::Write;
use std::net::TcpStream;
use std::sync::mpsc;

/// Waits for an `agent.status` event of `agent` with `status`.
fn status_event(events: &mpsc::Receiver<Value>, agent: &str, status: &str) -> Value {
    wait_until(&format!("agent {agent} to be {status}"), TIMEOUT, || {
        let event = events
            .recv_timeout(TIMEOUT)
            .map_err(|e| format!("no event: {e}"))?;
        (event["type"] == "agent.status" && event["agent_id"] == agent && event["status"] == status)
            .then_some(event.clone())
            .ok_or(event.to_string())
    })
}

#[test]
fn every_agent_and_task_rule_answers_its_4xx_and_stores_nothing() {
    let ws = Workspace::new();
    let elsewhere = tempfile::tempdir().unwrap();
    let host = Orchestra::start(ws.options());
    let shell = ws.shell_agent("sh");
    let with = |change: Value| {
        let mut spec = shell.clone();
        for (key, value) in change.as_object().unwrap() {
            spec[key] = value.clone();
        }
        spec
    };
    // From any working directory, this climbs to `/` and comes down to the repository.
    let relative_repo = format!("{}{}", "../".repeat(64), ws.repo().trim_start_matches('/'));
    let bad_agents = [
        (with(json!({"id": "Not Valid"})), 422, "agent id"),
        (with(json!({"command": ["/bin/true"]})), 422, "{command}"),
        (
            with(json!({"command": ["{command}"]})),
            422,
            "program of its own",
        ),
        (
            with(json!({"command": ["{command}.sh", "-x"]})),
            422,
            "program of its own",
        ),
        (
            with(json!({"command": ["/bin/sh", "-c", "{command}", "{command}"]})),
            422,
            "found it 2 times",
        ),
        (
            with(json!({"command": ["/bin/sh", "-c", "{command} && {command}"]})),
            422,
            "found it 2 times",
        ),
        (
            with(json!({"repository_path": relative_repo})),
            422,
            "absolute",
        ),
        (
            with(
                json!({"labels": Value::Object([("k".repeat(201), json!("v"))].into_iter().collect())}),
            ),
            422,
            "label key",
        ),
        (
            with(json!({"labels": {"kind": "v".repeat(201)}})),
            422,
            "label `kind`",
        ),
        (with(json!({"name": "n".repeat(201)})), 422, "name"),
        (with(json!({"command": []})), 422, "executable"),
        (with(json!({"max_concurrency": 0})), 422, "max_concurrency"),
        (
            with(json!({"health_interval_seconds": 0})),
            422,
            "health_interval_seconds",
        ),
        (with(json!({"env": {"A=B": "x"}})), 422, "env"),
        (
            with(json!({"repository_path": "/no/such/repo"})),
            422,
            "cannot be opened",
        ),
        (
            with(json!({"repository_path": elsewhere.path()})),
            422,
            "not under an allowed repository root",
        ),
        (with(json!({"colour": "red"})), 422, "colour"),
    ];
    for (spec, status, text) in bad_agents {
        let (got, answer) = host.post("/api/agents", &spec);
        assert_eq!(got, status, "{spec} answered {answer}");
        assert!(
            answer["error"].as_str().unwrap().contains(text),
            "{answer} lacks {text}"
        );
    }
    let (_, agents) = host.get("/api/agents");
    assert_eq!(agents["agents"], json!([]), "nothing stored");

    let task = |body: Value| host.post("/api/tasks", &body);
    let (status, answer) = task(json!({"command": "ls", "repository_path": ws.repo()}));
    assert_eq!(status, 422, "{answer}");
    assert!(
        answer["error"]
            .as_str()
            .unwrap()
            .contains("no registered agent"),
        "{answer}"
    );

    host.register_agent(&shell);
    let (status, answer) = host.post("/api/agents", &shell);
    assert_eq!(status, 409, "a taken id: {answer}");
    fs::write(ws.repo_file("a-file"), "x").unwrap();
    let bad_tasks = [
        (
            json!({"command": "", "repository_path": ws.repo()}),
            422,
            "empty",
        ),
        (
            json!({"command": "   ", "repository_path": ws.repo()}),
            422,
            "empty",
        ),
        (
            json!({"command": "x".repeat(2001), "repository_path": ws.repo()}),
            422,
            "2000",
        ),
        (
            json!({"command": "ls", "repository_path": ws.path("missing")}),
            422,
            "cannot be opened",
        ),
        (
            json!({"command": "ls", "repository_path": ws.repo_file("a-file")}),
            422,
            "not a directory",
        ),
        (
            json!({"command": "ls", "repository_path": elsewhere.path()}),
            422,
            "not under an allowed repository root",
        ),
        (
            json!({"command": "ls", "repository_path": ws.root()}),
            422,
            "no registered agent",
        ),
        (
            json!({"command": "ls", "repository_path": ws.repo(), "priority": "urgent"}),
            422,
            "priority",
        ),
        (
            json!({"command": "ls", "repository_path": ws.repo(), "execute_at": "soon"}),
            422,
            "execute_at",
        ),
        (
            json!({"command": "ls", "repository_path": ws.repo(), "execute_at": "0000-01-01T00:00:00Z"}),
            422,
            "execute_at",
        ),
        (
            json!({"command": "ls", "repository_path": ws.repo(), "execute_at": "1999-12-31T23:59:59Z"}),
            422,
            "execute_at",
        ),
        (
            json!({"command": "ls", "repository_path": ws.repo(), "execute_at": "9999-12-31T23:59:59Z"}),
            422,
            "execute_at",
        ),
        (
            json!({"command": "ls", "repository_path": relative_repo}),
            422,
            "absolute",
        ),
        (json!({"command": "ls"}), 422, "repository_path"),
        (
            json!({"command": "ls", "repository_path": ws.repo(), "extra": 1}),
            422,
            "extra",
        ),
    ];
    for (body, status, text) in bad_tasks {
        let (got, answer) = task(body.clone());
        assert_eq!(got, status, "{body} answered {answer}");
        assert!(
            answer["error"].as_str().unwrap().contains(text),
            "{answer} lacks {text}"
        );
    }
    let (status, answer) = host.post_raw("/api/tasks", Some("application/json"), b"{not json");
    assert_eq!(status, 400, "{answer}");
    let (_, tasks) = host.get("/api/tasks");
    assert_eq!(tasks["tasks"], json!([]), "nothing stored");

    for (path, status) in [
        ("/api/tasks/not-a-uuid", 400),
        ("/api/tasks/01900000-0000-7000-8000-000000000000", 404),
        ("/api/tasks?state=bogus", 400),
        ("/api/tasks?limit=0", 400),
        ("/api/agents/nobody", 404),
        ("/api/agents/Bad%20Id", 400),
    ] {
        let (got, answer) = host.get(path);
        assert_eq!(got, status, "GET {path}: {answer}");
        assert!(answer["error"].is_string(), "{answer}");
    }
    let (status, answer) = host.patch("/api/agents/sh", &json!({"max_concurrency": 1000}));
    assert_eq!(status, 422, "{answer}");
    let (status, answer) = host.patch("/api/agents/sh", &json!({"id": "other"}));
    assert_eq!(status, 422, "{answer}");
    let (status, answer) =
        host.post_empty("/api/tasks/01900000-0000-7000-8000-000000000000/cancel");
    assert_eq!(status, 404, "{answer}");
    let (status, answer) = host.post_empty("/api/agents/nobody/heartbeat");
    assert_eq!(status, 404, "{answer}");
    let (status, answer) = host.delete("/api/agents/nobody");
    assert_eq!(status, 404, "{answer}");
    assert_eq!(
        host.agent("sh")["max_concurrency"],
        1,
        "unchanged by refused patches"
    );

    let (status, patched) = host.patch(
        "/api/agents/sh",
        &json!({"max_concurrency": 2, "labels": {"team": "core"}, "health_command": null}),
    );
    assert_eq!(status, 200, "{patched}");
    assert_eq!(patched["max_concurrency"], 2);
    assert_eq!(patched["labels"], json!({"team": "core"}));
    assert_eq!(patched["command"], shell["command"], "other fields kept");
}

#[test]
fn an_agent_that_fails_its_health_checks_goes_offline_and_its_tasks_move() {
    let ws = Workspace::new();
    let config = format!(
        "agent_health_schedule = \"* * * * * *\"\nagent_health_misses = 3\n\
         [[agents]]\nid = \"flaky\"\nname = \"flaky\"\nrepository_path = \"{repo}\"\n\
         command = [\"/usr/bin/env\", \"bash\", \"-c\", \"{{command}}\"]\n\
         health_command = [\"/usr/bin/env\", \"bash\", \"-c\", \"test ! -e sick\"]\n\
         health_interval_seconds = 1\n",
        repo = ws.repo()
    );
    let host = Orchestra::start(ws.options().config(&config));
    let events = host.listen("/api/events?types=agent.*,task.*", None);
    let agent = host.agent("flaky");
    assert_eq!(
        agent["status"], "idle",
        "declared in the config file: {agent:#}"
    );
    let (running, running_job, _) = host.submit_task(&json!({
        "command": "echo started; sleep 3", "repository_path": ws.repo(),
    }));
    host.wait_for_log(&running_job, "started");
    let (waiting, waiting_job, first) = host.submit_task(&json!({
        "command": "echo moved", "repository_path": ws.repo(),
    }));
    assert_eq!(first, "flaky", "the only agent");
    let mut steady = ws.shell_agent("steady");
    steady["health_command"] = json!(["/usr/bin/true"]);
    host.register_agent(&steady);

    fs::write(ws.repo_file("sick"), "").unwrap();
    let offline = status_event(&events, "flaky", "offline");
    assert!(
        offline["reason"]
            .as_str()
            .unwrap()
            .contains("exited with 1"),
        "{offline}"
    );
    let agent = host.agent("flaky");
    assert!(agent["health_misses"].as_u64().unwrap() >= 3, "{agent:#}");

    let moved = host.wait_for_task(&waiting, &["succeeded"], TIMEOUT);
    assert_eq!(moved["agent_id"], "steady", "{moved:#}");
    assert_eq!(moved["output"], "moved\n");
    assert!(has_log(
        &host.job(&waiting_job),
        "info",
        "moved from agent flaky to agent steady"
    ));
    host.wait_for_task(&running, &["succeeded"], TIMEOUT);

    fs::remove_file(ws.repo_file("sick")).unwrap();
    status_event(&events, "flaky", "idle");
    let (_, again, agent) =
        host.submit_task(&json!({"command": "echo back", "repository_path": ws.repo()}));
    assert!(["flaky", "steady"].contains(&agent.as_str()));
    host.wait_for_state(&again, &["succeeded"], TIMEOUT);
}

#[test]
fn an_agent_managed_outside_the_host_lives_by_its_heartbeats() {
    let ws = Workspace::new();
    let config = "agent_health_schedule = \"* * * * * *\"\nagent_health_misses = 2\n";
    let host = Orchestra::start(ws.options().config(config));
    let events = host.listen("/api/events?agent_id=remote", None);
    let mut remote = ws.shell_agent("remote");
    remote["health_interval_seconds"] = json!(1);
    host.register_agent(&remote);
    let (status, beat) = host.post_empty("/api/agents/remote/heartbeat");
    assert_eq!(status, 200, "{beat}");
    assert!(beat["last_heartbeat_at"].is_string(), "{beat}");
    status_event(&events, "remote", "offline");
    let (status, beat) = host.post_empty("/api/agents/remote/heartbeat");
    assert_eq!(status, 200, "{beat}");
    assert_eq!(beat["status"], "idle", "a heartbeat brings it back: {beat}");
    status_event(&events, "remote", "idle");
}

/// The peak resident memory of process `pid` so far, in KiB.
fn peak_rss_kib(pid: u32) -> u64 {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM in /proc/PID/status")
}

#[test]
fn a_client_that_reads_nothing_does_not_grow_the_host() {
    let ws = Workspace::new();
    let host = Orchestra::start(ws.options());
    host.register_agent(&ws.shell_agent("sh"));
    let noisy = json!({
        "command": "pad=$(printf '%0200d' 0); for i in $(seq 1 10000); do echo \"line $i $pad\"; done",
        "repository_path": ws.repo(),
    });
    let run = |n: usize| {
        for _ in 0..n {
            let (task, _, _) = host.submit_task(&noisy);
            host.wait_for_task(&task, &["succeeded"], 2 * TIMEOUT);
        }
    };
    // The peak with a client that keeps up: every event is built and sent.
    let reader = host.listen("/api/events", None);
    run(3);
    let keeping_up = peak_rss_kib(host.pid());

    let address = host.url("").trim_start_matches("http://").to_owned();
    let mut stalled = TcpStream::connect(&address).unwrap();
    write!(
        stalled,
        "GET /api/events HTTP/1.1\r\nHost: {address}\r\nAuthorization: {}\r\n\r\n",
        host.authorization()
    )
    .unwrap();
    run(20);
    let stalled_peak = peak_rss_kib(host.pid());
    assert!(
        stalled_peak < keeping_up + 32 * 1024,
        "200,000 events (50 MB) held back by a client that reads nothing raised the host's \
         peak memory from {keeping_up} KiB to {stalled_peak} KiB"
    );
    drop(reader);
    let watcher = host.listen("/api/events?types=job.succeeded", None);
    let (_, job, _) = host.submit_task(&json!({"command": "true", "repository_path": ws.repo()}));
    let seen = crate::events::until(&watcher, &job, "job.succeeded");
    assert!(!seen.is_empty(), "other clients are still served");
    drop(stalled);
}
