//! The `orchestra` command: `serve` runs a host, `enqueue` submits a job over HTTP,
//! `token` manages API tokens, `bench` measures the host, `plugin` checks and starts
//! plugins.

mod bench;
mod bench_hosts;
mod bench_list;
mod plugin;
mod token;

use anyhow::Context;
use bench::BenchArgs;
use clap::{Parser, Subcommand};
use orchestra::config::{Config, ServeArgs};

/// Orchestra: a job host that runs every handler as a sandboxed WASI component.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    /// Log as JSON lines (filter with RUST_LOG).
    #[arg(long, global = true, env = "ORCHESTRA_LOG_JSON")]
    log_json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the host: HTTP API, scheduler and plugin folder.
    Serve(Box<ServeArgs>),
    /// Submit a job to a running host.
    Enqueue(EnqueueArgs),
    /// Make, list and revoke API tokens (while the host is stopped).
    Token(token::TokenArgs),
    /// Measure throughput and latency on a fresh temporary database.
    Bench(BenchArgs),
    /// Check a plugin's module with a dry job, or start a new plugin project.
    #[command(subcommand)]
    Plugin(plugin::PluginCommand),
}

#[derive(Debug, clap::Args)]
struct EnqueueArgs {
    /// The plugin to run.
    plugin: String,
    /// Arguments, a JSON object.
    #[arg(long, default_value = "{}")]
    args: String,
    /// Queue (default: the plugin's).
    #[arg(long)]
    queue: Option<String>,
    /// Priority, -100..=100.
    #[arg(long)]
    priority: Option<i32>,
    /// The host's address.
    #[arg(long, env = "ORCHESTRA_URL", default_value = "http://127.0.0.1:7070")]
    url: String,
    /// An API token (`admin`), sent as `Authorization: Bearer …`.
    #[arg(long, env = "ORCHESTRA_TOKEN", hide_env_values = true)]
    token: Option<String>,
}

fn init_tracing(json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

/// Resolves on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                .expect("installing the SIGTERM handler");
        tokio::select! {
            _ = interrupt => {}
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = interrupt.await;
    tracing::info!("shutting down");
}

fn enqueue(args: EnqueueArgs) -> anyhow::Result<()> {
    let job_args: serde_json::Value =
        serde_json::from_str(&args.args).context("--args is not JSON")?;
    let mut body = serde_json::json!({"plugin": args.plugin, "args": job_args});
    if let Some(queue) = args.queue {
        body["queue"] = queue.into();
    }
    if let Some(priority) = args.priority {
        body["priority"] = priority.into();
    }
    let url = format!("{}/api/jobs", args.url.trim_end_matches('/'));
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let mut request = agent.post(&url);
    if let Some(token) = &args.token {
        request = request.header("authorization", &format!("Bearer {token}"));
    }
    let mut response = request
        .send_json(&body)
        .with_context(|| format!("POST {url}"))?;
    let text = response.body_mut().read_to_string()?;
    if !response.status().is_success() {
        anyhow::bail!("{}: {text}", response.status());
    }
    println!("{text}");
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    init_tracing(cli.log_json);
    match cli.command {
        Command::Serve(args) => {
            let config = Config::resolve(*args).map_err(anyhow::Error::msg)?;
            orchestra::run(config, shutdown_signal()).await?;
        }
        Command::Enqueue(args) => tokio::task::spawn_blocking(move || enqueue(args)).await??,
        Command::Token(args) => token::run(args).await?,
        Command::Bench(args) => bench::run(args).await?,
        Command::Plugin(command) => plugin::run(command).await?,
    }
    Ok(())
}
