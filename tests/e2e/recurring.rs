//! Recurring jobs: schedules with a seconds field fire on time, an occurrence is
//! enqueued once across a crash, missed occurrences never burst, trigger, pause and
//! resume, what `GET` shows, bad definitions, and schedules declared in the config file.
//!
//! Every recurring job here runs `echo` with args `{"from": ID}`, so its jobs can be
//! told apart; each job's first history reason says which occurrence it is for.

use crate::common::{Options, Orchestra, TIMEOUT, now_ms, time_ms, wait_until};
use chrono::Timelike;
use serde_json::{Value, json};
use std::collections::HashSet;
use std::time::Duration;

fn parse_time(text: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(text)
        .unwrap_or_else(|e| panic!("{text:?} is not RFC 3339: {e}"))
        .timestamp_millis()
}

/// Why a recurring job enqueued a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// For the occurrence at `at`.
    OnTime,
    /// Once for missed occurrences, at `at`.
    CatchUp,
    /// By `POST .../trigger`.
    Triggered,
}

/// A job a recurring job enqueued.
#[derive(Debug, Clone)]
struct Fired {
    id: String,
    kind: Kind,
    /// The time its history reason names.
    at: i64,
    created_at: i64,
}

/// Reads `recurring ID at TIME[, what]` back.
fn parse_reason(recurring: &str, reason: &str) -> (Kind, i64) {
    let rest = reason
        .strip_prefix(&format!("recurring {recurring} at "))
        .unwrap_or_else(|| panic!("not a reason of recurring job {recurring}: {reason:?}"));
    let (time, what) = rest.split_once(", ").unwrap_or((rest, ""));
    let kind = if what.contains("missed") {
        Kind::CatchUp
    } else if what.contains("triggered") {
        Kind::Triggered
    } else {
        assert!(what.is_empty(), "unexpected reason {reason:?}");
        Kind::OnTime
    };
    (kind, parse_time(time))
}

/// The jobs recurring job `recurring` enqueued, oldest first.
fn jobs_of(host: &Orchestra, recurring: &str) -> Vec<Fired> {
    let (jobs, _) = host.list("plugin=echo&limit=1000");
    let mut fired: Vec<Fired> = jobs
        .iter()
        .filter(|job| job["args"]["from"] == recurring)
        .map(|job| {
            let id = job["id"].as_str().expect("a job id").to_owned();
            let detail = host.job(&id);
            let reason = detail["history"][0]["reason"]
                .as_str()
                .unwrap_or_else(|| panic!("a job without history: {detail}"));
            let (kind, at) = parse_reason(recurring, reason);
            Fired {
                id,
                kind,
                at,
                created_at: time_ms(&detail, "created_at"),
            }
        })
        .collect();
    fired.sort_by_key(|f| (f.created_at, f.at));
    fired
}

/// Waits until recurring job `recurring` has enqueued jobs that satisfy `enough`.
fn wait_for_jobs(
    host: &Orchestra,
    recurring: &str,
    what: &str,
    enough: impl Fn(&[Fired]) -> bool,
) -> Vec<Fired> {
    wait_until(what, TIMEOUT, || {
        let fired = jobs_of(host, recurring);
        if enough(&fired) {
            Ok(fired)
        } else {
            Err(format!("{fired:?}"))
        }
    })
}

/// `PUT /api/recurring/{id}` of an `echo` schedule with `extra` fields; asserts
/// `status` and returns the answer.
fn put(host: &Orchestra, id: &str, cron: &str, extra: Value, status: u16) -> Value {
    let mut body = json!({"cron": cron, "plugin": "echo", "args": {"from": id}});
    if let (Some(body), Value::Object(extra)) = (body.as_object_mut(), extra) {
        body.extend(extra);
    }
    let (got, answer) = host.put(&format!("/api/recurring/{id}"), &body);
    assert_eq!(got, status, "PUT {id} {body} answered {got}: {answer}");
    answer
}

/// `GET /api/recurring/{id}`, asserting 200.
fn recurring(host: &Orchestra, id: &str) -> Value {
    let (status, answer) = host.get(&format!("/api/recurring/{id}"));
    assert_eq!(
        status, 200,
        "GET recurring {id} answered {status}: {answer}"
    );
    answer
}

/// Asserts that no two jobs are for the same occurrence.
fn assert_distinct_occurrences(fired: &[Fired]) {
    let mut seen = HashSet::new();
    for job in fired.iter().filter(|f| f.kind == Kind::OnTime) {
        assert!(
            seen.insert(job.at),
            "two jobs for one occurrence: {fired:#?}"
        );
    }
}

#[test]
fn a_seconds_schedule_fires_on_time() {
    let host = Orchestra::start(Options::new().plugin("echo"));
    let started = now_ms();
    put(&host, "every-2s", "*/2 * * * * *", json!({}), 201);
    let fired = wait_for_jobs(&host, "every-2s", "two jobs of every-2s", |f| f.len() >= 2);
    let took = now_ms() - started;
    assert!(took <= 6_000, "two jobs of a 2 s schedule took {took} ms");
    assert_distinct_occurrences(&fired);
    for job in &fired {
        assert_eq!(job.kind, Kind::OnTime, "{job:?}");
        assert_eq!(
            job.at % 2_000,
            0,
            "an occurrence on an even second: {job:?}"
        );
        let lag = job.created_at - job.at;
        assert!(
            (0..1_000).contains(&lag),
            "enqueued {lag} ms after its occurrence: {job:?}"
        );
    }
    let shown = recurring(&host, "every-2s");
    let last_id = shown["last_job_id"].as_str().expect("a last job");
    let fired = jobs_of(&host, "every-2s");
    let last = fired
        .iter()
        .find(|f| f.id == last_id)
        .expect("the last job is listed");
    let last_run_at = parse_time(shown["last_run_at"].as_str().expect("a last run"));
    let next_run_at = parse_time(shown["next_run_at"].as_str().expect("a next run"));
    assert_eq!(last_run_at, last.at, "{shown}");
    assert_eq!(next_run_at, last.at + 2_000, "{shown}");
    assert!(shown["last_job_state"].is_string(), "{shown}");
}

/// Runs `* * * * * *` with `misfire`, kills the host, keeps it down for 5 s, and
/// restarts it; returns its jobs and when the host went down and came back.
fn across_a_downtime(misfire: &str) -> (Vec<Fired>, i64, i64) {
    let id = format!("each-second-{misfire}");
    let mut host = Orchestra::start(Options::new().plugin("echo"));
    put(
        &host,
        &id,
        "*/1 * * * * *",
        json!({"misfire": misfire}),
        201,
    );
    wait_for_jobs(&host, &id, "two jobs before the crash", |f| f.len() >= 2);
    host.kill();
    let down_at = now_ms();
    std::thread::sleep(Duration::from_secs(5)); // the downtime itself
    let up_at = now_ms();
    host.restart();
    let on_time_after = |f: &[Fired]| {
        f.iter()
            .filter(|job| job.kind == Kind::OnTime && job.at > up_at)
            .count()
    };
    let fired = wait_for_jobs(&host, &id, "two on-time jobs after the restart", |f| {
        on_time_after(f) >= 2
    });
    (fired, down_at, up_at)
}

/// What both misfire policies promise around a downtime: every occurrence at most
/// once, and no occurrence of the downtime run late as if on time.
fn assert_no_duplicate_and_no_late_occurrence(fired: &[Fired], down_at: i64, up_at: i64) {
    assert_distinct_occurrences(fired);
    for job in fired.iter().filter(|f| f.kind == Kind::OnTime) {
        assert!(
            job.at <= down_at || job.at > up_at,
            "an occurrence of the downtime ran late: {job:?} (down {down_at}..{up_at})"
        );
    }
}

#[test]
fn run_once_gives_one_job_for_a_downtime_and_repeats_nothing() {
    let (fired, down_at, up_at) = across_a_downtime("run_once");
    assert_no_duplicate_and_no_late_occurrence(&fired, down_at, up_at);
    // A pass more than a second late on a loaded machine misses a later occurrence too,
    // and rightly catches it up: only those before the first on-time job are the downtime's.
    let first_on_time = fired
        .iter()
        .filter(|f| f.kind == Kind::OnTime && f.at > up_at)
        .map(|f| f.at)
        .min()
        .expect("on-time jobs after the restart");
    let catch_ups: Vec<&Fired> = fired
        .iter()
        .filter(|f| f.kind == Kind::CatchUp && f.at < first_on_time)
        .collect();
    assert_eq!(catch_ups.len(), 1, "one job for the downtime: {fired:#?}");
    assert!(catch_ups[0].created_at >= up_at, "{:?}", catch_ups[0]);
}

#[test]
fn skip_gives_no_job_for_a_downtime_and_repeats_nothing() {
    let (fired, down_at, up_at) = across_a_downtime("skip");
    assert_no_duplicate_and_no_late_occurrence(&fired, down_at, up_at);
    assert!(
        fired.iter().all(|f| f.kind == Kind::OnTime),
        "no job for the downtime: {fired:#?}"
    );
}

#[test]
fn trigger_runs_a_job_now_even_when_paused() {
    let host = Orchestra::start(Options::new().plugin("echo"));
    let created = put(&host, "yearly", "0 0 1 1 *", json!({}), 201);
    assert!(created["last_job_id"].is_null(), "{created}");
    let before = now_ms();
    let (status, answer) = host.post_empty("/api/recurring/yearly/trigger");
    assert_eq!(status, 201, "{answer}");
    let id = answer["id"].as_str().expect("a job id");
    let job = host.wait_for_state(id, &["succeeded"], TIMEOUT);
    let delay = time_ms(&job, "created_at") - before;
    assert!(
        (0..1_000).contains(&delay),
        "enqueued {delay} ms after the trigger"
    );
    let fired = jobs_of(&host, "yearly");
    assert_eq!(fired.len(), 1, "{fired:?}");
    assert_eq!(fired[0].kind, Kind::Triggered);
    let shown = recurring(&host, "yearly");
    assert_eq!(shown["last_job_id"], id, "{shown}");
    assert_eq!(shown["last_job_state"], "succeeded", "{shown}");
    assert_eq!(
        shown["next_run_at"], created["next_run_at"],
        "the schedule stays"
    );

    let (status, paused) = host.post_empty("/api/recurring/yearly/pause");
    assert_eq!((status, &paused["paused"]), (200, &json!(true)), "{paused}");
    let (status, answer) = host.post_empty("/api/recurring/yearly/trigger");
    assert_eq!(
        status, 201,
        "a paused recurring job can be triggered: {answer}"
    );
    let id = answer["id"].as_str().expect("a job id");
    host.wait_for_state(id, &["succeeded"], TIMEOUT);
    for (path, status) in [
        ("/api/recurring/nope/trigger", 404),
        ("/api/recurring/bad$id/trigger", 400),
    ] {
        let (got, answer) = host.post_empty(path);
        assert_eq!(got, status, "POST {path}: {answer}");
        assert!(answer["error"].is_string(), "{answer}");
    }
}

#[test]
fn pause_stops_firing_and_resume_restarts_without_a_burst() {
    let host = Orchestra::start(Options::new().plugin("echo"));
    put(&host, "pausable", "*/1 * * * * *", json!({}), 201);
    wait_for_jobs(&host, "pausable", "a first job", |f| !f.is_empty());
    let (status, paused) = host.post_empty("/api/recurring/pausable/pause");
    assert_eq!(status, 200, "{paused}");
    assert_eq!(
        (&paused["paused"], &paused["next_run_at"]),
        (&json!(true), &Value::Null)
    );
    let before_pause = jobs_of(&host, "pausable").len();
    std::thread::sleep(Duration::from_secs(3)); // three occurrences that must not fire
    assert_eq!(
        jobs_of(&host, "pausable").len(),
        before_pause,
        "fired while paused"
    );
    assert_eq!(recurring(&host, "pausable")["paused"], true);

    let resumed_at = now_ms();
    let (status, resumed) = host.post_empty("/api/recurring/pausable/resume");
    assert_eq!(status, 200, "{resumed}");
    assert_eq!(resumed["paused"], false);
    let next = parse_time(resumed["next_run_at"].as_str().expect("a next run"));
    assert!(
        next > resumed_at,
        "resumed at {resumed_at}, next run {next}"
    );
    let fired = wait_for_jobs(&host, "pausable", "a job after resuming", |f| {
        f.len() > before_pause + 1
    });
    for job in &fired[before_pause..] {
        assert_eq!(
            job.kind,
            Kind::OnTime,
            "no catch-up for the paused time: {job:?}"
        );
        assert!(
            job.at > resumed_at,
            "an occurrence of the paused time ran: {job:?}"
        );
    }
    assert_distinct_occurrences(&fired);
}

#[test]
fn recurring_jobs_are_created_shown_updated_listed_and_deleted() {
    let host = Orchestra::start(Options::new().plugin("echo"));
    let extra = json!({"timezone": "Europe/Berlin", "priority": 5, "max_attempts": 2,
                       "misfire": "skip"});
    let created = put(&host, "nightly", "0 3 * * *", extra, 201);
    let expected = json!({
        "id": "nightly", "cron": "0 3 * * *", "timezone": "Europe/Berlin", "plugin": "echo",
        "args": {"from": "nightly"}, "queue": "default", "priority": 5, "max_attempts": 2,
        "misfire": "skip", "paused": false, "last_run_at": null, "last_job_id": null,
        "last_job_state": null,
    });
    for (field, value) in expected.as_object().expect("an object") {
        assert_eq!(&created[field], value, "{field} in {created}");
    }
    let next = chrono::DateTime::parse_from_rfc3339(created["next_run_at"].as_str().unwrap())
        .expect("next_run_at is RFC 3339")
        .to_utc();
    assert!(
        matches!((next.hour(), next.minute()), (1 | 2, 0)),
        "03:00 in Berlin is 01:00 or 02:00 UTC: {next}"
    );

    let updated = put(
        &host,
        "nightly",
        "30 4 * * *",
        json!({"timezone": "UTC"}),
        200,
    );
    assert_eq!(updated["cron"], "30 4 * * *");
    assert_eq!(
        updated["misfire"], "run_once",
        "a PUT replaces the whole definition"
    );
    let next = parse_time(updated["next_run_at"].as_str().expect("a next run"));
    assert_eq!(next % 86_400_000, (4 * 3600 + 30 * 60) * 1000, "{updated}");

    let (status, list) = host.get("/api/recurring");
    assert_eq!(status, 200, "{list}");
    assert_eq!(client_defined(&list), [updated]);
    let (status, _) = host.delete("/api/recurring/nightly");
    assert_eq!(status, 204);
    assert_eq!(host.get("/api/recurring/nightly").0, 404);
    assert_eq!(host.delete("/api/recurring/nightly").0, 404);
}

/// `PUT path` with raw bytes as JSON.
fn put_raw(host: &Orchestra, path: &str, body: &str) -> u16 {
    crate::common::new_agent(host.token(), Duration::from_secs(30))
        .put(host.url(path))
        .header("content-type", "application/json")
        .send(body)
        .unwrap_or_else(|e| panic!("PUT {path} failed: {e}"))
        .status()
        .as_u16()
}

#[test]
fn bad_definitions_are_refused_naming_the_wrong_part() {
    let host = Orchestra::start(Options::new().plugin("echo"));
    let cases = [
        (json!({"cron": "61 * * * *"}), "minute"),
        (json!({"cron": "* * *"}), "5 or 6 fields"),
        (json!({"cron": "0 0 30 2 *"}), "never fires"),
        (json!({"timezone": "Mars/Olympus"}), "Mars/Olympus"),
        (json!({"plugin": "nope"}), "unknown plugin `nope`"),
        (json!({"priority": 500}), "priority"),
        (json!({"max_attempts": 0}), "max_attempts"),
        (json!({"args": [1]}), "args"),
    ];
    for (change, named) in cases {
        let mut body = json!({"cron": "@daily", "plugin": "echo"});
        if let (Some(body), Value::Object(change)) = (body.as_object_mut(), change) {
            body.extend(change);
        }
        let (status, answer) = host.put("/api/recurring/bad", &body);
        assert_eq!(status, 422, "{body} answered {status}: {answer}");
        let error = answer["error"].as_str().expect("an error message");
        assert!(
            error.contains(named),
            "{body}: {error:?} does not name {named:?}"
        );
    }
    let daily = json!({"cron": "@daily", "plugin": "echo"});
    let long = "x".repeat(129);
    for id in ["bad$id", long.as_str()] {
        let (status, answer) = host.put(&format!("/api/recurring/{id}"), &daily);
        assert_eq!(status, 400, "id {id}: {answer}");
    }
    let (status, answer) = host.put(
        "/api/recurring/bad",
        &json!({"cron": "@daily", "plugin": "echo", "misfire": "sometimes"}),
    );
    assert!((400..500).contains(&status), "{status}: {answer}");
    assert_eq!(put_raw(&host, "/api/recurring/bad", "{oops"), 400);
    assert_eq!(host.get("/api/recurring/absent").0, 404);
    let (_, list) = host.get("/api/recurring");
    assert!(
        client_defined(&list).is_empty(),
        "nothing was stored: {list}"
    );
}

/// The listed recurring jobs but the host's built-in cleanup.
fn client_defined(list: &Value) -> Vec<Value> {
    let all = list["recurring"]
        .as_array()
        .expect("a list of recurring jobs");
    all.iter()
        .filter(|r| r["id"] != "orchestra-cleanup")
        .cloned()
        .collect()
}

#[test]
fn the_config_file_declares_schedules_that_fire() {
    let toml = r#"
[[recurring]]
id = "from-config"
cron = "*/1 * * * * *"
plugin = "echo"
args = { from = "from-config" }
misfire = "skip"
"#;
    let host = Orchestra::start(Options::new().plugin("echo").config(toml));
    let shown = recurring(&host, "from-config");
    assert_eq!(shown["cron"], "*/1 * * * * *");
    assert_eq!(shown["misfire"], "skip");
    let fired = wait_for_jobs(&host, "from-config", "a job of the config file", |f| {
        !f.is_empty()
    });
    assert_eq!(fired[0].kind, Kind::OnTime);
}

#[test]
fn a_wrong_config_entry_stops_the_host_naming_it() {
    for (id, cron, plugin, named) in [
        ("broken", "61 * * * *", "echo", "minute"),
        ("orphan", "@daily", "nope", "unknown plugin `nope`"),
    ] {
        let toml = format!("[[recurring]]\nid = {id:?}\ncron = {cron:?}\nplugin = {plugin:?}\n");
        let Err(log) = Orchestra::try_start(Options::new().plugin("echo").config(&toml)) else {
            panic!("the host started with {toml:?}");
        };
        assert!(
            log.contains(&format!("recurring job `{id}`")) && log.contains(named),
            "the log does not name {id} and {named:?}:\n{log}"
        );
    }
}
