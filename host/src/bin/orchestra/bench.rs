//! `orchestra bench`: throughput and latency of a real host on a fresh temporary database.
//!
//! Five figures, each from its own fresh host:
//! - `end_to_end_jobs_per_s`: N no-op `echo` jobs enqueued through the store API, until
//!   all succeeded;
//! - `http_enqueue_per_s`: `POST /api/jobs` from 16 keep-alive clients;
//! - `pickup_p50_ms` / `pickup_p99_ms`: enqueue → started on an idle host, one at a time;
//! - `instantiate_call_us`: median cost to instantiate and call the component;
//! - `series_30_days_ms`: median answer time of `GET /api/stats/series` over 30 days of
//!   hourly runs of 10 plugins, by plugin and hour (7,200 rollup rows).
//!
//! With `--db postgres://…`, instead, one figure from `--hosts` host processes sharing a
//! fresh PostgreSQL database: `multi_host_jobs_per_s` (see `bench_hosts.rs`).

use orchestra::config::{Config, ServeArgs};
use orchestra::events::Event;
use orchestra::host::{self, Host};
use orchestra::model::limits::Limits;
use orchestra::model::token::{Role, Secret};
use orchestra::model::{JobState, JsonText, Usage, new_job_id, now_ms, rfc3339};
use orchestra::runtime::{RunHost, RunInput, RunOutcome};
use orchestra::store::Durability;
use orchestra::store::sqlite::SqliteStore;
use orchestra::store::{ClaimParams, Completion, JobStore, NewJob, TokenStore};
use serde::Serialize;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// `orchestra bench` flags.
#[derive(Debug, clap::Args)]
pub(crate) struct BenchArgs {
    /// Folder holding `echo.wasm`.
    #[arg(long, default_value = "target/wasm32-wasip2/plugin")]
    pub plugins: PathBuf,
    /// Jobs in the end-to-end run.
    #[arg(long, default_value_t = 20_000)]
    pub jobs: usize,
    /// Requests in the HTTP enqueue run.
    #[arg(long, default_value_t = 20_000)]
    pub requests: usize,
    /// Jobs in the pickup-latency run.
    #[arg(long, default_value_t = 1_000)]
    pub pickups: usize,
    /// Repeat everything this many times and report medians.
    #[arg(long, default_value_t = 1)]
    pub runs: usize,
    /// SQLite durability.
    #[arg(long, value_enum, default_value = "normal")]
    pub sync: Durability,
    /// Print one JSON object instead of a summary.
    #[arg(long)]
    pub json: bool,
    /// Instead of the figures above, time the dashboard's job list with this many jobs
    /// in the database.
    #[arg(long, default_value_t = 0)]
    pub list_jobs: usize,
    /// Pad each job's args to about this many bytes of varied text (0: `{}`).
    #[arg(long, default_value_t = 0)]
    pub args_bytes: usize,
    /// A PostgreSQL server (`postgres://…`): instead of the figures above, measure only
    /// `multi_host_jobs_per_s`, `--jobs` echo jobs run by `--hosts` `orchestra serve`
    /// processes sharing a fresh database made on it for each run (and dropped after).
    /// Without it, the figures above on temporary SQLite files.
    #[arg(long)]
    pub db: Option<String>,
    /// Host processes sharing the database; more than 1 needs `--db postgres://…`.
    #[arg(long, default_value_t = 1)]
    pub hosts: usize,
}

/// The PostgreSQL server `args` name, if any, once the flags are known to go together.
///
/// # Errors
/// `--db` is not a PostgreSQL URL, `--hosts` is 0 or above 1 without `--db`, or
/// `--list-jobs` is given with `--db`.
fn postgres_server(args: &BenchArgs) -> anyhow::Result<Option<&str>> {
    anyhow::ensure!(args.hosts >= 1, "--hosts must be at least 1");
    let Some(db) = args.db.as_deref() else {
        anyhow::ensure!(
            args.hosts == 1,
            "--hosts {} needs --db postgres://…: only a PostgreSQL database is shared by \
             several hosts",
            args.hosts
        );
        return Ok(None);
    };
    anyhow::ensure!(
        orchestra::store::is_postgres(db),
        "--db takes a PostgreSQL URL (postgres://…); without it the bench runs on \
         temporary SQLite files"
    );
    anyhow::ensure!(
        args.list_jobs == 0,
        "--list-jobs runs on SQLite only: leave out --db"
    );
    Ok(Some(db))
}

/// The figures of one run (or the medians of several).
#[derive(Debug, Clone, Serialize)]
pub(crate) struct BenchReport {
    /// Jobs enqueued through the store and run to success, per second.
    pub end_to_end_jobs_per_s: f64,
    /// `POST /api/jobs` per second, 16 keep-alive clients.
    pub http_enqueue_per_s: f64,
    /// Median enqueue → started, idle host.
    pub pickup_p50_ms: f64,
    /// 99th percentile enqueue → started, idle host.
    pub pickup_p99_ms: f64,
    /// Median instantiate + call of the no-op component.
    pub instantiate_call_us: f64,
    /// Median `GET /api/stats/series` over 30 days, by plugin and hour.
    pub series_30_days_ms: f64,
    /// SQLite durability used.
    pub sync: String,
}

/// HTTP clients in the enqueue run.
const HTTP_CLIENTS: usize = 16;
/// Instantiate-and-call samples.
const INSTANTIATIONS: usize = 2_000;

/// Runs the benchmark and prints its figures.
///
/// # Errors
/// A host could not start or a request failed.
pub(crate) async fn run(args: BenchArgs) -> anyhow::Result<()> {
    let server = postgres_server(&args)?;
    let echo = args.plugins.join("echo.wasm");
    anyhow::ensure!(
        echo.exists(),
        "{} not found: build the plugins first (cargo plugins)",
        echo.display()
    );
    if let Some(server) = server {
        let report = crate::bench_hosts::run(&args, server, &echo).await?;
        if args.json {
            println!("{}", serde_json::to_string(&report)?);
        } else {
            println!(
                "orchestra bench on PostgreSQL ({} run(s), {} host process(es))",
                args.runs.max(1),
                report.hosts
            );
            println!(
                "  multi-host:        {:>10.0} jobs/s ({} echo jobs)",
                report.multi_host_jobs_per_s, report.jobs
            );
        }
        return Ok(());
    }
    if args.list_jobs > 0 {
        let report = crate::bench_list::run(&args, &echo).await?;
        println!("{}", serde_json::to_string(&report)?);
        return Ok(());
    }
    let mut reports = Vec::new();
    for _ in 0..args.runs.max(1) {
        reports.push(run_once(&args, &echo).await?);
    }
    let report = median_report(&reports, args.sync);
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        println!(
            "orchestra bench ({} run(s), sync={})",
            reports.len(),
            report.sync
        );
        println!(
            "  end to end:        {:>10.0} jobs/s ({} echo jobs)",
            report.end_to_end_jobs_per_s, args.jobs
        );
        println!(
            "  HTTP enqueue:      {:>10.0} req/s ({HTTP_CLIENTS} clients)",
            report.http_enqueue_per_s
        );
        println!(
            "  pickup p50 / p99:  {:>7.2} / {:.2} ms",
            report.pickup_p50_ms, report.pickup_p99_ms
        );
        println!(
            "  instantiate+call:  {:>10.1} µs",
            report.instantiate_call_us
        );
        println!(
            "  series, 30 days:   {:>10.2} ms (hourly, 10 plugins)",
            report.series_30_days_ms
        );
    }
    Ok(())
}

async fn run_once(args: &BenchArgs, echo: &std::path::Path) -> anyhow::Result<BenchReport> {
    let end_to_end = end_to_end(args, echo).await?;
    let http = http_enqueue(args, echo).await?;
    let (p50, p99) = pickup(args, echo).await?;
    let instantiate = instantiate_call(args, echo).await?;
    let series = series_query(args, echo).await?;
    Ok(BenchReport {
        end_to_end_jobs_per_s: end_to_end,
        http_enqueue_per_s: http,
        pickup_p50_ms: p50,
        pickup_p99_ms: p99,
        instantiate_call_us: instantiate,
        series_30_days_ms: series,
        sync: format!("{:?}", args.sync).to_lowercase(),
    })
}

/// A host on a fresh temporary folder with only `echo` loaded, and an admin token.
pub(crate) struct BenchHost {
    pub(crate) host: Host,
    pub(crate) token: String,
    _dir: tempfile::TempDir,
}

pub(crate) async fn start_host(
    args: &BenchArgs,
    echo: &std::path::Path,
    workers: usize,
) -> anyhow::Result<BenchHost> {
    let dir = tempfile::tempdir()?;
    let plugins = dir.path().join("plugins");
    std::fs::create_dir(&plugins)?;
    std::fs::copy(echo, plugins.join("echo.wasm"))?;
    let db = dir.path().join("bench.db");
    let token = Secret::generate()?;
    let store = SqliteStore::open(&db, args.sync).await?;
    store
        .create_token("bench", Role::Admin, token.hash, now_ms())
        .await?;
    store.close().await;
    drop(store);
    let config = Config::resolve(ServeArgs {
        listen: Some(([127, 0, 0, 1], 0).into()),
        db: Some(db),
        plugins: Some(plugins),
        workers: Some(workers),
        sync: Some(args.sync),
        ..ServeArgs::default()
    })
    .map_err(anyhow::Error::msg)?;
    let host = Host::start(&config)
        .await
        .map_err(|e: host::Error| anyhow::anyhow!(e))?;
    // Modules compile in the background: time the host, not the compiler.
    let loading = Instant::now();
    while host.registry().get("echo").is_none() {
        anyhow::ensure!(
            loading.elapsed() < Duration::from_secs(120),
            "echo did not load"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Ok(BenchHost {
        host,
        token: token.text,
        _dir: dir,
    })
}

/// The args of the `n`th job: `{}`, or `{"pad": …}` with about `bytes` bytes of text
/// that differs from job to job (as real args do, for the search index).
pub(crate) fn padded_args(bytes: usize, n: usize) -> serde_json::Value {
    let mut pad = String::with_capacity(bytes + 16);
    let mut word = n as u64;
    while pad.len() < bytes {
        word = word.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
        pad.push_str(&format!("{:x} ", word >> 40));
    }
    if bytes == 0 {
        serde_json::json!({})
    } else {
        serde_json::json!({ "pad": pad.trim_end() })
    }
}

/// The `n`th echo job of a run, on the `default` queue.
pub(crate) fn echo_job(args: &BenchArgs, n: usize) -> NewJob {
    NewJob::new(
        "echo",
        JsonText::from_value(&padded_args(args.args_bytes, n)),
        "default",
    )
}

async fn end_to_end(args: &BenchArgs, echo: &std::path::Path) -> anyhow::Result<f64> {
    let bench = start_host(
        args,
        echo,
        Config::resolve(ServeArgs::default())
            .map_err(anyhow::Error::msg)?
            .workers,
    )
    .await?;
    let store = bench.host.store().clone();
    let started = Instant::now();
    for chunk in (0..args.jobs).collect::<Vec<_>>().chunks(1000) {
        store
            .enqueue_many(chunk.iter().map(|&n| echo_job(args, n)).collect(), now_ms())
            .await?;
    }
    // Count finishes with the scheduler's counters: no listener on the event bus, which
    // would make every run publish its output.
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let counts = bench.host.scheduler().counts();
        anyhow::ensure!(
            counts.failed + counts.cancelled == 0,
            "benchmark jobs failed: {counts:?}"
        );
        if counts.succeeded as usize >= args.jobs {
            break;
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "benchmark jobs did not finish: {counts:?}"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let rate = args.jobs as f64 / started.elapsed().as_secs_f64();
    bench.host.stop().await;
    Ok(rate)
}

async fn http_enqueue(args: &BenchArgs, echo: &std::path::Path) -> anyhow::Result<f64> {
    // Jobs go to a queue the host does not serve: this measures accepting jobs, not
    // running them.
    let bench = start_host(args, echo, 1).await?;
    let url = format!("http://{}/api/jobs", bench.host.addr());
    let authorization = format!("Bearer {}", bench.token);
    let per_client = args.requests.div_ceil(HTTP_CLIENTS);
    let bytes = args.args_bytes;
    let started = Instant::now();
    let clients: Vec<_> = (0..HTTP_CLIENTS)
        .map(|client| {
            let url = url.clone();
            let authorization = authorization.clone();
            tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
                let agent = ureq::Agent::new_with_defaults();
                for n in 0..per_client {
                    let job_args = padded_args(bytes, client * per_client + n);
                    let response = agent
                        .post(&url)
                        .header("authorization", &authorization)
                        .send_json(serde_json::json!(
                            {"plugin": "echo", "queue": "unserved", "args": job_args}
                        ))?;
                    anyhow::ensure!(
                        response.status() == 201,
                        "unexpected status {}",
                        response.status()
                    );
                }
                Ok(())
            })
        })
        .collect();
    for client in clients {
        client.await??;
    }
    let rate = (per_client * HTTP_CLIENTS) as f64 / started.elapsed().as_secs_f64();
    bench.host.stop().await;
    Ok(rate)
}

async fn pickup(args: &BenchArgs, echo: &std::path::Path) -> anyhow::Result<(f64, f64)> {
    let bench = start_host(args, echo, 4).await?;
    let mut events = bench.host.scheduler().events().subscribe();
    let mut samples = Vec::with_capacity(args.pickups);
    for n in 0..args.pickups {
        let job = echo_job(args, n);
        let id = job.id;
        let sent = Instant::now();
        bench.host.scheduler().submit(job, now_ms()).await?;
        let mut started = None;
        loop {
            let published = tokio::time::timeout(Duration::from_secs(10), events.recv()).await??;
            if published.ids.job != Some(id) {
                continue;
            }
            match published.event {
                Event::JobMoved {
                    to: JobState::Processing,
                    ..
                } => started = Some(sent.elapsed()),
                Event::JobMoved { to, .. } if to.is_terminal() => break,
                _ => {}
            }
        }
        let started =
            started.ok_or_else(|| anyhow::anyhow!("job {id} finished without starting"))?;
        samples.push(started.as_secs_f64() * 1000.0);
    }
    bench.host.stop().await;
    Ok((
        percentile(&mut samples, 0.50),
        percentile(&mut samples, 0.99),
    ))
}

struct NoopHost;

impl RunHost for NoopHost {
    fn progress(&self, _: u8, _: &str) {}
    fn log(&self, _: &str, _: &str) {}
}

async fn instantiate_call(args: &BenchArgs, echo: &std::path::Path) -> anyhow::Result<f64> {
    let bench = start_host(args, echo, 1).await?;
    let plugin = bench
        .host
        .registry()
        .get("echo")
        .ok_or_else(|| anyhow::anyhow!("echo did not load"))?;
    let runtime = bench.host.runtime().clone();
    let input = RunInput {
        id: new_job_id().to_string(),
        plugin: "echo".into(),
        queue: "default".into(),
        attempt: 1,
        max_attempts: 1,
        args: "{}".into(),
    };
    let host: Arc<dyn RunHost> = Arc::new(NoopHost);
    let limits = Limits::default();
    let mut samples = Vec::with_capacity(INSTANTIATIONS);
    for i in 0..INSTANTIATIONS + 200 {
        let started = Instant::now();
        let report = runtime
            .run(&plugin.prepared, &input, &limits, None, host.clone())
            .await;
        let elapsed = started.elapsed();
        anyhow::ensure!(
            matches!(report.outcome, RunOutcome::Succeeded(_)),
            "echo failed: {:?}",
            report.outcome
        );
        if i >= 200 {
            samples.push(elapsed.as_secs_f64() * 1e6);
        }
    }
    bench.host.stop().await;
    Ok(percentile(&mut samples, 0.5))
}

/// Plugins in the series run.
const SERIES_PLUGINS: usize = 10;
/// Series requests timed.
const SERIES_REQUESTS: usize = 50;

async fn series_query(args: &BenchArgs, echo: &std::path::Path) -> anyhow::Result<f64> {
    let bench = start_host(args, echo, 1).await?;
    let store = bench.host.store().clone();
    let hour = 3_600_000;
    let now = now_ms();
    let from = now - 30 * 24 * hour;
    // Runs on a queue the host does not serve, claimed and completed here at past times.
    let params = ClaimParams {
        queues: vec!["history".into()],
        limit: SERIES_PLUGINS as u32,
        owner: "bench".into(),
        lease_until: now + hour,
        parked_agents: Vec::new(),
        waiting_plugins: Vec::new(),
    };
    for at in (from..now).step_by(hour as usize) {
        let jobs = (0..SERIES_PLUGINS).map(|n| {
            let args = JsonText::from_value(&serde_json::json!({}));
            NewJob::new(format!("plugin-{n}"), args, "history")
        });
        store.enqueue_many(jobs.collect(), at).await?;
        for claimed in store.claim(&params, at + 3).await? {
            let done = Completion {
                result: JsonText::from_value(&serde_json::json!({})),
                plugin_digest: "bench".into(),
                usage: Usage {
                    wall_ms: 20,
                    ..Usage::default()
                },
            };
            store
                .complete(claimed.job.id, claimed.lease, done, at + 23)
                .await?;
        }
    }
    let url = format!(
        "http://{}/api/stats/series?bucket=hour&by=plugin&from={}",
        bench.host.addr(),
        rfc3339::format(from)
    );
    let authorization = format!("Bearer {}", bench.token);
    let samples = tokio::task::spawn_blocking(move || -> anyhow::Result<Vec<f64>> {
        let agent = ureq::Agent::new_with_defaults();
        let mut samples = Vec::with_capacity(SERIES_REQUESTS);
        for _ in 0..SERIES_REQUESTS {
            let started = Instant::now();
            let mut response = agent
                .get(&url)
                .header("authorization", &authorization)
                .call()?;
            let answer: serde_json::Value = response.body_mut().read_json()?;
            samples.push(started.elapsed().as_secs_f64() * 1000.0);
            let series = answer["series"].as_array().map_or(0, Vec::len);
            anyhow::ensure!(
                series == SERIES_PLUGINS * 7,
                "expected a series per plugin and metric, got {series}"
            );
        }
        Ok(samples)
    })
    .await??;
    bench.host.stop().await;
    let mut samples = samples;
    Ok(percentile(&mut samples, 0.5))
}

/// The `q` quantile of `samples` (nearest rank).
pub(crate) fn percentile(samples: &mut [f64], q: f64) -> f64 {
    if samples.is_empty() {
        return f64::NAN;
    }
    samples.sort_by(f64::total_cmp);
    let rank = ((samples.len() as f64 * q).ceil() as usize).clamp(1, samples.len());
    samples[rank - 1]
}

fn median_report(reports: &[BenchReport], sync: Durability) -> BenchReport {
    let median = |f: fn(&BenchReport) -> f64| {
        let mut values: Vec<f64> = reports.iter().map(f).collect();
        percentile(&mut values, 0.5)
    };
    BenchReport {
        end_to_end_jobs_per_s: median(|r| r.end_to_end_jobs_per_s),
        http_enqueue_per_s: median(|r| r.http_enqueue_per_s),
        pickup_p50_ms: median(|r| r.pickup_p50_ms),
        pickup_p99_ms: median(|r| r.pickup_p99_ms),
        instantiate_call_us: median(|r| r.instantiate_call_us),
        series_30_days_ms: median(|r| r.series_30_days_ms),
        sync: format!("{sync:?}").to_lowercase(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    /// `orchestra bench`'s flags alone.
    #[derive(Debug, Parser)]
    struct Flags {
        /// The bench flags.
        #[command(flatten)]
        bench: BenchArgs,
    }

    /// The PostgreSQL server `flags` name, or the error text.
    fn server(flags: &[&str]) -> Result<Option<String>, String> {
        let flags = Flags::parse_from(std::iter::once("bench").chain(flags.iter().copied()));
        postgres_server(&flags.bench)
            .map(|server| server.map(str::to_owned))
            .map_err(|e| e.to_string())
    }

    #[test]
    fn more_hosts_than_one_need_a_postgres_url() {
        let url = "postgres://postgres@127.0.0.1:5432/postgres";
        assert_eq!(server(&[]), Ok(None));
        assert_eq!(server(&["--hosts", "1"]), Ok(None));
        assert_eq!(server(&["--db", url]), Ok(Some(url.to_owned())));
        assert_eq!(
            server(&["--db", url, "--hosts", "3"]),
            Ok(Some(url.to_owned()))
        );
        assert!(
            server(&["--hosts", "2"])
                .unwrap_err()
                .contains("--db postgres://")
        );
        assert!(server(&["--db", url, "--hosts", "0"]).is_err());
        assert!(
            server(&["--db", "bench.db"])
                .unwrap_err()
                .contains("PostgreSQL URL")
        );
        assert!(server(&["--db", url, "--list-jobs", "10"]).is_err());
    }

    #[test]
    fn percentiles_use_the_nearest_rank() {
        let mut samples: Vec<f64> = (1..=100).rev().map(f64::from).collect();
        assert_eq!(percentile(&mut samples, 0.5), 50.0);
        assert_eq!(percentile(&mut samples, 0.99), 99.0);
        assert_eq!(percentile(&mut samples, 1.0), 100.0);
        assert!(percentile(&mut [], 0.5).is_nan());
    }
}
