//! `orchestra bench --db postgres://… --hosts N`: jobs per second of N `orchestra serve`
//! processes sharing one PostgreSQL database.
//!
//! Each run creates a fresh database on the server of the given URL, starts N hosts (this
//! same binary) on it and waits until each answers `/healthz` and has compiled `echo`.
//! It then stores all but N of the `--jobs` echo jobs in one transaction, submits one more
//! through each host's API (which wakes that host at once, as a submission does, instead
//! of at its next idle poll), and times from the moment the stored jobs are committed
//! until the count of succeeded jobs reaches `--jobs`. The hosts are stopped and the
//! database dropped after each run, also when it failed.

use crate::bench::{BenchArgs, echo_job, padded_args, percentile};
use orchestra::model::{JobState, now_ms};
use orchestra::store::postgres::PostgresStore;
use orchestra::store::{JobFilter, JobStore};
use serde::Serialize;
use sqlx::{Connection, PgConnection};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How often the count of succeeded jobs is read.
const POLL: Duration = Duration::from_millis(50);
/// Polls between two counts of failed jobs.
const FAILURE_CHECK_EVERY: u32 = 20;
/// Longest wait for a host to answer and compile `echo`.
const READY_TIMEOUT: Duration = Duration::from_secs(300);
/// Longest wait for the jobs of one run to succeed.
const RUN_TIMEOUT: Duration = Duration::from_secs(600);
/// How long a host may take to exit after SIGTERM before it is killed.
const STOP_GRACE: Duration = Duration::from_secs(5);
/// Bytes of a host's log shown when it fails to start.
const LOG_TAIL: usize = 4_000;

/// The figures of the multi-host run (or the medians of several runs).
#[derive(Debug, Clone, Serialize)]
pub(crate) struct HostsReport {
    /// Host processes sharing the database.
    pub hosts: usize,
    /// Echo jobs per run.
    pub jobs: usize,
    /// Jobs per second, from all stored until all succeeded, across the hosts.
    pub multi_host_jobs_per_s: f64,
}

/// Runs `args.runs` multi-host runs against the server of `url` and reports the medians.
///
/// # Errors
/// The server could not be reached, a host did not start, or the jobs did not all
/// succeed in time.
pub(crate) async fn run(args: &BenchArgs, url: &str, echo: &Path) -> anyhow::Result<HostsReport> {
    anyhow::ensure!(
        args.jobs >= args.hosts,
        "--jobs must be at least --hosts (one job is submitted through each host)"
    );
    let dir = tempfile::Builder::new()
        .prefix("orchestra-bench-")
        .tempdir()?;
    let plugins = dir.path().join("plugins");
    std::fs::create_dir(&plugins)?;
    std::fs::copy(echo, plugins.join("echo.wasm"))?;
    let mut rates = Vec::new();
    for run in 0..args.runs.max(1) {
        let name = database_name();
        let db_url = database_url(url, &name)?;
        let mut server = PgConnection::connect(url).await?;
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut server)
            .await?;
        let measured = run_once(args, &db_url, &plugins, dir.path(), run).await;
        let dropped = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .execute(&mut server)
            .await;
        server.close().await?;
        rates.push(measured?);
        dropped?;
    }
    Ok(HostsReport {
        hosts: args.hosts,
        jobs: args.jobs,
        multi_host_jobs_per_s: percentile(&mut rates, 0.5),
    })
}

/// One run on the fresh database at `db_url`: its hosts are stopped before it returns.
async fn run_once(
    args: &BenchArgs,
    db_url: &str,
    plugins: &Path,
    dir: &Path,
    run: usize,
) -> anyhow::Result<f64> {
    // Opened first, this store migrates the database before any host starts.
    let store = PostgresStore::open(db_url).await?;
    let mut hosts = Hosts::start(args.hosts, db_url, plugins, dir, run)?;
    let measured = measure(args, &store, &mut hosts).await;
    hosts.stop().await;
    store.close().await;
    measured
}

/// Waits for the hosts, stores the jobs and times them until all succeeded.
async fn measure(
    args: &BenchArgs,
    store: &PostgresStore,
    hosts: &mut Hosts,
) -> anyhow::Result<f64> {
    hosts.wait_ready().await?;
    let stored = args.jobs - hosts.addrs.len();
    let jobs = (0..stored).map(|n| echo_job(args, n)).collect();
    store.enqueue_many(jobs, now_ms()).await?;
    let started = Instant::now();
    for (n, addr) in hosts.addrs.iter().enumerate() {
        submit(*addr, padded_args(args.args_bytes, stored + n)).await?;
    }
    let succeeded = JobFilter {
        state: Some(JobState::Succeeded),
        ..JobFilter::default()
    };
    let failed = JobFilter {
        state: Some(JobState::Failed),
        ..JobFilter::default()
    };
    let target = args.jobs as u64;
    let mut polls = 0u32;
    loop {
        let done = store.count(&succeeded, target).await?;
        if done >= target {
            break;
        }
        polls += 1;
        if polls.is_multiple_of(FAILURE_CHECK_EVERY) {
            let failures = store.count(&failed, target).await?;
            anyhow::ensure!(failures == 0, "{failures} benchmark jobs failed");
        }
        anyhow::ensure!(
            started.elapsed() < RUN_TIMEOUT,
            "benchmark jobs did not finish: {done} of {target} succeeded"
        );
        tokio::time::sleep(POLL).await;
    }
    Ok(args.jobs as f64 / started.elapsed().as_secs_f64())
}

/// `POST /api/jobs` of one echo job with `job_args` to the host at `addr`.
async fn submit(addr: SocketAddr, job_args: serde_json::Value) -> anyhow::Result<()> {
    tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
        let response = agent()
            .post(format!("http://{addr}/api/jobs"))
            .send_json(serde_json::json!({"plugin": "echo", "args": job_args}))?;
        anyhow::ensure!(
            response.status() == 201,
            "POST /api/jobs to {addr} answered {}",
            response.status()
        );
        Ok(())
    })
    .await?
}

/// An HTTP client that returns error statuses as answers and gives up after 10 s.
fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .into()
}

/// Where the host at `addr` stands: `Ok(true)` once it answers `/healthz` and lists
/// `echo` as loaded, `Ok(false)` while it does not yet.
///
/// # Errors
/// The host refused `echo`.
async fn is_ready(addr: SocketAddr) -> anyhow::Result<bool> {
    tokio::task::spawn_blocking(move || -> anyhow::Result<bool> {
        let agent = agent();
        let healthy = agent
            .get(format!("http://{addr}/healthz"))
            .call()
            .is_ok_and(|response| response.status() == 200);
        if !healthy {
            return Ok(false);
        }
        let Ok(mut response) = agent.get(format!("http://{addr}/api/plugins")).call() else {
            return Ok(false);
        };
        if response.status() != 200 {
            return Ok(false);
        }
        let list: serde_json::Value = response.body_mut().read_json()?;
        let echo = list["plugins"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|plugin| plugin["name"] == "echo");
        match echo.map(|plugin| (&plugin["status"], &plugin["error"])) {
            Some((status, _)) if status == "loaded" => Ok(true),
            Some((status, error)) if status == "failed" => {
                anyhow::bail!("host {addr} refused echo: {error}")
            }
            _ => Ok(false),
        }
    })
    .await?
}

/// The `orchestra serve` processes of one run; killed when dropped unless stopped first.
struct Hosts {
    /// The running processes, in the order of `addrs`.
    children: Vec<Child>,
    /// Where each host listens.
    addrs: Vec<SocketAddr>,
    /// Each host's stdout and stderr.
    logs: Vec<PathBuf>,
}

impl Hosts {
    /// Starts `count` hosts on `db_url`, each on a free loopback port with a compile
    /// cache of its own under `dir` (kept from run to run) and a log file for run `run`.
    fn start(
        count: usize,
        db_url: &str,
        plugins: &Path,
        dir: &Path,
        run: usize,
    ) -> anyhow::Result<Hosts> {
        let exe = std::env::current_exe()?;
        let mut hosts = Hosts {
            children: Vec::with_capacity(count),
            addrs: Vec::with_capacity(count),
            logs: Vec::with_capacity(count),
        };
        for n in 0..count {
            let addr = free_port()?;
            let log = dir.join(format!("host-{n}-run-{run}.log"));
            let out = std::fs::File::create(&log)?;
            let child = Command::new(&exe)
                .arg("serve")
                .arg("--listen")
                .arg(addr.to_string())
                .arg("--db")
                .arg(db_url)
                .arg("--plugins")
                .arg(plugins)
                .arg("--cache-dir")
                .arg(dir.join(format!("cache-{n}")))
                .arg("--host-id")
                .arg(format!("bench-{n}"))
                .arg("--no-auth")
                .current_dir(dir)
                .stdin(Stdio::null())
                .stdout(out.try_clone()?)
                .stderr(out)
                .spawn()?;
            hosts.children.push(child);
            hosts.addrs.push(addr);
            hosts.logs.push(log);
        }
        Ok(hosts)
    }

    /// Waits until every host answers and has compiled `echo`.
    ///
    /// # Errors
    /// A host exited, refused `echo`, or was not ready within [`READY_TIMEOUT`]; the
    /// error carries the end of its log.
    async fn wait_ready(&mut self) -> anyhow::Result<()> {
        let started = Instant::now();
        for n in 0..self.children.len() {
            loop {
                if let Some(status) = self.children[n].try_wait()? {
                    anyhow::bail!("host {n} exited ({status}):\n{}", self.log_tail(n));
                }
                match is_ready(self.addrs[n]).await {
                    Ok(true) => break,
                    Ok(false) => {}
                    Err(why) => anyhow::bail!("{why}:\n{}", self.log_tail(n)),
                }
                if started.elapsed() > READY_TIMEOUT {
                    anyhow::bail!("host {n} was not ready in time:\n{}", self.log_tail(n));
                }
                tokio::time::sleep(POLL).await;
            }
        }
        Ok(())
    }

    /// The last [`LOG_TAIL`] bytes of host `n`'s log.
    fn log_tail(&self, n: usize) -> String {
        let log = std::fs::read_to_string(&self.logs[n]).unwrap_or_default();
        let mut start = log.len().saturating_sub(LOG_TAIL);
        while !log.is_char_boundary(start) {
            start += 1;
        }
        log[start..].to_owned()
    }

    /// Sends SIGTERM to every host, and kills those still running [`STOP_GRACE`] later.
    async fn stop(&mut self) {
        for child in &self.children {
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
        }
        let deadline = Instant::now() + STOP_GRACE;
        while Instant::now() < deadline
            && self
                .children
                .iter_mut()
                .any(|child| matches!(child.try_wait(), Ok(None)))
        {
            tokio::time::sleep(POLL).await;
        }
        self.kill();
    }

    /// Kills the hosts still running and reaps them all.
    fn kill(&mut self) {
        for mut child in self.children.drain(..) {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Hosts {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A loopback address whose port was free a moment ago.
fn free_port() -> anyhow::Result<SocketAddr> {
    Ok(TcpListener::bind(("127.0.0.1", 0))?.local_addr()?)
}

/// A fresh name for a run's database: `orchestra_bench_` and a UUID's hex digits.
fn database_name() -> String {
    format!("orchestra_bench_{}", uuid::Uuid::now_v7().simple())
}

/// `url` (a PostgreSQL URL, with or without a database) naming database `name` instead:
/// its scheme, user, password, host, port and parameters kept.
///
/// # Errors
/// `url` is not a `postgres://` or `postgresql://` URL.
fn database_url(url: &str, name: &str) -> anyhow::Result<String> {
    let (scheme, rest) = url
        .split_once("://")
        .filter(|(scheme, _)| matches!(*scheme, "postgres" | "postgresql"))
        .ok_or_else(|| anyhow::anyhow!("{url:?} is not a postgres:// URL"))?;
    let (location, query) = match rest.split_once('?') {
        Some((location, query)) => (location, Some(query)),
        None => (rest, None),
    };
    let authority = location.split_once('/').map_or(location, |(a, _)| a);
    Ok(match query {
        Some(query) => format!("{scheme}://{authority}/{name}?{query}"),
        None => format!("{scheme}://{authority}/{name}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_database_url_keeps_the_server_and_names_the_fresh_database() {
        let fresh = "orchestra_bench_0123";
        assert_eq!(
            database_url("postgres://postgres@127.0.0.1:5432/postgres", fresh).unwrap(),
            "postgres://postgres@127.0.0.1:5432/orchestra_bench_0123"
        );
        assert_eq!(
            database_url("postgresql://u:p%2Fw@db.local/app?sslmode=disable", fresh).unwrap(),
            "postgresql://u:p%2Fw@db.local/orchestra_bench_0123?sslmode=disable"
        );
        assert_eq!(
            database_url("postgres://127.0.0.1:5433", fresh).unwrap(),
            "postgres://127.0.0.1:5433/orchestra_bench_0123"
        );
        assert_eq!(
            database_url("postgres://localhost?user=me", fresh).unwrap(),
            "postgres://localhost/orchestra_bench_0123?user=me"
        );
        assert_eq!(
            database_url("postgres:///app?host=/run/postgresql", fresh).unwrap(),
            "postgres:///orchestra_bench_0123?host=/run/postgresql"
        );
        assert!(database_url("mysql://localhost/db", fresh).is_err());
        assert!(database_url("bench.db", fresh).is_err());
    }

    #[test]
    fn database_names_are_fresh_plain_identifiers() {
        let (a, b) = (database_name(), database_name());
        assert_ne!(a, b);
        let suffix = a.strip_prefix("orchestra_bench_").unwrap();
        assert_eq!(suffix.len(), 32);
        assert!(
            suffix
                .chars()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
        );
    }
}
