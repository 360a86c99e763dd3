//! Several hosts on one PostgreSQL database: each job runs once however the hosts share
//! the queue, a host that dies or stops loses no job and completes none it lost, a batch
//! is stored all or none while a host dies, and a queue paused through one host is paused
//! for all.

mod batch_kill;
mod capped_queue;
mod many_jobs;
mod pause;
mod stopped_host;
mod two_hosts;

use crate::common::{Options, Orchestra, history_has};
use serde_json::Value;
use std::path::Path;
use std::process::Command;

/// A database of its own on the local PostgreSQL server (as `scripts/postgres.sh` makes
/// sure there is one), dropped with it.
pub(crate) struct Database {
    name: String,
}

impl Database {
    /// A new, empty database named after the test (`test`: a few lowercase letters, digits
    /// and underscores) and this process, so tests running at once never share one.
    pub(crate) fn create(test: &str) -> Database {
        let name = format!("orchestra_e2e_{}_{test}", std::process::id());
        assert!(name.len() <= 63, "{name} is too long for a PostgreSQL name");
        let database = Database { name };
        database.psql(&format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            database.name
        ));
        database.psql(&format!("CREATE DATABASE {}", database.name));
        database
    }

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

/// Options for a host `id` on `database`: no tokens, `plugins` installed, failed attempts
/// retried at once (so a rescued job runs again without a backoff).
pub(crate) fn host_options(database: &Database, id: &str, plugins: &[&str]) -> Options {
    let mut options = Options::new()
        .no_auth()
        .host_id(id)
        .db(Path::new(&database.url()));
    for plugin in plugins {
        options = options
            .plugin(plugin)
            .manifest(plugin, "retry_delays_seconds = [0]\n");
    }
    options
}

/// The owners (`host-id/…`) that started each run of `job`, oldest first.
pub(crate) fn started_by(job: &Value) -> Vec<String> {
    job["history"]
        .as_array()
        .unwrap_or_else(|| panic!("job without a history: {job}"))
        .iter()
        .filter(|t| t["state"] == "processing")
        .map(|t| {
            let reason = t["reason"].as_str().unwrap_or_default();
            let (_, owner) = reason
                .split_once(" started by ")
                .unwrap_or_else(|| panic!("a start that names no host: {t} in {job}"));
            owner.to_owned()
        })
        .collect()
}

/// Whether `job`'s history shows an attempt whose lease expired.
pub(crate) fn lease_expired(job: &Value) -> bool {
    history_has(job, "scheduled", "lease_expired")
        || history_has(job, "enqueued", "lease_expired")
        || history_has(job, "failed", "lease_expired")
}

/// Sends `signal` (`STOP`, `CONT`, `KILL`) to `host`'s process.
pub(crate) fn signal(host: &Orchestra, signal: &str) {
    let pid = host.pid().to_string();
    let sent = Command::new("kill")
        .args([&format!("-{signal}"), &pid])
        .status()
        .expect("running kill");
    assert!(sent.success(), "kill -{signal} {pid} failed: {sent}");
}
