//! `orchestra bench --list-jobs N`: how fast the dashboard's job list answers with `N`
//! jobs in the database. The jobs wait on a queue no worker serves; the figures are the
//! median time to the first byte of the answer's body.

use crate::bench::{BenchArgs, percentile, start_host};
use orchestra::model::{JsonText, NewJob, now_ms};
use serde::Serialize;
use std::io::Read;
use std::time::Instant;

/// Jobs stored per write while filling the database.
const CHUNK: usize = 1000;
/// Requests timed per figure.
const REQUESTS: usize = 20;

/// The figures of the list run.
#[derive(Debug, Serialize)]
pub(crate) struct ListReport {
    /// Jobs in the database.
    pub list_jobs: usize,
    /// `GET /jobs`: the newest page.
    pub jobs_page_ttfb_ms: f64,
    /// `GET /jobs?q=`: a search that one job matches, by a value in its args.
    pub search_ttfb_ms: f64,
    /// `GET /jobs?state=enqueued&queue=parked`: a filtered page.
    pub filtered_ttfb_ms: f64,
}

/// Fills a fresh host with `args.list_jobs` jobs and times the list pages.
///
/// # Errors
/// The host could not start, or a request failed.
pub(crate) async fn run(args: &BenchArgs, echo: &std::path::Path) -> anyhow::Result<ListReport> {
    let bench = start_host(args, echo, 1).await?;
    let store = bench.host.store().clone();
    for start in (0..args.list_jobs).step_by(CHUNK) {
        let jobs = (start..(start + CHUNK).min(args.list_jobs)).map(|n| {
            let args = JsonText::from_value(&serde_json::json!({"tag": format!("t-{n}")}));
            NewJob::new("echo", args, "parked")
        });
        store.enqueue_many(jobs.collect(), now_ms()).await?;
    }
    let base = format!("http://{}", bench.host.addr());
    let authorization = format!("Bearer {}", bench.token);
    let wanted = args.list_jobs / 3;
    let figures = tokio::task::spawn_blocking(move || -> anyhow::Result<[f64; 3]> {
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
        Ok([
            time("/jobs")?,
            time(&format!("/jobs?q=%22t-{wanted}%22"))?,
            time("/jobs?state=enqueued&queue=parked")?,
        ])
    })
    .await??;
    bench.host.stop().await;
    Ok(ListReport {
        list_jobs: args.list_jobs,
        jobs_page_ttfb_ms: figures[0],
        search_ttfb_ms: figures[1],
        filtered_ttfb_ms: figures[2],
    })
}
