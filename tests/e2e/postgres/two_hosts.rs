//! Two hosts on one PostgreSQL database: the jobs submitted through both run each once,
//! on both, and every host answers for every job.

use super::Database;
use crate::common::{Options, Orchestra, TIMEOUT, times_entered};
use serde_json::json;
use std::path::Path;

#[test]
fn two_hosts_on_one_database_run_each_job_once_and_both_answer_for_it() {
    let database = Database::create("two_hosts");
    let url = database.url();
    let options = || {
        Options::new()
            .plugin("echo")
            .no_auth()
            .workers(2)
            .db(Path::new(&url))
    };
    let a = Orchestra::start(options().host_id("host-a"));
    let b = Orchestra::start(options().host_id("host-b"));
    let hosts = [&a, &b];
    let ids: Vec<String> = (0..60)
        .map(|n| hosts[n % 2].submit("echo", json!({"n": n})))
        .collect();
    let done = b.wait_for_all(&ids, &["succeeded"], TIMEOUT);
    let mut ran_on = std::collections::BTreeSet::new();
    for job in &done {
        assert_eq!(times_entered(job, "processing"), 1, "{job}");
        let history = job["history"].as_array().expect("history");
        let started = history
            .iter()
            .filter_map(|h| h["reason"].as_str())
            .find(|r| r.contains("started by"))
            .expect("a start");
        ran_on.insert(if started.contains("host-a") { "a" } else { "b" });
    }
    assert_eq!(
        a.job(&ids[1])["state"],
        "succeeded",
        "host A answers for B's job"
    );
    assert_eq!(
        ran_on.len(),
        2,
        "both hosts ran jobs of the queue they share: {ran_on:?}"
    );
}
