//! Three hosts on one database run many jobs, each once, though one of them is killed
//! part-way: only the jobs it held run twice (their lease expired), and every job succeeds.

use super::{Database, host_options, lease_expired, started_by};
use crate::common::{Orchestra, TERMINAL, times_entered, wait_until};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

/// Seconds a claim holds without renewal: short, so the killed host's jobs come back soon,
/// but long enough that a living host on a loaded machine renews its leases in time.
const LEASE: u64 = 10;
/// Jobs submitted, unless `E2E_PG_JOBS` says how many.
const JOBS: usize = 50_000;
/// Jobs per `POST /api/batches` (at most 10,000, and the body at most 1 MiB).
const CHUNK: usize = 5_000;
/// Every how many listed jobs one is read whole (its history checked).
const SAMPLE_EVERY: usize = 250;
/// Lines an echo run logs.
const ECHO_LINES: u64 = 2;
/// How long all the jobs may take, from the first submission.
const DEADLINE: Duration = Duration::from_secs(420);

/// How many jobs to submit: `E2E_PG_JOBS`, or [`JOBS`].
fn jobs() -> usize {
    std::env::var("E2E_PG_JOBS").map_or(JOBS, |n| n.parse().expect("E2E_PG_JOBS is a number"))
}

/// Submits `jobs` echo jobs, chunk by chunk round the hosts, all at once; their ids.
fn submit_all(hosts: &[&Orchestra], jobs: usize) -> Vec<String> {
    let chunks: Vec<Vec<usize>> = (0..jobs)
        .collect::<Vec<_>>()
        .chunks(CHUNK)
        .map(<[usize]>::to_vec)
        .collect();
    std::thread::scope(|scope| {
        let submitters: Vec<_> = hosts
            .iter()
            .enumerate()
            .map(|(h, host)| {
                let mine: Vec<&Vec<usize>> = chunks.iter().skip(h).step_by(hosts.len()).collect();
                scope.spawn(move || {
                    let mut ids = Vec::new();
                    for chunk in mine {
                        let jobs: Vec<Value> = chunk
                            .iter()
                            .map(|n| json!({"plugin": "echo", "args": {"n": n}}))
                            .collect();
                        let (status, batch) = host.post("/api/batches", &json!({"jobs": jobs}));
                        assert_eq!(status, 201, "a batch of {} jobs: {batch}", chunk.len());
                        let stored = batch["jobs"].as_array().expect("the batch's job ids");
                        assert_eq!(stored.len(), chunk.len(), "{batch}");
                        ids.extend(
                            stored
                                .iter()
                                .map(|id| id.as_str().expect("a job id").to_owned()),
                        );
                    }
                    ids
                })
            })
            .collect();
        submitters
            .into_iter()
            .flat_map(|s| s.join().expect("a submitter"))
            .collect()
    })
}

/// Every job `host` lists in `state`, page by page: id → the listed job.
fn list_all(host: &Orchestra, state: &str) -> BTreeMap<String, Value> {
    let mut jobs = BTreeMap::new();
    let mut cursor = String::new();
    loop {
        let (page, next) = host.list(&format!("state={state}&limit=1000{cursor}"));
        for job in page {
            let id = job["id"]
                .as_str()
                .expect("a listed job has an id")
                .to_owned();
            assert!(jobs.insert(id, job).is_none(), "a job listed twice");
        }
        match next {
            Some(next) => cursor = format!("&cursor={next}"),
            None => return jobs,
        }
    }
}

/// How many times the host logs `logs` say `what`.
fn told(logs: &[String], what: &str) -> usize {
    logs.iter().map(|log| log.matches(what).count()).sum()
}

/// `job`, and every line of the host logs `logs` that names it.
fn about(logs: &[String], job: &Value) -> String {
    let id = job["id"].as_str().unwrap_or_default();
    let lines: Vec<&str> = logs
        .iter()
        .flat_map(|log| log.lines())
        .filter(|line| line.contains(id))
        .collect();
    format!(
        "{job:#}\nwhat the hosts logged of it:\n{}",
        lines.join("\n")
    )
}

#[test]
fn three_hosts_run_many_jobs_each_once_though_one_is_killed_part_way() {
    let started = Instant::now();
    let jobs = jobs();
    let database = Database::create("many_jobs");
    let options = |id| host_options(&database, id, &["echo"]).lease_seconds(LEASE);
    let a = Orchestra::start(options("host-a"));
    let b = Orchestra::start(options("host-b"));
    let mut c = Orchestra::start(options("host-c"));
    let ready = started.elapsed();

    let ids = submit_all(&[&a, &b, &c], jobs);
    let submitted = started.elapsed();
    eprintln!("hosts ready at {ready:?}, {jobs} jobs submitted at {submitted:?}");
    assert_eq!(ids.len(), jobs);
    assert_eq!(
        ids.iter().collect::<BTreeSet<_>>().len(),
        jobs,
        "every job has an id of its own"
    );

    // Kill host C once a fifth of the jobs are done and it runs some.
    let before = wait_until("a fifth of the jobs to finish", DEADLINE, || {
        let counts = a.counts();
        let done = counts.get("succeeded").copied().unwrap_or(0);
        if done >= (jobs / 5) as u64 && counts.get("processing").copied().unwrap_or(0) > 0 {
            Ok(counts)
        } else {
            Err(format!("{counts:?}"))
        }
    });
    c.kill();
    let killed = started.elapsed();
    eprintln!("host C killed at {killed:?}: {before:?}");

    let deadline = DEADLINE.saturating_sub(started.elapsed());
    let counts = wait_until("every job to finish", deadline, || {
        let counts = b.counts();
        let unfinished: u64 = counts
            .iter()
            .filter(|(state, _)| !TERMINAL.contains(&state.as_str()))
            .map(|(_, n)| n)
            .sum();
        if unfinished == 0 {
            Ok(counts)
        } else {
            Err(format!("{counts:?}"))
        }
    });
    let finished = started.elapsed();
    eprintln!("every job finished at {finished:?}");
    if counts.get("succeeded").copied() != Some(jobs as u64) {
        let logs = [&a, &b].map(Orchestra::log);
        let failed = list_all(&a, "failed");
        let first = failed.keys().next().map(|id| b.job(id));
        panic!(
            "every job succeeded, none lost, none added, but {counts:?} (the living hosts' logs \
             say \"deadlock detected\" {} times); the first failed job: {}",
            told(&logs, "deadlock detected"),
            first.map_or_else(|| "none".to_owned(), |job| about(&logs, &job))
        );
    }

    let listed = list_all(&a, "succeeded");
    let listed_at = started.elapsed();
    assert_eq!(
        listed.keys().collect::<BTreeSet<_>>(),
        ids.iter().collect::<BTreeSet<_>>(),
        "the succeeded jobs are those submitted"
    );
    for (id, job) in &listed {
        assert_eq!(
            job["result"], job["args"],
            "job {id}'s result is its own run's: {job}"
        );
    }
    // A job that started more than once, and a sample of the others, read whole.
    let rerun: Vec<&String> = listed
        .iter()
        .filter(|(_, job)| job["attempt"] != 1)
        .map(|(id, _)| id)
        .collect();
    let sample = listed.keys().step_by(SAMPLE_EVERY);
    let mut ran_on = BTreeSet::new();
    let mut lost_on_living = Vec::new();
    let mut without_log = Vec::new();
    let mut read_whole = 0;
    for id in sample.chain(rerun.iter().copied()) {
        read_whole += 1;
        let job = b.job(id);
        let runs = started_by(&job);
        assert_eq!(
            job["attempt"],
            runs.len(),
            "each attempt started once: {job:#}"
        );
        assert_eq!(
            times_entered(&job, "succeeded"),
            1,
            "succeeded once: {job:#}"
        );
        let (last, lost) = runs.split_last().expect("the job ran");
        if lost.iter().any(|owner| !owner.starts_with("host-c/")) {
            lost_on_living.push(job.clone());
        } else if !lost.is_empty() {
            assert_eq!(lost.len(), 1, "the killed host lost one run of it: {job:#}");
            assert!(
                lease_expired(&job),
                "a run lost with its host ended with its lease: {job:#}"
            );
        }
        ran_on.insert(last.split('/').next().unwrap_or_default().to_owned());
        // Every echo run logs two lines: the succeeded run's are kept.
        let logged = job["log_counts"].as_array().and_then(|counts| {
            counts
                .iter()
                .find(|c| c["attempt"] == job["attempt"])
                .map(|c| c["count"].clone())
        });
        if logged != Some(json!(ECHO_LINES)) {
            without_log.push(id.clone());
        }
    }
    // Both failures are told at once, with what the hosts logged of the first job of each.
    let logs = [&a, &b].map(Orchestra::log);
    let mut problems = Vec::new();
    if let Some(job) = lost_on_living.first() {
        problems.push(format!(
            "{} jobs lost a run on a host that was not killed, and ran again (the living \
             hosts' logs say \"deadlock detected\" {} times); the first: {}",
            lost_on_living.len(),
            told(&logs, "deadlock detected"),
            about(&logs, job)
        ));
    }
    if let Some(id) = without_log.first() {
        problems.push(format!(
            "{} of the {read_whole} jobs read whole lack their succeeded run's {ECHO_LINES} \
             log lines (the living hosts' logs say \"log lines dropped\" {} times); the \
             first: {}",
            without_log.len(),
            told(&logs, "log lines dropped"),
            about(&logs, &b.job(id))
        ));
    }
    assert!(problems.is_empty(), "{}", problems.join("\n\n"));
    let checked = started.elapsed();
    eprintln!(
        "{jobs} jobs on 3 hosts: ready {ready:?}, submitted {submitted:?}, host C killed at \
         {killed:?} ({before:?}), all succeeded {finished:?}, listed {listed_at:?}, \
         checked {checked:?}; {} jobs ran again after the kill; runs finished on {ran_on:?}",
        rerun.len()
    );
    assert!(
        ran_on.len() >= 2,
        "the hosts shared the jobs, but the sample ran only on {ran_on:?}"
    );
}
