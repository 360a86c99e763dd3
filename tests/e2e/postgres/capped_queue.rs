//! A queue's concurrency cap holds across hosts: however many hosts and workers claim
//! from it at once, no more of its jobs run together than the cap.

use super::{Database, host_options};
use crate::common::{Orchestra, TIMEOUT, time_ms, wait_until};
use serde_json::json;

/// The cap.
const CAP: usize = 2;
/// Jobs submitted.
const JOBS: usize = 24;
/// How long each sleeps.
const SLEEP_MS: i64 = 500;
/// How much two runs' recorded times may overlap without both holding a slot at once: a
/// claim's start time is taken just before the run it follows commits its end.
const SLACK_MS: i64 = 100;

#[test]
fn a_queue_capped_through_one_host_runs_no_more_than_its_cap_on_all_hosts() {
    let database = Database::create("capped_queue");
    // One worker each: the cap is reached only by two hosts running at once, and three
    // would run three if it did not hold across them.
    let options = |id| host_options(&database, id, &["sleep"]).workers(1);
    let hosts = [
        Orchestra::start(options("host-a")),
        Orchestra::start(options("host-b")),
        Orchestra::start(options("host-c")),
    ];
    let (status, capped) = hosts[0].put(
        "/api/queues/default/concurrency",
        &json!({"concurrency": CAP}),
    );
    assert_eq!(status, 200, "{capped}");
    let ids: Vec<String> = (0..JOBS)
        .map(|n| hosts[n % hosts.len()].submit("sleep", json!({"ms": SLEEP_MS})))
        .collect();
    // Watched as they run, through every host in turn.
    let mut most = 0;
    let mut polls = 0usize;
    wait_until("every job to finish", TIMEOUT, || {
        polls += 1;
        let counts = hosts[polls % hosts.len()].counts();
        let running = counts.get("processing").copied().unwrap_or(0);
        most = most.max(running);
        assert!(
            running <= CAP as u64,
            "{running} jobs of a queue capped at {CAP} run at once: {counts:?}"
        );
        if counts.get("succeeded") == Some(&(JOBS as u64)) {
            Ok(())
        } else {
            Err(format!("{counts:?}"))
        }
    });
    // And afterwards from their recorded times: at no moment more than CAP ran.
    let mut edges = Vec::new();
    let mut ran_on = std::collections::BTreeSet::new();
    for id in &ids {
        let job = hosts[0].job(id);
        assert_eq!(job["attempt"], 1, "{job:#}");
        let started = time_ms(&job, "started_at");
        let finished = time_ms(&job, "finished_at");
        edges.push((started + SLACK_MS, 1));
        edges.push((finished, -1));
        let owner = super::started_by(&job).pop().expect("a run");
        ran_on.insert(owner.split('/').next().unwrap_or_default().to_owned());
    }
    edges.sort();
    let mut running = 0;
    for (at, step) in edges {
        running += step;
        assert!(
            running <= CAP as i32,
            "{running} jobs ran at once at {at} ms, over the cap of {CAP}"
        );
    }
    eprintln!("at most {most} running seen in {polls} polls; ran on {ran_on:?}");
    assert!(
        ran_on.len() >= 2,
        "the hosts shared the queue, but it ran only on {ran_on:?}"
    );
}
