//! `orchestra plugin check FILE.wasm`: the checks the host makes when it loads a module
//! (its settings, memory floor, compile, imports and world), then one dry job under the
//! plugin's limits, with no database, no repository and no agent.

use anyhow::Context;
use orchestra::model::limits::Maxima;
use orchestra::model::retry::RetryPolicy;
use orchestra::plugins::Compiling;
use orchestra::plugins::load::{self, contract_versions, imports, is_plugin_name};
use orchestra::plugins::manifest::Settings;
use orchestra::runtime::{RunHost, RunInput, RunOutcome, Runtime, digest};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// `orchestra plugin check` arguments.
#[derive(Debug, clap::Args)]
pub(crate) struct CheckArgs {
    /// The module, `NAME.wasm`.
    file: PathBuf,
    /// The dry job's arguments, a JSON value.
    #[arg(long, default_value = "{}")]
    args: String,
    /// A manifest over the module's embedded one [default: NAME.toml beside the module,
    /// if there is one].
    #[arg(long)]
    manifest: Option<PathBuf>,
}

/// Prints the dry job's progress and log lines as they come.
struct Printer;

impl RunHost for Printer {
    fn progress(&self, percent: u8, message: &str) {
        println!("  progress {percent}%: {message}");
    }

    fn log(&self, level: &str, message: &str) {
        println!("  log {level}: {message}");
    }
}

/// Runs `orchestra plugin check`.
pub(crate) async fn run(args: CheckArgs) -> anyhow::Result<()> {
    let job_args: serde_json::Value =
        serde_json::from_str(&args.args).context("--args is not JSON")?;
    let file = &args.file;
    let name = file
        .file_stem()
        .and_then(|stem| stem.to_str())
        .filter(|stem| is_plugin_name(stem))
        .with_context(|| {
            format!(
                "{} is not named as a plugin: NAME.wasm, NAME of letters, digits, - and _",
                file.display()
            )
        })?
        .to_owned();
    let bytes = std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
    let toml = args
        .manifest
        .clone()
        .unwrap_or_else(|| file.with_extension("toml"));
    let settings =
        load::settings(file, &bytes, &toml, &Maxima::default()).map_err(anyhow::Error::msg)?;
    let cache = tempfile::tempdir().context("no temporary directory for the compile cache")?;
    let runtime = Runtime::new(cache.path().to_owned(), 1)?;
    let compiling = Compiling {
        digest: digest(&bytes),
        settings: settings.clone(),
    };
    let plugin = tokio::task::block_in_place(|| load::load(&runtime, name, &bytes, compiling))
        .map_err(|e| anyhow::anyhow!("{} does not load: {e}", file.display()))?;
    println!("plugin {} loads (sha256 {})", plugin.name, plugin.digest);
    print_contract(&imports(&bytes));
    print_settings(&settings, &toml);

    let input = RunInput {
        id: "dry-run".to_owned(),
        plugin: plugin.name.clone(),
        queue: settings.queue.clone(),
        attempt: 1,
        max_attempts: settings.max_attempts,
        args: job_args.to_string(),
    };
    println!(
        "dry job, attempt 1 of {}, args {}:",
        input.max_attempts, input.args
    );
    let report = runtime
        .run(
            &plugin.prepared,
            &input,
            &settings.limits,
            None,
            Arc::new(Printer),
        )
        .await;
    let usage = report.usage;
    println!(
        "usage: {} fuel, {} ms, memory peak {} bytes",
        usage.fuel_consumed, usage.wall_ms, usage.memory_peak_bytes
    );
    match report.outcome {
        RunOutcome::Succeeded(result) => {
            println!("succeeded: {result}");
            Ok(())
        }
        RunOutcome::Failed(error) => {
            let retried = if error.kind.is_retryable() {
                "a job would be retried"
            } else {
                "a job would fail at once"
            };
            println!("failed ({}): {}", error.kind.as_str(), error.message);
            anyhow::bail!(
                "the dry job failed with {} ({retried})",
                error.kind.as_str()
            )
        }
    }
}

/// Prints the contract versions the component was built against and its imports.
fn print_contract(imports: &[String]) {
    let versions = contract_versions(imports);
    if versions.is_empty() {
        println!(
            "contract: imports nothing of orchestra:plugin (its `handle` export is the same \
             in 0.1.0 and 0.2.0)"
        );
    } else {
        println!("contract: orchestra:plugin@{}", versions.join(", @"));
    }
    println!("imports: {}", imports.join(", "));
    if imports
        .iter()
        .any(|name| name.starts_with("orchestra:plugin/agent@"))
    {
        println!(
            "agent: a dry job is bound to no agent; agent::info gives none and agent::exec \
             gets agent-unavailable, as a job without an agent does"
        );
    }
}

/// Prints the settings a job of the plugin would run with.
fn print_settings(settings: &Settings, toml: &Path) {
    let limits = &settings.limits;
    let manifest = if toml.exists() {
        format!("the embedded manifest under {}", toml.display())
    } else {
        "the embedded manifest, if any".to_owned()
    };
    println!("settings (from {manifest}, held to the host's default maxima):");
    println!(
        "  fuel {}, timeout_ms {}, memory_mb {}, result_mb {}, log_mb {}, disk_quota_mb {}",
        limits.fuel,
        limits.timeout.as_millis(),
        limits.memory_bytes >> 20,
        limits.result_bytes >> 20,
        limits.log_bytes >> 20,
        limits.disk_quota_bytes >> 20
    );
    let retry = match &settings.retry {
        RetryPolicy::Delays(delays) => format!("retry_delays_seconds {delays:?}"),
        RetryPolicy::Backoff => "retries after a polynomial backoff".to_owned(),
    };
    println!(
        "  max_attempts {}, {retry}, queue {}",
        settings.max_attempts, settings.queue
    );
    for clamp in &settings.clamped {
        println!(
            "  clamped: {} asked {}, gets the maximum {}",
            clamp.field, clamp.asked, clamp.max
        );
    }
}
