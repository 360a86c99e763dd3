//! Tasks: commands run by real agents (a bash agent and the scripted fake coding agent)
//! in a temporary repository, through the `task-execution` plugin.

use crate::common::agents::Workspace;
use crate::common::{Orchestra, TIMEOUT, has_log, history_has, time_ms, wait_until};
use crate::events::until;
use crate::reload::distinct_echo;
use serde_json::{Value, json};
use std::fs;
use std::time::Duration;

/// The events of `task` among `events`, with their types.
fn task_events<'a>(events: &'a [Value], task: &str) -> Vec<&'a Value> {
    events.iter().filter(|e| e["task_id"] == task).collect()
}

fn position(events: &[&Value], wanted: impl Fn(&Value) -> bool, what: &str) -> usize {
    events
        .iter()
        .position(|e| wanted(e))
        .unwrap_or_else(|| panic!("no {what} among {events:#?}"))
}

#[test]
fn a_task_runs_streams_its_output_and_reaches_100() {
    let ws = Workspace::new();
    let host = Orchestra::start(ws.options());
    host.register_agent(&ws.coding_agent("coder"));
    let events = host.listen("/api/events?agent_id=coder", None);
    let (task, job, agent) = host.submit_task(&json!({
        "command": "add a README", "repository_path": ws.repo(),
    }));
    assert_eq!(agent, "coder");
    let seen = until(&events, &job, "job.succeeded");
    let ours = task_events(&seen, &task);
    let at = |what: &str| position(&ours, |e| e["type"] == what, what);
    let first_step = position(&ours, |e| e["message"] == "step 1 of 3", "the first step");
    assert!(at("task.created") < at("job.started"), "{ours:#?}");
    assert!(at("job.started") < at("task.exec_started"), "{ours:#?}");
    assert!(at("task.exec_started") < first_step, "{ours:#?}");
    assert!(first_step < at("task.exec_finished"), "{ours:#?}");
    assert!(at("task.exec_finished") < at("job.succeeded"), "{ours:#?}");
    let seqs: Vec<u64> = ours.iter().filter_map(|e| e["seq"].as_u64()).collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "in order: {seqs:?}");
    assert!(
        time_ms(ours[at("task.exec_finished")], "at") - time_ms(ours[first_step], "at") >= 300,
        "the first line is streamed while the agent still works"
    );
    let steps: Vec<&str> = ours
        .iter()
        .filter(|e| e["type"] == "job.log" && e["level"] == "stdout")
        .filter_map(|e| e["message"].as_str())
        .collect();
    assert_eq!(
        steps,
        [
            "thinking about: add a README",
            "step 1 of 3",
            "step 2 of 3",
            "step 3 of 3",
            "done"
        ]
    );
    assert!(
        ours.iter()
            .any(|e| e["level"] == "stderr" && e["message"] == "edited README.md"),
        "{ours:#?}"
    );
    assert!(
        ours.iter()
            .all(|e| e["job_id"] == job && e["agent_id"] == "coder"),
        "every event names the job and agent: {ours:#?}"
    );
    let statuses: Vec<&str> = seen
        .iter()
        .filter(|e| e["type"] == "agent.status")
        .filter_map(|e| e["status"].as_str())
        .collect();
    assert!(statuses.contains(&"busy"), "{statuses:?}");

    let done = host.task(&task);
    assert_eq!(done["state"], "succeeded", "{done:#}");
    assert_eq!(done["progress"]["percent"], 100, "{done:#}");
    assert_eq!(done["exit_code"], 0, "{done:#}");
    assert!(
        done["output"].as_str().unwrap().ends_with("done\n"),
        "{done:#}"
    );
    assert!(
        done["error_output"]
            .as_str()
            .unwrap()
            .contains("edited README.md")
    );
    assert!(done["duration_ms"].as_u64().unwrap() >= 600, "{done:#}");
    assert_eq!(
        fs::read_to_string(ws.repo_file("agent-notes.txt")).unwrap(),
        "add a README\n",
        "the agent ran in the repository"
    );
    let logged = host.job(&job);
    assert!(has_log(&logged, "stdout", "step 2 of 3"), "{logged:#}");
    wait_until("the agent to be idle again", TIMEOUT, || {
        let agent = host.agent("coder");
        (agent["status"] == "idle" && agent["current_jobs"] == json!([]))
            .then_some(())
            .ok_or(agent.to_string())
    });

    // A client that reconnects gets the events after the last one it saw; one whose last
    // event is of another run of the host is told it missed some.
    let created = ours[at("task.created")]["id"].as_str().unwrap();
    let (run, number) = created.split_once('-').unwrap();
    let before_created = format!("{run}-{}", number.parse::<u64>().unwrap() - 1);
    let resumed = host.listen(
        &format!("/api/events?task_id={task}"),
        Some(&before_created),
    );
    let replayed = until(&resumed, &job, "job.succeeded");
    assert_eq!(replayed[0]["type"], "task.created", "{replayed:#?}");
    assert!(replayed.iter().all(|e| e["task_id"] == task.as_str()));
    let elsewhen = host.listen("/api/events", Some("1-5"));
    let notice = elsewhen.recv_timeout(TIMEOUT).expect("a notice");
    assert_eq!(
        (&notice["type"], &notice["missed"]),
        (&json!("missed"), &json!(0))
    );
    let (status, answer) = host.get_with_header("/api/events", "last-event-id", "yesterday");
    assert_eq!(status, 400, "{answer}");
}

#[test]
fn a_non_zero_exit_fails_the_task_with_its_output_and_counts_in_the_metrics() {
    let ws = Workspace::new();
    let host = Orchestra::start(ws.options());
    host.register_agent(&ws.shell_agent("sh"));
    let (failing, _, _) = host.submit_task(&json!({
        "command": "echo partial work; echo broken >&2; exit 3", "repository_path": ws.repo(),
    }));
    let failed = host.wait_for_task(&failing, &["failed"], TIMEOUT);
    assert_eq!(failed["exit_code"], 3, "{failed:#}");
    assert_eq!(failed["output"], "partial work\n", "{failed:#}");
    assert_eq!(failed["error_output"], "broken\n", "{failed:#}");
    assert_eq!(failed["error"]["kind"], "fatal", "{failed:#}");
    let message = failed["error"]["message"].as_str().unwrap();
    assert!(
        message.contains('3') && message.contains("broken"),
        "{message}"
    );
    assert_eq!(failed["attempt"], 1, "a failing command is not retried");

    let (passing, _, _) = host.submit_task(&json!({
        "command": "sleep 0.3; echo fine", "repository_path": ws.repo(), "priority": "low",
    }));
    host.wait_for_task(&passing, &["succeeded"], TIMEOUT);
    let agent = host.agent("sh");
    let metrics = &agent["metrics"];
    assert_eq!(metrics["tasks_run"], 2, "{agent:#}");
    assert_eq!(metrics["succeeded"], 1, "{agent:#}");
    assert_eq!(metrics["failed"], 1, "{agent:#}");
    assert!(
        metrics["p95_duration_ms"].as_u64().unwrap() >= 300,
        "{agent:#}"
    );
    assert!(metrics["mean_duration_ms"].as_u64().is_some(), "{agent:#}");
    assert!(
        metrics["utilisation_last_hour"].as_f64().unwrap() > 0.0,
        "{agent:#}"
    );
    assert_eq!(
        agent["recent_jobs"].as_array().unwrap().len(),
        2,
        "{agent:#}"
    );
    let (_, listed) = host.get("/api/agents");
    assert_eq!(listed["agents"][0]["metrics"], *metrics, "{listed:#}");
    let (_, failed_list) = host.get("/api/tasks?agent_id=sh&state=failed");
    let ids: Vec<&str> = failed_list["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t["task_id"].as_str())
        .collect();
    assert_eq!(ids, [failing.as_str()]);
}

/// `(start, end)` nanosecond stamps a task printed.
fn span(task: &Value) -> (u128, u128) {
    let output = task["output"].as_str().unwrap();
    let stamp = |word: &str| {
        output
            .lines()
            .find_map(|l| l.strip_prefix(word))
            .and_then(|n| n.trim().parse().ok())
            .unwrap_or_else(|| panic!("no `{word}` in {output}"))
    };
    (stamp("start "), stamp("end "))
}

#[test]
fn tasks_for_one_agent_run_one_after_the_other() {
    let ws = Workspace::new();
    let host = Orchestra::start(ws.options().manifest(
        "task_execution",
        "retry_delays_seconds = [1]\nmax_attempts = 30\n",
    ));
    host.register_agent(&ws.shell_agent("solo"));
    let command = "if [ -e busy ]; then echo OVERLAP; exit 9; fi; touch busy; \
                   echo start $(date +%s%N); sleep 1; echo end $(date +%s%N); rm busy";
    let tasks: Vec<String> = ["normal", "normal", "high"]
        .iter()
        .map(|priority| {
            host.submit_task(&json!({
                "command": command, "repository_path": ws.repo(), "priority": priority,
            }))
            .0
        })
        .collect();
    let busy = wait_until("the agent to be busy", TIMEOUT, || {
        let agent = host.agent("solo");
        (agent["status"] == "busy")
            .then_some(agent.clone())
            .ok_or(agent.to_string())
    });
    assert_eq!(
        busy["current_jobs"].as_array().unwrap().len(),
        1,
        "{busy:#}"
    );
    let (status, refused) = host.delete("/api/agents/solo");
    assert_eq!(status, 409, "a busy agent is not deleted: {refused}");
    let mut spans: Vec<(u128, u128)> = tasks
        .iter()
        .map(|task| span(&host.wait_for_task(task, &["succeeded"], 2 * TIMEOUT)))
        .collect();
    spans.sort();
    assert!(
        spans.windows(2).all(|w| w[0].1 <= w[1].0),
        "never two at once: {spans:?}"
    );
    let high = host.task(&tasks[2]);
    assert_eq!(high["queue"], "high-priority", "{high:#}");
    assert_eq!(host.task(&tasks[0])["queue"], "agent-solo");
}

#[test]
fn cancelling_a_task_kills_its_command_and_frees_the_agent() {
    let ws = Workspace::new();
    let host = Orchestra::start(ws.options());
    host.register_agent(&ws.shell_agent("sh"));
    let (task, job, _) = host.submit_task(&json!({
        "command": "echo $$ > pid; echo started; sleep 60", "repository_path": ws.repo(),
    }));
    host.wait_for_log(&job, "started");
    let running = host.task(&task);
    assert_eq!(running["state"], "processing", "{running:#}");
    assert_eq!(running["progress"]["percent"], 25, "{running:#}");
    assert!(running["progress"]["eta_seconds"].is_u64(), "{running:#}");
    let pid = fs::read_to_string(ws.repo_file("pid")).unwrap();
    let proc_dir = format!("/proc/{}", pid.trim());
    assert!(fs::metadata(&proc_dir).is_ok(), "the command runs");

    let (status, answer) = host.post_empty(&format!("/api/tasks/{task}/cancel"));
    assert_eq!(status, 202, "{answer}");
    let cancelled = host.wait_for_task(&task, &["cancelled"], TIMEOUT);
    assert_eq!(cancelled["state"], "cancelled");
    wait_until("the command to be killed", TIMEOUT, || {
        let stat = fs::read_to_string(format!("{proc_dir}/stat")).unwrap_or_default();
        (stat.is_empty() || stat.contains(") Z "))
            .then_some(())
            .ok_or(stat)
    });
    let agent = host.agent("sh");
    assert_eq!(agent["current_jobs"], json!([]), "released: {agent:#}");
    let (next, _, _) =
        host.submit_task(&json!({"command": "echo next", "repository_path": ws.repo()}));
    host.wait_for_task(&next, &["succeeded"], TIMEOUT);

    // A forced delete cancels what the agent runs.
    let (long, long_job, _) = host.submit_task(&json!({
        "command": "echo started; sleep 60", "repository_path": ws.repo(),
    }));
    host.wait_for_log(&long_job, "started");
    let (status, _) = host.delete("/api/agents/sh?force=true");
    assert_eq!(status, 204);
    host.wait_for_task(&long, &["cancelled"], TIMEOUT);
    let (status, _) = host.get("/api/agents/sh");
    assert_eq!(status, 404);
}

#[test]
fn a_killed_hosts_task_frees_the_agent_and_runs_again() {
    let ws = Workspace::new();
    let mut host = Orchestra::start(
        ws.options()
            .lease_seconds(2)
            .manifest("task_execution", "retry_delays_seconds = [1]\n"),
    );
    host.register_agent(&ws.shell_agent("sh"));
    let (task, job, _) = host.submit_task(&json!({
        "command": "if [ -e first-run ]; then echo resumed; else touch first-run; echo first; sleep 60; fi",
        "repository_path": ws.repo(),
    }));
    host.wait_for_log(&job, "first");
    assert_eq!(host.agent("sh")["current_jobs"], json!([job]));
    host.kill();
    host.restart();
    let done = host.wait_for_task(&task, &["succeeded"], TIMEOUT);
    assert_eq!(done["output"], "resumed\n", "{done:#}");
    assert_eq!(done["attempt"], 2, "the lost attempt counts: {done:#}");
    let job = host.job(&job);
    assert!(history_has(&job, "scheduled", "lease_expired"), "{job:#}");
    wait_until("the agent to be idle", Duration::from_secs(10), || {
        let agent = host.agent("sh");
        (agent["status"] == "idle")
            .then_some(())
            .ok_or(agent.to_string())
    });
}

#[test]
fn a_task_is_accepted_while_the_task_plugin_compiles_and_runs_once_it_is_ready() {
    let ws = Workspace::new();
    // Modules named before `task_execution` compile first, so it is still compiling
    // when the task arrives.
    let mut options = ws.options().own_cache();
    for n in 0..16 {
        options = options.plugin_file(&format!("echo{n}.wasm"), distinct_echo(&n.to_string()));
    }
    let host = Orchestra::try_start(options).unwrap_or_else(|why| panic!("{why}"));
    host.register_agent(&ws.shell_agent("shell"));
    let (task, _, _) = host.submit_task(&json!({
        "command": "echo compiled", "repository_path": ws.repo(),
    }));
    let plugin = host.plugin("task_execution").expect("listed");
    assert_eq!(
        plugin["status"], "compiling",
        "the task was accepted while its plugin compiled: {plugin}"
    );
    let done = host.wait_for_task(&task, &["succeeded"], TIMEOUT);
    assert_eq!(
        done["attempt"], 1,
        "no attempt failed while compiling: {done:#}"
    );
}
