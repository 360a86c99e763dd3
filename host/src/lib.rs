//! Orchestra: a persistent job host that runs every handler as a sandboxed WASI component.
//!
//! # Layout
//! Dependencies point down only.
//! - [`host`]: wiring; starts and stops everything below.
//! - [`web`]: the dashboard: HTML pages over the same access control.
//! - [`api`]: the HTTP API (axum).
//! - [`engine`]: the [`engine::Scheduler`]: claim → run → complete or retry; leases,
//!   promotion of due jobs, firing of recurring jobs.
//! - [`plugins`]: the plugin folder, its manifests and the [`plugins::Registry`].
//! - [`runtime`]: wasmtime; compiles plugins and runs one attempt under limits.
//! - [`store`]: the [`store::JobStore`] trait and its SQLite implementation.
//! - [`model`]: the domain: plain data and the rules it obeys.
//! - [`cron`], [`workflow`], [`events`], [`config`]: schedules, workflow definitions, the
//!   event bus and settings.

pub mod api;
pub mod config;
pub mod cron;
pub mod engine;
pub mod events;
pub mod host;
pub mod metrics;
pub mod model;
pub mod plugins;
pub mod runtime;
pub mod store;
pub mod web;
pub mod workflow;

pub use config::Config;
pub use host::Host;

/// Runs a host until `shutdown` completes, then stops it in order.
///
/// # Errors
/// The host could not start.
pub async fn run(
    config: Config,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<(), host::Error> {
    let host = Host::start(&config).await?;
    shutdown.await;
    host.stop().await;
    Ok(())
}
