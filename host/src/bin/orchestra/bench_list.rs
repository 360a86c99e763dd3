//! `orchestra bench --list-jobs N`: how fast the dashboard's job list answers with `N`
//! jobs in the database. The jobs wait on a queue no worker serves; once the search index
//! has caught up with them, each figure is the median time to the first byte of the
//! answer's body.

use crate::bench::{BenchArgs, percentile, start_host};
use orchestra::model::{JsonText, NewJob, now_ms};
use serde::Serialize;
use std::io::Read;
use std::time::{Duration, Instant};

/// Jobs stored per write while filling the database.
const CHUNK: usize = 1000;
/// Requests timed per figure.
const REQUESTS: usize = 20;
/// Groups the jobs fall into, one in ten each: what a common search term finds.
const GROUPS: usize = 10;

/// The figures of the list run.
#[derive(Debug, Serialize)]
pub(crate) struct ListReport {
    /// Jobs in the database.
    pub list_jobs: usize,
    /// Seconds to store the jobs.
    pub fill_s: f64,
    /// Seconds from the last job stored until the search index held them all.
    pub index_wait_s: f64,
    /// `GET /jobs`: the newest page.
    pub jobs_page_ttfb_ms: f64,
    /// `GET /jobs?state=enqueued&queue=parked`: a filtered page.
    pub filtered_ttfb_ms: f64,
    /// `GET /jobs?q=`: a search that one job matches, by a value in its args.
    pub search_rare_ttfb_ms: f64,
    /// A search that one job in ten matches.
    pub search_common_ttfb_ms: f64,
    /// The common search with a state filter.
    pub search_filtered_ttfb_ms: f64,
    /// A search that every job matches.
    pub search_all_ttfb_ms: f64,
    /// A search for two characters, too short for the index.
    pub search_short_ttfb_ms: f64,
}

/// Fills a fresh host with `args.list_jobs` jobs, waits for the search index, and times
/// the list pages.
///
/// # Errors
/// The host could not start, or a request failed.
pub(crate) async fn run(args: &BenchArgs, echo: &std::path::Path) -> anyhow::Result<ListReport> {
    let bench = start_host(args, echo, 1).await?;
    let store = bench.host.store().clone();
    let started = Instant::now();
    for start in (0..args.list_jobs).step_by(CHUNK) {
        let jobs = (start..(start + CHUNK).min(args.list_jobs)).map(|n| {
            let args =
                serde_json::json!({"tag": format!("t-{n}"), "group": format!("g-{}", n % GROUPS)});
            NewJob::new("echo", JsonText::from_value(&args), "parked")
        });
        store.enqueue_many(jobs.collect(), now_ms()).await?;
    }
    let fill_s = started.elapsed().as_secs_f64();
    let filled = Instant::now();
    while store.search_backlog().await? > 0 {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let index_wait_s = filled.elapsed().as_secs_f64();
    let base = format!("http://{}", bench.host.addr());
    let authorization = format!("Bearer {}", bench.token);
    let rare = format!("/jobs?q=%22t-{}%22", args.list_jobs / 3);
    let paths = [
        "/jobs",
        "/jobs?state=enqueued&queue=parked",
        rare.as_str(),
        "/jobs?q=g-3",
        "/jobs?state=enqueued&q=g-3",
        "/jobs?q=tag",
        "/jobs?q=t-",
    ]
    .map(String::from);
    let figures = tokio::task::spawn_blocking(move || -> anyhow::Result<Vec<f64>> {
        let agent = ureq::Agent::new_with_defaults();
        let time = |path: &str| -> anyhow::Result<f64> {
            let mut samples = Vec::with_capacity(REQUESTS);
            for _ in 0..REQUESTS {
                let started = Instant::now();
                let mut response = agent
                    .get(format!("{base}{path}"))
                    .header("authorization", &authorization)
                    .call()?;
                let mut first = [0u8; 1];
                let mut body = response.body_mut().as_reader();
                body.read_exact(&mut first)?;
                samples.push(started.elapsed().as_secs_f64() * 1000.0);
                std::io::copy(&mut body, &mut std::io::sink())?;
            }
            Ok(percentile(&mut samples, 0.5))
        };
        paths.iter().map(|path| time(path)).collect()
    })
    .await??;
    bench.host.stop().await;
    Ok(ListReport {
        list_jobs: args.list_jobs,
        fill_s,
        index_wait_s,
        jobs_page_ttfb_ms: figures[0],
        filtered_ttfb_ms: figures[1],
        search_rare_ttfb_ms: figures[2],
        search_common_ttfb_ms: figures[3],
        search_filtered_ttfb_ms: figures[4],
        search_all_ttfb_ms: figures[5],
        search_short_ttfb_ms: figures[6],
    })
}
