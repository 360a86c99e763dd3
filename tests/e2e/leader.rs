//! Several hosts on one PostgreSQL database, as their clients see them: events of a job
//! that another host runs, a cancel that reaches it, and recurring jobs that keep firing
//! once per occurrence when the host leading the upkeep dies.

use crate::common::{Options, Orchestra, TIMEOUT, wait_until};
use crate::postgres::Database;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

/// A host on `database` serving `queues`, with echo and sleep, without tokens.
fn host_on(database: &Database, id: &str, queues: &[&str]) -> Orchestra {
    let queues = queues
        .iter()
        .map(|q| format!("\"{q}\""))
        .collect::<Vec<_>>()
        .join(", ");
    Orchestra::start(
        Options::new()
            .plugin("echo")
            .plugin("sleep")
            .no_auth()
            .host_id(id)
            .lease_seconds(2)
            .db(Path::new(&database.url()))
            .config(&format!("queues = [{queues}]\n")),
    )
}

/// Whether `host` says it leads the upkeep (`orchestra_leader` in `/metrics`).
fn leads(host: &Orchestra) -> bool {
    let text = ureq::get(host.url("/metrics"))
        .call()
        .expect("/metrics answers")
        .into_body()
        .read_to_string()
        .expect("metrics text");
    text.lines().any(|line| line == "orchestra_leader 1")
}

#[test]
fn a_client_of_one_host_sees_a_job_another_runs_and_its_cancel_reaches_that_host() {
    let database = Database::create("events");
    let a = host_on(&database, "host-a", &["default"]);
    let b = host_on(&database, "host-b", &["b-only"]);
    let events = a.listen("/api/events", None);
    let job = a.submit_job(json!({"plugin": "echo", "queue": "b-only"}));
    let seen = crate::events::until(&events, &job, "job.succeeded");
    let types: Vec<&str> = seen
        .iter()
        .filter(|e| e["job_id"] == job.as_str())
        .filter_map(|e| e["type"].as_str())
        .collect();
    assert_eq!(types, ["job.created", "job.started", "job.succeeded"]);
    let done = a.job(&job);
    assert!(
        done["history"].to_string().contains("started by host-b"),
        "{done}"
    );

    let sleeper =
        a.submit_job(json!({"plugin": "sleep", "queue": "b-only", "args": {"ms": 60_000}}));
    b.wait_for_state(&sleeper, &["processing"], TIMEOUT);
    let asked = Instant::now();
    let (status, answer) = a.cancel(&sleeper);
    assert_eq!(
        (status, &answer["cancel_requested"]),
        (200, &json!(true)),
        "{answer}"
    );
    let cancelled = b.wait_for_state(&sleeper, &["cancelled"], Duration::from_secs(5));
    let took = asked.elapsed();
    eprintln!("a cancel sent to host A stopped the run on host B in {took:?}");
    assert!(took < Duration::from_secs(2), "{took:?}");
    assert!(
        cancelled["history"]
            .to_string()
            .contains("cancelled while running"),
        "{cancelled}"
    );
}

#[test]
fn when_the_leader_dies_another_host_fires_each_occurrence_once() {
    let database = Database::create("leader");
    let mut hosts = vec![
        host_on(&database, "host-a", &["default"]),
        host_on(&database, "host-b", &["default"]),
    ];
    wait_until("a host to lead", TIMEOUT, || {
        let leaders = hosts.iter().filter(|h| leads(h)).count();
        if leaders == 1 {
            Ok(())
        } else {
            Err(format!("{leaders} leaders"))
        }
    });
    let (status, answer) = hosts[0].put(
        "/api/recurring/every-second",
        &json!({"cron": "* * * * * *", "plugin": "echo"}),
    );
    assert_eq!(status, 201, "{answer}");
    std::thread::sleep(Duration::from_secs(3));
    let leader = hosts.iter().position(leads).expect("a leader");
    hosts[leader].kill();
    let survivor = hosts.remove(1 - leader);
    let killed_at = Instant::now();
    wait_until("the other host to lead", TIMEOUT, || {
        if leads(&survivor) {
            Ok(())
        } else {
            Err("not yet".into())
        }
    });
    let took = killed_at.elapsed();
    eprintln!("the other host took the lead {took:?} after the leader died");
    assert!(
        took < Duration::from_secs(4),
        "within two lease periods: {took:?}"
    );
    let fired_before = occurrences(&survivor).len();
    std::thread::sleep(Duration::from_secs(3));
    let fired = occurrences(&survivor);
    assert!(
        fired.len() >= fired_before + 2,
        "the survivor fires: {fired_before} then {}",
        fired.len()
    );
    let twice: Vec<_> = fired.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "occurrences fired twice: {twice:?}");
}

/// How many jobs each occurrence of `every-second` made (by the time in its history).
fn occurrences(host: &Orchestra) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    let (jobs, _) = host.list("plugin=echo&limit=500");
    for listed in jobs {
        let id = listed["id"].as_str().expect("id");
        let job: Value = host.job(id);
        let first = job["history"][0]["reason"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        if let Some(at) = first.strip_prefix("recurring every-second at ") {
            let at = at.split(',').next().unwrap_or(at).to_owned();
            *counts.entry(at).or_default() += 1;
        }
    }
    counts
}
