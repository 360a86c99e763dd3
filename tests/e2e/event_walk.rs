//! A walk through every path that changes a job, with the live event stream open.
//!
//! One host runs plain, delayed, retried, cancelled (waiting and running), retried after
//! a cancel, deleted, continuation, batch (completed and cancelled), recurring, workflow
//! (succeeded and cancelled), task (run by an agent) and cleaned-up jobs, and pauses and
//! resumes a queue. Then
//! [`check_every_job`] holds the stream to its contract for every job id any event
//! names:
//!
//! 1. the job's events arrive in order (their `seq` increases), and none is lost;
//! 2. its states chain: the first state-carrying `job.*` event is `job.created`, and each
//!    later one leaves (`previous`) the state the one before entered;
//! 3. the last one ends where the job is: `GET /api/jobs/{id}` shows that state, or
//!    answers 404 after `job.deleted`.
//!
//! Each path's own story (its state-carrying events) is checked too, and the checker is
//! shown to catch a missing `job.created`, a wrong `previous` and a wrong final state by
//! feeding it doctored copies of the real stream.

use crate::common::agents::Workspace;
use crate::common::{Orchestra, TIMEOUT, now_ms, rfc3339, wait_until};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// How long the stream must stay silent before every event is taken as received.
const QUIET: Duration = Duration::from_millis(500);

/// The states a job is created in.
const INITIAL: [&str; 3] = ["enqueued", "scheduled", "awaiting"];

/// Event types the walk must produce (besides a `batch.progress` or `batch.completed`).
const EXPECTED_TYPES: [&str; 22] = [
    "job.created",
    "job.enqueued",
    "job.started",
    "job.progress",
    "job.log",
    "job.retrying",
    "job.succeeded",
    "job.failed",
    "job.cancelled",
    "job.deleted",
    "recurring.fired",
    "batch.created",
    "batch.cancelled",
    "workflow.started",
    "workflow.step",
    "workflow.succeeded",
    "workflow.cancelled",
    "queue.paused",
    "queue.resumed",
    "task.created",
    "task.exec_finished",
    "agent.released",
];

/// The queue held paused while jobs wait in it (one the host serves by default).
const HELD: &str = "long-running";

// ---------------------------------------------------------------------------------------
// The checker
// ---------------------------------------------------------------------------------------

/// An event's `type`.
fn kind(event: &Value) -> &str {
    event["type"].as_str().unwrap_or("")
}

/// Whether `event` is a `job.*` event that carries a state (`state` or `previous`).
fn carries_state(event: &Value) -> bool {
    kind(event).starts_with("job.")
        && (event.get("state").is_some() || event.get("previous").is_some())
}

/// The type a move from `previous` to `state` is announced as.
fn move_type(previous: &str, state: &str) -> String {
    match state {
        "processing" => "job.started".to_owned(),
        "scheduled" if previous == "processing" => "job.retrying".to_owned(),
        other => format!("job.{other}"),
    }
}

/// Every event that names a job, grouped by job id, in arrival order.
fn by_job(events: &[Value]) -> BTreeMap<&str, Vec<&Value>> {
    let mut jobs: BTreeMap<&str, Vec<&Value>> = BTreeMap::new();
    for event in events {
        if let Some(id) = event["job_id"].as_str() {
            jobs.entry(id).or_default().push(event);
        }
    }
    jobs
}

/// One event per line, for failure messages.
fn listing(events: &[&Value]) -> String {
    events
        .iter()
        .map(|e| format!("    {e}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Where a job's state-carrying events leave it: `Some(state)`, or `None` once deleted.
/// `Err` says where the chain breaks.
fn walk_chain(events: &[&Value]) -> Result<Option<String>, String> {
    let mut now: Option<Option<String>> = None;
    for event in events.iter().filter(|e| kind(e).starts_with("job.")) {
        let ty = kind(event);
        let seq = &event["seq"];
        let state = event["state"].as_str();
        let previous = event["previous"].as_str();
        let Some(current) = &now else {
            // Nothing about a job comes before it is created.
            if ty != "job.created" {
                return Err(format!(
                    "its first job event is {ty} (seq {seq}), not job.created"
                ));
            }
            match state {
                Some(s) if INITIAL.contains(&s) => {}
                _ => return Err(format!("job.created (seq {seq}) has state {state:?}")),
            }
            if previous.is_some() {
                return Err(format!("job.created (seq {seq}) has a previous state"));
            }
            now = Some(state.map(str::to_owned));
            continue;
        };
        let Some(current) = current else {
            return Err(format!("{ty} (seq {seq}) comes after job.deleted"));
        };
        if !carries_state(event) {
            continue;
        }
        if ty == "job.created" {
            return Err(format!("a second job.created (seq {seq})"));
        }
        if previous != Some(current.as_str()) {
            return Err(format!(
                "{ty} (seq {seq}) has previous {}, but the job was {current:?}",
                event["previous"]
            ));
        }
        if ty == "job.deleted" {
            if state.is_some() {
                return Err(format!("job.deleted (seq {seq}) has a state {state:?}"));
            }
            now = Some(None);
            continue;
        }
        let Some(state) = state else {
            return Err(format!("{ty} (seq {seq}) has a previous but no state"));
        };
        if ty != move_type(current, state) {
            return Err(format!(
                "{ty} (seq {seq}) announces {current} -> {state}, which is a {}",
                move_type(current, state)
            ));
        }
        now = Some(Some(state.to_owned()));
    }
    now.ok_or_else(|| "no job.* event carries its state (no job.created)".to_owned())
}

/// Everything wrong with `events` (the whole stream, as received) against the host as it
/// is now; empty when the stream keeps its contract for every job.
fn problems(host: &Orchestra, events: &[Value]) -> Vec<String> {
    let mut problems = Vec::new();
    for pair in events.windows(2) {
        let (a, b) = (pair[0]["seq"].as_u64(), pair[1]["seq"].as_u64());
        if !matches!((a, b), (Some(a), Some(b)) if b == a + 1) {
            problems.push(format!(
                "the stream skips or reorders: seq {a:?} then {b:?} ({} then {})",
                pair[0], pair[1]
            ));
        }
    }
    for event in events.iter().filter(|e| kind(e) == "missed") {
        problems.push(format!("the stream lost events: {event}"));
    }
    let jobs = by_job(events);
    for (id, seen) in &jobs {
        let mut trouble = Vec::new();
        let seqs: Vec<Option<u64>> = seen.iter().map(|e| e["seq"].as_u64()).collect();
        if !seqs
            .windows(2)
            .all(|w| matches!(w, [Some(a), Some(b)] if a < b))
        {
            trouble.push(format!("its events are out of order: seqs {seqs:?}"));
        }
        match walk_chain(seen) {
            Err(broken) => trouble.push(format!("its states do not chain: {broken}")),
            Ok(last) => {
                let (status, job) = host.get(&format!("/api/jobs/{id}"));
                match (&last, status) {
                    (None, 404) => {}
                    (None, _) => trouble.push(format!(
                        "its last event is job.deleted, but GET answers {status}: {job}"
                    )),
                    (Some(last), 200) if job["state"] == last.as_str() => {}
                    (Some(last), _) => trouble.push(format!(
                        "its events end in {last:?}, but GET answers {status} with state {}",
                        job["state"]
                    )),
                }
            }
        }
        for why in trouble {
            problems.push(format!("job {id}: {why}; its events:\n{}", listing(seen)));
        }
    }
    let (stored, _) = host.list("limit=1000");
    for job in &stored {
        let id = job["id"].as_str().unwrap_or("");
        if !jobs.contains_key(id) {
            problems.push(format!(
                "job {id} is stored ({}), but no event named it",
                job["state"]
            ));
        }
    }
    problems
}

/// Asserts that the stream keeps its contract for every job any event names (see the
/// module's documentation), printing every problem with the job's events.
fn check_every_job(host: &Orchestra, events: &[Value]) {
    let problems = problems(host, events);
    assert!(
        problems.is_empty(),
        "{} problem(s) in a stream of {} events:\n{}",
        problems.len(),
        events.len(),
        problems.join("\n")
    );
}

// ---------------------------------------------------------------------------------------
// The stream
// ---------------------------------------------------------------------------------------

/// The live event stream and every event received so far.
struct Stream {
    receiver: mpsc::Receiver<Value>,
    seen: Vec<Value>,
}

impl Stream {
    fn open(host: &Orchestra) -> Stream {
        Stream {
            receiver: host.listen("/api/events", None),
            seen: Vec::new(),
        }
    }

    /// Receives events until `done` holds for all received, within [`TIMEOUT`].
    fn until(&mut self, what: &str, done: impl Fn(&[Value]) -> bool) {
        let deadline = Instant::now() + TIMEOUT;
        while !done(&self.seen) {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.receiver.recv_timeout(left) {
                Ok(event) => self.seen.push(event),
                Err(e) => panic!(
                    "no {what} within {TIMEOUT:?} ({e}); received {} events:\n{}",
                    self.seen.len(),
                    listing(&self.seen.iter().collect::<Vec<_>>())
                ),
            }
        }
    }

    /// Receives events until none came for [`QUIET`].
    fn drain(&mut self) {
        while let Ok(event) = self.receiver.recv_timeout(QUIET) {
            self.seen.push(event);
        }
    }

    /// A job's state-carrying events in short: `created:STATE`, then the type without
    /// `job.` (`started`, `retrying`, ...).
    fn story(&self, id: &str) -> Vec<String> {
        self.seen
            .iter()
            .filter(|e| e["job_id"] == id && carries_state(e))
            .map(|e| match kind(e) {
                "job.created" => format!("created:{}", e["state"].as_str().unwrap_or("?")),
                other => other.trim_start_matches("job.").to_owned(),
            })
            .collect()
    }

    /// Every event naming job `id`.
    fn of(&self, id: &str) -> Vec<&Value> {
        self.seen.iter().filter(|e| e["job_id"] == id).collect()
    }
}

/// Whether `events` hold one of type `ty` whose `field` is `value`.
fn has(events: &[Value], ty: &str, field: &str, value: &str) -> bool {
    events.iter().any(|e| kind(e) == ty && e[field] == value)
}

// ---------------------------------------------------------------------------------------
// Helpers for the paths
// ---------------------------------------------------------------------------------------

/// `POST path` (empty JSON body), asserting `status`; returns the answer.
fn post_ok(host: &Orchestra, path: &str, status: u16) -> Value {
    let (got, answer) = host.post(path, &json!({}));
    assert_eq!(got, status, "POST {path} answered {got}: {answer}");
    answer
}

/// Submits an `echo` job waiting for `parent`, released `on` its end; returns its id.
fn continuation(host: &Orchestra, parent: &str, on: &str) -> String {
    let body = json!({"plugin": "echo", "args": {"on": on}, "after": [parent], "on": on});
    let (status, answer) = host.post("/api/jobs", &body);
    assert_eq!(status, 201, "{body} answered {status}: {answer}");
    assert_eq!(answer["state"], "awaiting", "{answer}");
    answer["id"].as_str().expect("an id").to_owned()
}

/// Creates a batch; returns its id and its jobs' ids.
fn batch(host: &Orchestra, body: &Value) -> (String, Vec<String>) {
    let (status, answer) = host.post("/api/batches", body);
    assert_eq!(status, 201, "{body} answered {status}: {answer}");
    let jobs = answer["jobs"]
        .as_array()
        .unwrap_or_else(|| panic!("a batch answer without jobs: {answer}"))
        .iter()
        .map(|id| id.as_str().expect("a job id").to_owned())
        .collect();
    (answer["id"].as_str().expect("a batch id").to_owned(), jobs)
}

/// `GET /api/workflow-runs/{id}`, asserting 200.
fn run(host: &Orchestra, id: &str) -> Value {
    let (status, body) = host.get(&format!("/api/workflow-runs/{id}"));
    assert_eq!(status, 200, "GET run {id} answered {status}: {body}");
    body
}

/// Stores workflow `id` and starts a run of it; returns the run's id.
fn start_workflow(host: &Orchestra, id: &str, definition: &Value) -> String {
    let (status, body) = host.put(&format!("/api/workflows/{id}"), definition);
    assert_eq!(status, 201, "PUT workflow {id} answered {status}: {body}");
    post_ok(host, &format!("/api/workflows/{id}/runs"), 201)["id"]
        .as_str()
        .expect("a run id")
        .to_owned()
}

/// Waits until step `step` of run `run` has a job, and returns the job's id.
fn step_job(host: &Orchestra, run_id: &str, step: &str) -> String {
    wait_until(
        &format!("step {step} of run {run_id} to get a job"),
        TIMEOUT,
        || {
            let now = run(host, run_id);
            now["steps"]
                .as_array()
                .and_then(|steps| steps.iter().find(|s| s["id"] == step))
                .and_then(|s| s["job_id"].as_str())
                .map(str::to_owned)
                .ok_or_else(|| now.to_string())
        },
    )
}

/// Waits until run `id` is `state`.
fn wait_for_run(host: &Orchestra, id: &str, state: &str) -> Value {
    wait_until(&format!("run {id} to be {state}"), TIMEOUT, || {
        let now = run(host, id);
        if now["state"] == state {
            Ok(now)
        } else {
            Err(now.to_string())
        }
    })
}

fn echo_step(id: &str) -> Value {
    json!({"id": id, "plugin": "echo", "args": {"step": id}})
}

// ---------------------------------------------------------------------------------------
// The walk
// ---------------------------------------------------------------------------------------

/// The story of a job that runs once, succeeds and is cleaned up.
const PLAIN_STORY: &str = "created:enqueued started succeeded deleted";

/// What the job deleted by hand shows.
const DELETED: &str = "deleted by hand";

/// Every job the walk made, by what it shows, and how its story should read.
struct Walked {
    /// `(what, job id, expected story)`; a story is [`Stream::story`] joined by spaces.
    jobs: Vec<(&'static str, String, &'static str)>,
}

impl Walked {
    fn add(&mut self, what: &'static str, id: &str, story: &'static str) {
        self.jobs.push((what, id.to_owned(), story));
    }

    /// The jobs the cleanup removes: those whose story ends `succeeded`, `deleted`, but
    /// the one deleted by hand.
    fn cleaned(&self) -> Vec<&str> {
        self.jobs
            .iter()
            .filter(|(what, _, story)| *what != DELETED && story.ends_with("succeeded deleted"))
            .map(|(_, id, _)| id.as_str())
            .collect()
    }
}

#[test]
fn every_job_change_is_announced_in_order_and_ends_where_the_job_is() {
    let ws = Workspace::new();
    let host = Orchestra::start(
        ws.options()
            .plugin("echo")
            .plugin("flaky")
            .plugin("sleep")
            .manifest("flaky", "retry_delays_seconds = [0]\nmax_attempts = 2\n")
            .config(concat!(
                "retain_succeeded_days = 0\nretain_failed_days = 30\n",
                // No agent health check in the middle of the walk.
                "agent_health_schedule = \"0 0 0 1 1 *\"\n",
            )),
    );
    let mut stream = Stream::open(&host);
    // The built-in hourly cleanup must not run in the middle of the walk.
    post_ok(&host, "/api/recurring/orchestra-cleanup/pause", 200);
    let mut walked = Walked { jobs: Vec::new() };

    // Jobs that wait in a paused queue: cancelled there, cancelled with their batch, or
    // holding back continuations.
    post_ok(&host, &format!("/api/queues/{HELD}/pause"), 200);
    let waiting =
        host.submit_job(json!({"plugin": "echo", "queue": HELD, "args": {"path": "waiting"}}));
    assert_eq!(
        post_ok(&host, &format!("/api/jobs/{waiting}/cancel"), 200)["state"],
        "cancelled"
    );
    walked.add(
        "cancelled while waiting, then retried",
        &waiting,
        "created:enqueued cancelled enqueued started succeeded deleted",
    );
    let parent =
        host.submit_job(json!({"plugin": "flaky", "queue": HELD, "args": {"fatal": true}}));
    walked.add("failing parent", &parent, "created:enqueued started failed");
    let on_success = continuation(&host, &parent, "success");
    walked.add(
        "continuation on success",
        &on_success,
        "created:awaiting cancelled",
    );
    let on_finish = continuation(&host, &parent, "finish");
    walked.add(
        "continuation on finish",
        &on_finish,
        "created:awaiting enqueued started succeeded deleted",
    );
    let (held_batch, held_jobs) = batch(
        &host,
        &json!({"jobs": [{"plugin": "echo", "queue": HELD}, {"plugin": "echo", "queue": HELD}]}),
    );
    post_ok(&host, &format!("/api/batches/{held_batch}/cancel"), 200);
    for id in &held_jobs {
        walked.add("job of a cancelled batch", id, "created:enqueued cancelled");
    }

    // Jobs that run at once or soon.
    let plain = host.submit("echo", json!({"path": "plain"}));
    walked.add("plain", &plain, PLAIN_STORY);
    let due = now_ms() + 1_000;
    let delayed = host
        .submit_job(json!({"plugin": "echo", "args": {"path": "delayed"}, "run_at": rfc3339(due)}));
    walked.add(
        "delayed",
        &delayed,
        "created:scheduled enqueued started succeeded deleted",
    );
    let flaky = host.submit("flaky", json!({"succeed_on": 9}));
    walked.add(
        "retried then failed",
        &flaky,
        "created:enqueued started retrying enqueued started failed",
    );
    let sleeper = host.submit("sleep", json!({"ms": 60_000}));
    walked.add(
        "cancelled while running",
        &sleeper,
        "created:enqueued started cancelled",
    );
    let removed = host.submit("echo", json!({"path": "deleted"}));
    walked.add(DELETED, &removed, PLAIN_STORY);
    let (done_batch, done_jobs) = batch(
        &host,
        &json!({"jobs": [{"plugin": "echo", "args": {"n": 1}}, {"plugin": "echo", "args": {"n": 2}}],
                "on_complete": {"plugin": "echo", "args": {"callback": "complete"}}}),
    );
    for id in &done_jobs {
        walked.add("job of a completed batch", id, PLAIN_STORY);
    }

    // A task, run by an agent.
    host.register_agent(&ws.shell_agent("walker"));
    let (task, task_job, _) = host.submit_task(&json!({
        "command": "echo walked", "repository_path": ws.repo()
    }));
    walked.add("task's job", &task_job, PLAIN_STORY);

    // A recurring job, triggered by hand.
    let (status, answer) = host.put(
        "/api/recurring/walk",
        &json!({"cron": "0 0 1 1 *", "plugin": "echo", "args": {"from": "walk"}}),
    );
    assert_eq!(status, 201, "{answer}");
    let fired = post_ok(&host, "/api/recurring/walk/trigger", 201)["id"]
        .as_str()
        .expect("the triggered job's id")
        .to_owned();
    walked.add("recurring, triggered", &fired, PLAIN_STORY);

    // Workflow runs: one to its end, one cancelled while its step runs.
    let finished_run = start_workflow(
        &host,
        "walk-ok",
        &json!({"name": "walk-ok", "stages": [
            {"name": "one", "mode": "sequential", "steps": [echo_step("first")]},
            {"name": "two", "mode": "sequential", "steps": [echo_step("second")]}]}),
    );
    let cancelled_run = start_workflow(
        &host,
        "walk-cancel",
        &json!({"name": "walk-cancel", "stages": [
            {"name": "one", "mode": "sequential", "steps": [
                {"id": "nap", "plugin": "sleep", "args": {"ms": 60_000}}]},
            {"name": "two", "mode": "sequential", "steps": [echo_step("never")]}]}),
    );
    let nap = step_job(&host, &cancelled_run, "nap");
    walked.add(
        "step of a cancelled run",
        &nap,
        "created:enqueued started cancelled",
    );

    // Cancels of running jobs, and the delete of a finished one.
    host.wait_for_guest(&sleeper);
    let answer = post_ok(&host, &format!("/api/jobs/{sleeper}/cancel"), 200);
    assert_eq!(answer["cancel_requested"], true, "{answer}");
    host.wait_for_guest(&nap);
    post_ok(
        &host,
        &format!("/api/workflow-runs/{cancelled_run}/cancel"),
        200,
    );
    host.wait_for_state(&removed, &["succeeded"], TIMEOUT);
    let (status, answer) = host.delete(&format!("/api/jobs/{removed}"));
    assert_eq!(status, 204, "DELETE {removed} answered {status}: {answer}");
    let (status, answer) = host.get(&format!("/api/jobs/{removed}"));
    assert_eq!(status, 404, "a deleted job is gone: {answer}");

    // Let the paused queue go, and run the cancelled job again.
    post_ok(&host, &format!("/api/queues/{HELD}/resume"), 200);
    assert_eq!(
        post_ok(&host, &format!("/api/jobs/{waiting}/retry"), 200)["state"],
        "enqueued"
    );

    // Everything reaches its end.
    let finished = wait_for_run(&host, &finished_run, "succeeded");
    for step in ["first", "second"] {
        let id = finished["steps"]
            .as_array()
            .and_then(|steps| steps.iter().find(|s| s["id"] == step))
            .and_then(|s| s["job_id"].as_str())
            .unwrap_or_else(|| panic!("step {step} has no job: {finished}"))
            .to_owned();
        walked.add("step of a finished run", &id, PLAIN_STORY);
    }
    wait_for_run(&host, &cancelled_run, "cancelled");
    let callback = wait_until("the batch's callback to succeed", TIMEOUT, || {
        let (_, batch) = host.get(&format!("/api/batches/{done_batch}"));
        match (
            batch["on_complete"]["id"].as_str(),
            batch["on_complete"]["state"].as_str(),
        ) {
            (Some(id), Some("succeeded")) => Ok(id.to_owned()),
            _ => Err(batch.to_string()),
        }
    });
    walked.add(
        "batch callback",
        &callback,
        "created:awaiting enqueued started succeeded deleted",
    );
    for (what, id, story) in &walked.jobs {
        if *what == DELETED {
            continue;
        }
        let end = story.trim_end_matches(" deleted").rsplit(' ').next();
        host.wait_for_state(id, &[end.expect("a story")], TIMEOUT);
    }

    // The cleanup removes every succeeded job.
    std::thread::sleep(Duration::from_millis(20));
    let cleaned = walked.cleaned();
    let answer = post_ok(&host, "/api/maintenance/cleanup", 200);
    assert_eq!(
        answer["removed"].as_u64(),
        Some(cleaned.len() as u64),
        "every succeeded job (but the one deleted by hand) is removed: {answer}"
    );

    stream.until("the walk's events", |seen| {
        EXPECTED_TYPES
            .iter()
            .all(|ty| seen.iter().any(|e| kind(e) == *ty))
            && has(seen, "batch.completed", "batch_id", &done_batch)
            && has(seen, "batch.cancelled", "batch_id", &held_batch)
            && has(seen, "workflow.succeeded", "run_id", &finished_run)
            && has(seen, "workflow.cancelled", "run_id", &cancelled_run)
            && has(seen, "task.created", "task_id", &task)
            && cleaned
                .iter()
                .chain([&removed.as_str()])
                .all(|id| has(seen, "job.deleted", "job_id", id))
    });
    stream.drain();

    check_every_job(&host, &stream.seen);

    for (what, id, story) in &walked.jobs {
        assert_eq!(
            stream.story(id).join(" "),
            *story,
            "the story of the {what} job {id}; its events:\n{}",
            listing(&stream.of(id))
        );
    }
    let seen = &stream.seen;
    let of_task = |ty: &str| {
        seen.iter()
            .position(|e| kind(e) == ty && e["job_id"] == task_job.as_str())
            .unwrap_or_else(|| panic!("no {ty} for the task's job {task_job}"))
    };
    assert!(
        of_task("task.created") < of_task("job.created")
            && seen[of_task("job.created")]["task_id"] == task.as_str(),
        "a task is announced, then its job, which names it:\n{}",
        listing(&stream.of(&task_job))
    );
    let fired_at = seen
        .iter()
        .position(|e| kind(e) == "recurring.fired" && e["job_id"] == fired.as_str())
        .unwrap_or_else(|| panic!("no recurring.fired for {fired}"));
    assert_eq!(seen[fired_at]["recurring_id"], "walk", "{}", seen[fired_at]);
    assert!(
        seen[..fired_at]
            .iter()
            .any(|e| kind(e) == "job.created" && e["job_id"] == fired.as_str()),
        "recurring.fired follows the job's job.created:\n{}",
        listing(&stream.of(&fired))
    );
    assert!(
        seen.iter().any(|e| kind(e) == "workflow.step"
            && e["run_id"] == finished_run.as_str()
            && e["job_id"].is_string()),
        "a step of the finished run is announced with its job"
    );
    for queue_event in ["queue.paused", "queue.resumed"] {
        assert!(
            has(seen, queue_event, "queue", HELD),
            "no {queue_event} for {HELD}"
        );
    }

    // The checker itself catches a broken stream.
    let doctored = |what: &str, change: &dyn Fn(&mut Vec<Value>)| {
        let mut events = stream.seen.clone();
        change(&mut events);
        let found = problems(&host, &events);
        assert!(!found.is_empty(), "the checker missed {what}");
        found.join("\n")
    };
    let plain_created = |e: &Value| e["job_id"] == plain.as_str() && kind(e) == "job.created";
    let found = doctored("a missing job.created", &|events| {
        events.retain(|e| !plain_created(e))
    });
    assert!(
        found.contains(&format!("job {plain}: its states do not chain")),
        "{found}"
    );
    let found = doctored("a wrong previous", &|events| {
        let failed = events
            .iter_mut()
            .find(|e| e["job_id"] == flaky.as_str() && kind(e) == "job.failed")
            .expect("the flaky job failed");
        failed["previous"] = json!("enqueued");
    });
    assert!(found.contains("has previous \"enqueued\""), "{found}");
    let found = doctored("a wrong final state", &|events| {
        events.retain(|e| !(e["job_id"] == sleeper.as_str() && kind(e) == "job.cancelled"));
    });
    assert!(
        found.contains(&format!("job {sleeper}: its events end in \"processing\"")),
        "{found}"
    );
    let found = doctored("a missing job.deleted", &|events| {
        events.retain(|e| !(e["job_id"] == plain.as_str() && kind(e) == "job.deleted"));
    });
    assert!(
        found.contains(&format!(
            "job {plain}: its events end in \"succeeded\", but GET answers 404"
        )),
        "{found}"
    );
}
