//! The batch and workflow run pages over HTTP, and the job page's links to them: a
//! batch shows its jobs and callbacks with their states, a run its stages as columns of
//! steps with their states and jobs, a job links to its parents, continuations, batch
//! and run; Cancel is for admins only, and an id that names nothing is a 404.

use crate::access::send;
use crate::common::Orchestra;
use crate::continuations::{batch, wait_for_batch};
use crate::dashboard::page;
use crate::dashboard_pages::{escaped, read_token, row};
pub(crate) use crate::workflows::host;
use crate::workflows::{put_workflow, start_run, wait_for_run};
use serde_json::{Value, json};

/// A finished batch: one job succeeds, one fails, so its success callback is
/// cancelled and its completion callback runs. Returns it as the API shows it.
pub(crate) fn finished_batch(host: &Orchestra) -> Value {
    let id = batch(
        host,
        &json!({"jobs": [{"plugin": "echo"}, {"plugin": "flaky", "args": {"fatal": true}}],
                "on_success": {"plugin": "echo"}, "on_complete": {"plugin": "echo"},
                "description": "nightly <import>"}),
    );
    wait_for_batch(host, &id, "failed")
}

/// A finished run of a three-stage workflow: `fetch`; then in parallel `lint`, `test`
/// (fails, which the run allows) and `deploy` (skipped); then `report`. Returns it as
/// the API shows it.
pub(crate) fn finished_run(host: &Orchestra) -> Value {
    let step = |id: &str, plugin: &str| json!({"id": id, "plugin": plugin});
    let mut test = step("test", "flaky");
    test["args"] = json!({"fatal": true});
    test["continue_on_failure"] = json!(true);
    let mut deploy = step("deploy", "echo");
    deploy["when"] = json!({"step": "fetch", "state": "failed"});
    let definition = json!({"name": "ci", "stages": [
        {"name": "get", "mode": "sequential", "steps": [step("fetch", "echo")]},
        {"name": "checks", "mode": "parallel", "steps": [step("lint", "echo"), test, deploy]},
        {"name": "finish", "mode": "sequential", "steps": [step("report", "echo")]}]});
    put_workflow(host, "ci", &definition);
    let run = start_run(host, "ci", json!({"repo": "orchestra"}));
    wait_for_run(host, &run, "succeeded")
}

/// A batch whose only job waits in `held`; its id.
pub(crate) fn running_batch(host: &Orchestra) -> String {
    batch(
        host,
        &json!({"jobs": [{"plugin": "echo", "queue": "held"}]}),
    )
}

/// A run whose only step's job waits in `held`; its id.
pub(crate) fn running_run(host: &Orchestra) -> String {
    let definition = json!({"name": "waits", "stages": [{"name": "one", "mode": "sequential",
        "steps": [{"id": "wait", "plugin": "echo", "queue": "held"}]}]});
    put_workflow(host, "waits", &definition);
    start_run(host, "waits", json!({}))
}

/// The id of `item` (a job, a run).
fn id(item: &Value) -> &str {
    item["id"].as_str().expect("an id")
}

/// The job of step `step` of `run`.
fn step_job<'a>(run: &'a Value, step: &str) -> &'a str {
    let steps = run["steps"].as_array().expect("the run's steps");
    let found = steps.iter().find(|s| s["id"] == step).expect("the step");
    found["job_id"].as_str().expect("the step's job")
}

/// The stage columns of a run page, each up to its end, in order.
fn columns(html: &str) -> Vec<&str> {
    let starts = html.split("<li class=\"stage\"").skip(1);
    starts
        .map(|column| column.split("</ol>\n</li>").next().expect("a column"))
        .collect()
}

/// The part of a job page under its `Related` heading.
fn related(html: &str) -> &str {
    let start = html.find("<h2>Related</h2>").expect("a Related section");
    let end = html[start..].find("<h2>Arguments</h2>").expect("its end");
    &html[start..start + end]
}

/// Every link target in `html`, without its fragment.
fn hrefs(html: &str) -> Vec<&str> {
    let targets = html.split("href=\"").skip(1);
    targets
        .map(|rest| rest.split(['"', '#']).next().expect("a target"))
        .collect()
}

#[test]
fn the_batch_page_lists_its_jobs_and_callbacks_with_their_states() {
    let host = host();
    let token = host.token().unwrap().to_owned();
    let done = finished_batch(&host);
    let batch = id(&done);
    let shown = page(&host, &token, &format!("/batches/{batch}"));
    assert_eq!(shown.status, 200, "{}", shown.text);
    let html = &shown.text;
    for job in done["jobs"].as_array().expect("jobs") {
        let (job, state) = (id(job), job["state"].as_str().unwrap());
        let line = row(html, &format!("job-{job}"));
        assert!(
            line.contains(&format!("<a href=\"/jobs/{job}\">")),
            "{line}"
        );
        assert!(
            line.contains(&format!("<td class=\"state-{state}\">{state}</td>")),
            "{line}"
        );
    }
    let states = [("on_success", "cancelled"), ("on_complete", "succeeded")];
    for (callback, state) in states {
        let line = row(html, &format!("job-{}", id(&done[callback])));
        assert!(
            line.contains(&format!(">{state}</td>")),
            "{callback}: {line}"
        );
    }
    for part in [
        "<dd id=\"batch-state\" class=\"state-failed\">failed</dd>",
        "<li id=\"count-failed\"><span class=\"n\">1</span>",
        "<li id=\"count-succeeded\"><span class=\"n\">1</span>",
        "Finished: 2 of 2 jobs",
        "<progress id=\"progress\" max=\"100\" value=\"100\">",
        &escaped("nightly <import>"),
        &format!("hx-get=\"/batches/{batch}\""),
        "data-events=\"/api/events?types=batch.*,job.*\"",
    ] {
        assert!(html.contains(part), "{part} in {html}");
    }
    assert!(
        !html.contains("/cancel\""),
        "a finished batch offers no Cancel"
    );
}

#[test]
fn the_workflow_run_page_shows_each_stage_as_a_column_of_steps() {
    let host = host();
    let token = host.token().unwrap().to_owned();
    let run = finished_run(&host);
    let shown = page(&host, &token, &format!("/workflow-runs/{}", id(&run)));
    assert_eq!(shown.status, 200, "{}", shown.text);
    let html = &shown.text;
    let step = |name: &str, state: &str| {
        let label = match state {
            "skipped" => format!("<span>{name}</span>"),
            _ => format!("<a href=\"/jobs/{}\">{name}</a>", step_job(&run, name)),
        };
        format!(
            "<li class=\"step\" id=\"step-{name}\">{label} <span class=\"state-{state}\">{state}</span></li>"
        )
    };
    let wanted = [
        ("get", vec![("fetch", "succeeded")]),
        (
            "checks",
            vec![
                ("lint", "succeeded"),
                ("test", "failed"),
                ("deploy", "skipped"),
            ],
        ),
        ("finish", vec![("report", "succeeded")]),
    ];
    let found = columns(html);
    assert_eq!(found.len(), wanted.len(), "one column per stage: {html}");
    for (column, (stage, steps)) in found.iter().zip(wanted) {
        assert!(column.contains(&format!("<h3>{stage}</h3>")), "{column}");
        let listed = column.matches("<li class=\"step\"").count();
        assert_eq!(listed, steps.len(), "{column}");
        for (name, state) in steps {
            assert!(column.contains(&step(name, state)), "{name} in {column}");
        }
    }
    for part in [
        "<dd id=\"run-state\" class=\"state-succeeded\">succeeded</dd>",
        "<dt>Workflow</dt><dd>ci</dd>",
        "&#34;repo&#34;: &#34;orchestra&#34;",
        "data-events=\"/api/events?types=workflow.*,job.*\"",
    ] {
        assert!(html.contains(part), "{part} in {html}");
    }
    assert!(
        !html.contains("/cancel\""),
        "a finished run offers no Cancel"
    );
}

#[test]
fn the_job_page_links_to_its_parents_continuations_batch_and_run() {
    let host = host();
    let token = host.token().unwrap().to_owned();
    let done = finished_batch(&host);
    let run = finished_run(&host);
    let jobs = done["jobs"].as_array().expect("the batch's jobs");
    let member = id(jobs
        .iter()
        .find(|j| j["state"] == "succeeded")
        .expect("one succeeded"));
    let callback = id(&done["on_complete"]);
    let fetch = step_job(&run, "fetch");
    let mut linked = Vec::new();
    for (job, wanted) in [
        (
            member,
            vec![
                format!("<a href=\"/batches/{}\">", id(&done)),
                format!(
                    "<a href=\"/jobs/{callback}\"><code>{callback}</code></a> <span class=\"state-succeeded\">succeeded</span>"
                ),
            ],
        ),
        (
            callback,
            vec![format!(
                "<a href=\"/jobs/{member}\"><code>{member}</code></a> <span class=\"state-succeeded\">succeeded</span>"
            )],
        ),
        (
            fetch,
            vec![
                format!("<a href=\"/workflow-runs/{}\">", id(&run)),
                format!(
                    "<a href=\"/workflow-runs/{}#step-fetch\">fetch</a>",
                    id(&run)
                ),
            ],
        ),
    ] {
        let shown = page(&host, &token, &format!("/jobs/{job}"));
        assert_eq!(shown.status, 200, "{}", shown.text);
        let section = related(&shown.text).to_owned();
        for part in wanted {
            assert!(section.contains(&part), "{part} in {section}");
        }
        linked.extend(hrefs(&section).into_iter().map(str::to_owned));
    }
    assert!(linked.len() >= 6, "{linked:?}");
    for target in &linked {
        let shown = page(&host, &token, target);
        assert_eq!(shown.status, 200, "{target}: {}", shown.text);
    }
    let plain = host.submit("echo", json!({}));
    let shown = page(&host, &token, &format!("/jobs/{plain}"));
    assert!(
        !shown.text.contains("<h2>Related</h2>"),
        "a job linked to nothing has no Related section"
    );
}

#[test]
fn only_admins_see_and_may_use_cancel() {
    let host = host();
    let admin = host.token().unwrap().to_owned();
    let reader = read_token(&host);
    let batch = running_batch(&host);
    let run = running_run(&host);
    for (path, cancel) in [
        (
            format!("/batches/{batch}"),
            format!("/api/batches/{batch}/cancel"),
        ),
        (
            format!("/workflow-runs/{run}"),
            format!("/api/workflow-runs/{run}/cancel"),
        ),
    ] {
        let button = format!("<button hx-post=\"{cancel}\"");
        let shown = page(&host, &admin, &path);
        assert!(shown.text.contains(&button), "{button} in {}", shown.text);
        let read = page(&host, &reader, &path);
        assert_eq!(read.status, 200, "{}", read.text);
        assert!(!read.text.contains("hx-post"), "{path}: {}", read.text);
        let (status, answer) = send(&host, Some(&reader), "POST", &cancel, None);
        assert_eq!(status, 403, "{cancel}: {answer}");
    }
    let (_, still) = host.get(&format!("/api/batches/{batch}"));
    assert_eq!(still["state"], "running", "{still}");
}

#[test]
fn unknown_and_malformed_ids_are_not_found() {
    let host = host();
    let token = host.token().unwrap().to_owned();
    let unknown = "01890000-0000-7000-8000-000000000000";
    let long = "x".repeat(300);
    for kind in ["batches", "workflow-runs", "jobs"] {
        for id in [unknown, "nope", "%3Cb%3E", long.as_str()] {
            let path = format!("/{kind}/{id}");
            let shown = page(&host, &token, &path);
            assert_eq!(shown.status, 404, "{path}: {}", shown.text);
            let body: Value = serde_json::from_str(&shown.text).expect("a JSON error");
            assert!(
                body["error"].as_str().is_some_and(|e| e.starts_with("no ")),
                "{body}"
            );
        }
    }
}
