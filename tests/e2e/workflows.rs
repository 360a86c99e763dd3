//! Workflows: stages run in order, parallel steps together, conditions skip steps,
//! parameters fill args, a failing step fails the run unless it may fail, cancel stops a
//! run, and bad definitions or parameters are refused naming what is wrong.

use crate::common::{Options, Orchestra, TIMEOUT, time_ms, wait_until};
use serde_json::{Value, json};

/// A host with the plugins these tests use (echo, flaky, sleep); no worker serves the
/// queue `held`, so jobs sent there wait.
pub(crate) fn host() -> Orchestra {
    Orchestra::start(
        Options::new()
            .workers(4)
            .plugin("echo")
            .plugin("flaky")
            .plugin("sleep"),
    )
}

/// Stores workflow `id`, asserting 201.
pub(crate) fn put_workflow(host: &Orchestra, id: &str, definition: &Value) {
    let (status, body) = host.put(&format!("/api/workflows/{id}"), definition);
    assert_eq!(status, 201, "PUT workflow {id} answered {status}: {body}");
}

/// Starts a run of `id` with `parameters`; returns the run's id.
pub(crate) fn start_run(host: &Orchestra, id: &str, parameters: Value) -> String {
    let (status, body) = host.post(
        &format!("/api/workflows/{id}/runs"),
        &json!({ "parameters": parameters }),
    );
    assert_eq!(
        status, 201,
        "starting a run of {id} answered {status}: {body}"
    );
    body["id"].as_str().expect("a run id").to_owned()
}

/// `GET /api/workflow-runs/{id}`, asserting 200.
fn run(host: &Orchestra, id: &str) -> Value {
    let (status, body) = host.get(&format!("/api/workflow-runs/{id}"));
    assert_eq!(status, 200, "GET run {id} answered {status}: {body}");
    body
}

/// Waits until run `id` is in `state`, and returns it.
pub(crate) fn wait_for_run(host: &Orchestra, id: &str, state: &str) -> Value {
    wait_until(&format!("run {id} to be {state}"), TIMEOUT, || {
        let run = run(host, id);
        if run["state"] == state {
            Ok(run)
        } else {
            Err(run.to_string())
        }
    })
}

/// The step `id` of a run.
fn step<'a>(run: &'a Value, id: &str) -> &'a Value {
    run["steps"]
        .as_array()
        .and_then(|steps| steps.iter().find(|s| s["id"] == id))
        .unwrap_or_else(|| panic!("no step {id} in {run}"))
}

/// The job of step `id` of a run.
fn step_job(host: &Orchestra, run: &Value, id: &str) -> Value {
    let job = step(run, id)["job_id"]
        .as_str()
        .unwrap_or_else(|| panic!("step {id} has no job: {run}"));
    host.job(job)
}

fn echo(id: &str, args: Value) -> Value {
    json!({"id": id, "plugin": "echo", "args": args})
}

/// Stage 1: `fetch`; stage 2 in parallel: `lint`, `test` (if fetch saw changes) and
/// `deploy` (never: fetch did not fail); stage 3: `report`.
fn ci() -> Value {
    let when_changed = json!({"step": "fetch", "path": "/changed", "equals": true});
    let mut test = echo("test", json!({"suite": "all"}));
    test["when"] = when_changed;
    let mut deploy = echo("deploy", json!({}));
    deploy["when"] = json!({"step": "fetch", "state": "failed"});
    json!({"name": "ci", "stages": [
        {"name": "get", "mode": "sequential",
         "steps": [echo("fetch", json!({"changed": "{{params.changed}}"}))]},
        {"name": "checks", "mode": "parallel",
         "steps": [echo("lint", json!({"strict": true})), test, deploy]},
        {"name": "finish", "mode": "sequential",
         "steps": [echo("report", json!({"title": "report for {{params.repo}} done"}))]}]})
}

#[test]
fn stages_run_in_order_with_parallel_steps_and_conditions() {
    let host = host();
    put_workflow(&host, "ci", &ci());
    let (status, stored) = host.get("/api/workflows/ci");
    assert_eq!(status, 200, "{stored}");
    assert_eq!(stored["definition"]["stages"][1]["mode"], "parallel");
    let id = start_run(&host, "ci", json!({"changed": true, "repo": "orchestra"}));
    let done = wait_for_run(&host, &id, "succeeded");
    let states: Vec<(&str, &str)> = done["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .map(|s| (s["id"].as_str().unwrap(), s["state"].as_str().unwrap()))
        .collect();
    assert_eq!(
        states,
        [
            ("fetch", "succeeded"),
            ("lint", "succeeded"),
            ("test", "succeeded"),
            ("deploy", "skipped"),
            ("report", "succeeded")
        ]
    );
    assert!(step(&done, "deploy")["job_id"].is_null(), "{done}");
    let fetch = step_job(&host, &done, "fetch");
    assert_eq!(
        fetch["args"],
        json!({"changed": true}),
        "the bool stays a bool"
    );
    assert_eq!(
        fetch["workflow_run"],
        json!({"run_id": id, "step_id": "fetch"}),
        "{fetch}"
    );
    let report = step_job(&host, &done, "report");
    assert_eq!(report["args"]["title"], "report for orchestra done");
    let lint = step_job(&host, &done, "lint");
    let test = step_job(&host, &done, "test");
    for job in [&lint, &test] {
        assert!(
            time_ms(job, "created_at") >= time_ms(&fetch, "finished_at"),
            "stage 2 started before stage 1 ended: {job} {fetch}"
        );
        assert!(
            time_ms(&report, "created_at") >= time_ms(job, "finished_at"),
            "stage 3 started before stage 2 ended: {report} {job}"
        );
    }
    assert!(done["finished_at"].is_string(), "{done}");
}

#[test]
fn a_false_condition_skips_and_embedded_parameters_render_as_text() {
    let host = host();
    put_workflow(&host, "ci", &ci());
    let id = start_run(&host, "ci", json!({"changed": false, "repo": 7}));
    let done = wait_for_run(&host, &id, "succeeded");
    assert_eq!(step(&done, "test")["state"], "skipped");
    assert_eq!(step(&done, "lint")["state"], "succeeded");
    let report = step_job(&host, &done, "report");
    assert_eq!(report["args"]["title"], "report for 7 done");
}

/// Stage 1: `break` (flaky, fatal; may fail if `lenient`); stage 2: `after`.
fn breaking(lenient: bool) -> Value {
    json!({"name": "breaking", "stages": [
        {"name": "one", "mode": "sequential", "steps": [
            {"id": "break", "plugin": "flaky", "args": {"fatal": true},
             "continue_on_failure": lenient}]},
        {"name": "two", "mode": "sequential", "steps": [echo("after", json!({}))]}]})
}

#[test]
fn a_failing_step_fails_the_run_and_later_stages_do_not_run() {
    let host = host();
    put_workflow(&host, "strict", &breaking(false));
    let id = start_run(&host, "strict", json!({}));
    let done = wait_for_run(&host, &id, "failed");
    assert_eq!(step(&done, "break")["state"], "failed");
    assert_eq!(step(&done, "after")["state"], "cancelled");
    assert!(step(&done, "after")["job_id"].is_null(), "{done}");
}

#[test]
fn continue_on_failure_lets_the_run_go_on() {
    let host = host();
    put_workflow(&host, "lenient", &breaking(true));
    let id = start_run(&host, "lenient", json!({}));
    let done = wait_for_run(&host, &id, "succeeded");
    assert_eq!(step(&done, "break")["state"], "failed");
    assert_eq!(step(&done, "after")["state"], "succeeded");
}

#[test]
fn cancel_stops_a_run() {
    let host = host();
    let definition = json!({"name": "slow", "stages": [
        {"name": "one", "mode": "sequential", "steps": [
            {"id": "nap", "plugin": "sleep", "args": {"ms": 60000}}]},
        {"name": "two", "mode": "sequential", "steps": [echo("after", json!({}))]}]});
    put_workflow(&host, "slow", &definition);
    let id = start_run(&host, "slow", json!({}));
    let running = wait_until("the nap to start", TIMEOUT, || {
        let run = run(&host, &id);
        match step(&run, "nap")["job_id"].as_str() {
            Some(job) => Ok(job.to_owned()),
            None => Err(run.to_string()),
        }
    });
    host.wait_for_guest(&running);
    let (status, body) = host.post_empty(&format!("/api/workflow-runs/{id}/cancel"));
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["state"], "cancelled");
    host.wait_for_state(&running, &["cancelled"], TIMEOUT);
    let done = run(&host, &id);
    assert_eq!(done["state"], "cancelled");
    assert_eq!(step(&done, "nap")["state"], "cancelled");
    assert_eq!(step(&done, "after")["state"], "cancelled");
    assert!(step(&done, "after")["job_id"].is_null());
    let (again, _) = host.post_empty(&format!("/api/workflow-runs/{id}/cancel"));
    assert_eq!(again, 409);
}

/// PUTs `definition` and asserts a 422 whose message contains every part of `wanted`.
fn refused(host: &Orchestra, definition: &Value, wanted: &[&str]) {
    let (status, body) = host.put("/api/workflows/bad", definition);
    assert_eq!(status, 422, "{body}");
    let error = body["error"].as_str().expect("an error message");
    for part in wanted {
        assert!(error.contains(part), "{error:?} should contain {part:?}");
    }
}

#[test]
fn bad_definitions_are_refused_naming_the_step() {
    let host = host();
    let mut unknown = ci();
    unknown["stages"][1]["steps"][0]["plugin"] = json!("nope");
    refused(&host, &unknown, &["step `lint`", "unknown plugin `nope`"]);
    let mut forward = ci();
    forward["stages"][0]["steps"][0]["when"] = json!({"step": "report", "state": "succeeded"});
    refused(
        &host,
        &forward,
        &["step `fetch`", "`report`", "does not come earlier"],
    );
    let mut template = ci();
    template["stages"][2]["steps"][0]["args"] = json!({"x": "{{params.repo"});
    refused(&host, &template, &["step `report`", "template"]);
    let (status, _) = host.get("/api/workflows/bad");
    assert_eq!(status, 404, "nothing was stored");
}

#[test]
fn unknown_workflows_and_missing_parameters_are_refused() {
    let host = host();
    let (status, body) = host.post("/api/workflows/ghost/runs", &json!({"parameters": {}}));
    assert_eq!(status, 404, "{body}");
    let (status, _) = host.get("/api/workflows/ghost");
    assert_eq!(status, 404);
    put_workflow(&host, "ci", &ci());
    let (status, body) = host.post(
        "/api/workflows/ci/runs",
        &json!({"parameters": {"changed": true}}),
    );
    assert_eq!(status, 422, "{body}");
    assert!(
        body["error"].as_str().is_some_and(|e| e.contains("`repo`")),
        "{body}"
    );
    let (status, _) = host.delete("/api/workflows/ci");
    assert_eq!(status, 204);
    let (status, _) = host.delete("/api/workflows/ci");
    assert_eq!(status, 404);
    let (status, _) = host.get(&format!("/api/workflow-runs/{}", uuid_like()));
    assert_eq!(status, 404);
}

/// A well-formed run id that no run has.
fn uuid_like() -> &'static str {
    "0190a3c4-0000-7000-8000-000000000000"
}
