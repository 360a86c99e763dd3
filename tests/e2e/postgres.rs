//! Two hosts on one PostgreSQL database: the jobs submitted through both run each once,
//! on both, and every host answers for every job.

use crate::common::{Options, Orchestra, TIMEOUT, times_entered};
use serde_json::json;
use std::path::Path;
use std::process::Command;

/// A database of its own on the local PostgreSQL server (as `scripts/postgres.sh` makes
/// sure there is one), dropped with it.
pub(crate) struct Database {
    name: String,
}

impl Database {
    /// A new database for the test `test`.
    pub(crate) fn create(test: &str) -> Database {
        let name = format!("orchestra_e2e_{test}_{}", std::process::id());
        let database = Database { name };
        database.psql(&format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            database.name
        ));
        database.psql(&format!("CREATE DATABASE {}", database.name));
        database
    }

    /// Its URL.
    pub(crate) fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:5432/{}", self.name)
    }

    fn psql(&self, sql: &str) {
        let done = Command::new("psql")
            .args([
                "-h",
                "127.0.0.1",
                "-U",
                "postgres",
                "-d",
                "postgres",
                "-qc",
                sql,
            ])
            .output()
            .expect("psql runs");
        assert!(done.status.success(), "{sql}: {done:?}");
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        self.psql(&format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            self.name
        ));
    }
}

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
