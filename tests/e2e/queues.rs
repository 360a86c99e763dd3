//! Queues no worker of this host serves: jobs, batches, recurring jobs, workflow steps and
//! tasks sent there are kept, and the answer warns; `GET /api/queues` tells served queues (agent queues
//! included) from unserved ones, and shows each queue's throughput.

use crate::common::agents::Workspace;
use crate::common::{Options, Orchestra, TIMEOUT, wait_until};
use serde_json::{Value, json};

/// The queue `name` as `GET /api/queues` lists it, if listed.
fn queue(host: &Orchestra, name: &str) -> Option<Value> {
    host.queues().into_iter().find(|q| q["name"] == name)
}

/// Asserts that `answer` warns about exactly the queues `unserved`.
fn assert_warns(answer: &Value, unserved: &[&str], served: &[&str]) {
    let warning = answer["warning"]
        .as_str()
        .unwrap_or_else(|| panic!("no warning in {answer}"));
    assert!(warning.contains("not served"), "{warning}");
    for name in unserved {
        assert!(warning.contains(name), "{warning} names {name}");
    }
    for name in served {
        assert!(!warning.contains(name), "{warning} does not name {name}");
    }
}

#[test]
fn jobs_batches_recurring_jobs_and_workflows_for_an_unserved_queue_are_kept_with_a_warning() {
    let host = Orchestra::start(Options::new().plugin("echo"));
    let (status, answer) = host.post(
        "/api/jobs",
        &json!({"plugin": "echo", "queue": "nobody-here"}),
    );
    assert_eq!(status, 201, "{answer}");
    assert_warns(&answer, &["nobody-here"], &[]);

    let (status, served) = host.post("/api/jobs", &json!({"plugin": "echo"}));
    assert_eq!(status, 201, "{served}");
    assert!(served.get("warning").is_none(), "a served queue: {served}");

    let batch = json!({"jobs": [
        {"plugin": "echo"},
        {"plugin": "echo", "queue": "elsewhere"},
        {"plugin": "echo", "queue": "elsewhere"},
    ]});
    let (status, answer) = host.post("/api/batches", &batch);
    assert_eq!(status, 201, "{answer}");
    assert_warns(&answer, &["elsewhere"], &["default"]);

    let (status, answer) = host.put(
        "/api/recurring/nightly",
        &json!({"cron": "0 3 * * *", "plugin": "echo", "queue": "night-shift"}),
    );
    assert_eq!(status, 201, "{answer}");
    assert_warns(&answer, &["night-shift"], &[]);

    let workflow = json!({"name": "wf", "stages": [{"name": "only", "mode": "sequential", "steps": [
        {"id": "here", "plugin": "echo"},
        {"id": "there", "plugin": "echo", "queue": "wf-only"},
    ]}]});
    let (status, answer) = host.put("/api/workflows/wf", &workflow);
    assert_eq!(status, 201, "{answer}");
    assert_warns(&answer, &["wf-only"], &["default"]);

    let done = served["id"].as_str().expect("an id");
    host.wait_for_state(done, &["succeeded"], TIMEOUT);
    for (name, waiting) in [("nobody-here", 1), ("elsewhere", 2)] {
        let listed = queue(&host, name).unwrap_or_else(|| panic!("{name} is listed"));
        assert_eq!(listed["served"], false, "{listed}");
        assert_eq!(listed["counts"]["enqueued"], waiting, "kept: {listed}");
    }
    let default = queue(&host, "default").expect("default is listed");
    assert_eq!(default["served"], true, "{default}");
}

#[test]
fn agent_queues_are_served_and_a_task_for_an_unserved_queue_warns() {
    let ws = Workspace::new();
    let host = Orchestra::start(ws.options().config("queues = [\"default\"]\n"));
    host.register_agent(&ws.shell_agent("sh"));
    wait_until("agent-sh to be served", TIMEOUT, || {
        let listed = queue(&host, "agent-sh");
        match &listed {
            Some(q) if q["served"] == true => Ok(()),
            _ => Err(format!("{listed:?}")),
        }
    });
    assert_eq!(
        queue(&host, "high-priority").map(|q| q["served"].clone()),
        None,
        "high-priority is neither configured nor used yet"
    );

    let task = |priority: &str| {
        let body = json!({"command": "true", "repository_path": ws.repo(), "priority": priority});
        let (status, answer) = host.post("/api/tasks", &body);
        assert_eq!(status, 201, "{body} answered {answer}");
        answer
    };
    let normal = task("normal");
    assert!(
        normal.get("warning").is_none(),
        "agent-sh is served: {normal}"
    );
    let critical = task("critical");
    assert_warns(&critical, &["high-priority"], &["agent-sh"]);
    let listed = queue(&host, "high-priority").expect("high-priority is listed");
    assert_eq!(listed["served"], false, "{listed}");
    assert_eq!(listed["counts"]["enqueued"], 1, "kept: {listed}");
}

#[test]
fn a_queue_shows_its_throughput_over_the_last_five_minutes() {
    let host = Orchestra::start(Options::new().plugin("echo"));
    let ids: Vec<String> = (0..3)
        .map(|n| host.submit("echo", json!({"n": n})))
        .collect();
    host.wait_for_all(&ids, &["succeeded"], TIMEOUT);
    let finished = |name: &str| queue(&host, name).expect("listed")["finished_last_5m"].clone();
    assert_eq!(finished("default"), 3);
    assert_eq!(finished("maintenance"), 0);
}
