//! A running host: store, runtime, plugin loader, scheduler and HTTP API, wired together.

use crate::api::{self, AppState};
use crate::config::Config;
use crate::engine::{Scheduler, SchedulerConfig, cleanup_schedule};
use crate::engine::{alerts, recurring};
use crate::events::{Event, EventBus, Ids};
use crate::metrics::Metrics;
use crate::model::now_ms;
use crate::model::token::{Role, Secret};
use crate::plugins::Registry;
use crate::plugins::watch::{Change, Loader};
use crate::runtime::{self, Runtime};
use crate::store::{self, JobStore, Reads};
use crate::web;
use std::io::Write;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::sync::broadcast;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Why a host could not start.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The job store could not be opened.
    #[error("job store: {0}")]
    Store(#[from] store::Error),
    /// The wasm runtime could not be set up.
    #[error(transparent)]
    Runtime(#[from] runtime::Error),
    /// A recurring job of the config file is wrong, or could not be stored.
    #[error(transparent)]
    Recurring(#[from] recurring::DeclareError),
    /// An agent the config file declares is wrong.
    #[error("agent in the config file: {0}")]
    Agent(String),
    /// An alert rule of the config file is wrong, or could not be stored.
    #[error(transparent)]
    Alert(#[from] alerts::DeclareError),
    /// A file or socket could not be used.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The failure.
        source: std::io::Error,
    },
}

fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
    move |source| Error::Io {
        context: context.into(),
        source,
    }
}

/// Spare instance slots beyond the workers, for plugin checks and benchmarks.
const SPARE_INSTANCES: u32 = 8;

/// The threads guests run on, apart from the API's: however hard every guest works,
/// a request never waits behind one for a runtime thread.
#[derive(Debug)]
struct JobThreads(Option<tokio::runtime::Runtime>);

impl JobThreads {
    fn start() -> Result<JobThreads, Error> {
        let threads = tokio::runtime::Builder::new_multi_thread()
            .thread_name("orchestra-jobs")
            .enable_all()
            .build()
            .map_err(io("starting the job threads"))?;
        Ok(JobThreads(Some(threads)))
    }

    fn handle(&self) -> &tokio::runtime::Handle {
        self.0
            .as_ref()
            .expect("job threads run until dropped")
            .handle()
    }
}

impl Drop for JobThreads {
    /// Stops the threads without waiting: dropping a runtime may not block an async context.
    fn drop(&mut self) {
        if let Some(threads) = self.0.take() {
            threads.shutdown_background();
        }
    }
}

/// A started host. [`Host::stop`] shuts it down in order.
#[derive(Debug)]
pub struct Host {
    addr: SocketAddr,
    store: Arc<dyn JobStore>,
    scheduler: Scheduler,
    registry: Arc<Registry>,
    runtime: Arc<Runtime>,
    stop_serving: CancellationToken,
    stop_watching: CancellationToken,
    watcher: JoinHandle<()>,
    servers: Vec<JoinHandle<()>>,
    jobs: JobThreads,
}

impl Host {
    /// Opens the store, reads the plugin folder (its modules compile in the background),
    /// starts the scheduler and the API.
    ///
    /// # Errors
    /// The database, plugin folder or listen address cannot be used, or a recurring job
    /// the config file declares is wrong.
    pub async fn start(config: &Config) -> Result<Host, Error> {
        let store = store::open(&config.db, config.durability).await?;
        let instances = u32::try_from(config.workers)
            .unwrap_or(u32::MAX / 8)
            .min(4096)
            + SPARE_INSTANCES;
        let runtime = Arc::new(Runtime::new(config.cache_dir.clone(), instances)?);
        let registry = Arc::new(Registry::default());
        let loader = Arc::new(
            Loader::new(
                config.plugins.clone(),
                runtime.clone(),
                registry.clone(),
                config.maxima.clone(),
            )
            .map_err(io(format!("plugin folder {}", config.plugins.display())))?,
        );
        let events = EventBus::default();
        tokio::spawn(publish_plugin_changes(loader.changes(), events.clone()));
        // Reads the folder only: every module found is known (its jobs accepted) at once,
        // and compiles in the background while the API serves.
        let first_scan = loader.clone();
        tokio::task::spawn_blocking(move || first_scan.scan())
            .await
            .map_err(|e| io("reading the plugin folder")(std::io::Error::other(e)))?;
        recurring::declare(store.as_ref(), &registry, &config.recurring).await?;
        alerts::declare(store.as_ref(), &config.alerts).await?;
        store.put_recurring(cleanup_schedule(), now_ms()).await?;
        let stop_watching = CancellationToken::new();
        let watcher = tokio::spawn(loader.watch(stop_watching.clone()));
        let jobs = JobThreads::start()?;
        let metrics = Arc::new(Metrics::default());
        let scheduler = jobs
            .handle()
            .spawn(Scheduler::start(
                store.clone(),
                runtime.clone(),
                registry.clone(),
                events,
                metrics.clone(),
                SchedulerConfig {
                    workers: config.workers,
                    queues: config.queues.clone(),
                    owner: format!("{}/{}", config.host_id, uuid::Uuid::now_v7()),
                    lease: config.lease,
                    grace: config.grace,
                    retention: config.retention,
                    agents: config.agents.clone(),
                },
            ))
            .await
            .map_err(|e| io("starting the scheduler")(std::io::Error::other(e)))?;
        for spec in &config.agents.declared {
            let spec = spec
                .clone()
                .checked(&config.repo_roots)
                .map_err(|e| Error::Agent(e.to_string()))?;
            scheduler.register_agent(spec, true).await?;
        }
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .map_err(io(format!("listen on {}", config.listen)))?;
        let addr = listener.local_addr().map_err(io("listen address"))?;
        let tokens = if config.auth {
            first_token(store.as_ref(), addr).await?;
            store.active_tokens().await?
        } else {
            tracing::warn!(%addr, "--no-auth: the API asks for no token; anyone who reaches this loopback address can use it");
            Vec::new()
        };
        let access = api::Access::new(config.auth, addr, &config.allowed_hosts, tokens);
        let state = AppState {
            store: Reads::of(store.clone()),
            scheduler: scheduler.clone(),
            registry: registry.clone(),
            repo_roots: config.repo_roots.clone().into(),
            access: Arc::new(access),
            metrics,
        };
        let stop_serving = CancellationToken::new();
        let mut servers = vec![serve(
            listener,
            api::router(state.clone(), web::routes()),
            &stop_serving,
        )];
        if let Some(metrics_listen) = config.metrics_listen {
            let listener = tokio::net::TcpListener::bind(metrics_listen)
                .await
                .map_err(io(format!("listen on {metrics_listen} for /metrics")))?;
            let metrics_addr = listener.local_addr().map_err(io("metrics address"))?;
            tracing::info!(%metrics_addr, "serving /metrics without a token");
            servers.push(serve(listener, api::metrics_router(state), &stop_serving));
        }
        tracing::info!(%addr, db = %store::shown(&config.db), plugins = %config.plugins.display(), "orchestra listening");
        Ok(Host {
            addr,
            store,
            scheduler,
            registry,
            runtime,
            stop_serving,
            stop_watching,
            watcher,
            servers,
            jobs,
        })
    }

    /// The address the API listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The job store.
    pub fn store(&self) -> &Arc<dyn JobStore> {
        &self.store
    }

    /// The scheduler.
    pub fn scheduler(&self) -> &Scheduler {
        &self.scheduler
    }

    /// The plugin registry.
    pub fn registry(&self) -> &Arc<Registry> {
        &self.registry
    }

    /// The wasm runtime.
    pub fn runtime(&self) -> &Arc<Runtime> {
        &self.runtime
    }

    /// Stops accepting requests and jobs, lets running jobs finish within the grace
    /// period, releases the rest, and closes the store.
    pub async fn stop(self) {
        self.stop_serving.cancel();
        self.stop_watching.cancel();
        self.scheduler.shutdown().await;
        for server in self.servers {
            let _ = server.await;
        }
        let _ = self.watcher.await;
        self.store.close().await;
        drop(self.jobs);
        tracing::info!("orchestra stopped");
    }
}

/// Serves `app` on `listener` until `stop` is cancelled.
/// Publishes the loader's `changes` as `plugin.*` events until the loader is gone.
async fn publish_plugin_changes(mut changes: broadcast::Receiver<Change>, events: EventBus) {
    loop {
        let event = match changes.recv().await {
            Ok(Change::Loaded { name, digest }) => Event::PluginLoaded {
                plugin: name,
                digest,
            },
            Ok(Change::Failed { name, error }) => Event::PluginFailed {
                plugin: name,
                error,
            },
            Ok(Change::Removed { name }) => Event::PluginRemoved { plugin: name },
            Err(broadcast::error::RecvError::Lagged(_)) => continue,
            Err(broadcast::error::RecvError::Closed) => return,
        };
        events.publish(Ids::default(), event);
    }
}

fn serve(
    listener: tokio::net::TcpListener,
    app: axum::Router,
    stop: &CancellationToken,
) -> JoinHandle<()> {
    let until = stop.clone();
    tokio::spawn(async move {
        let served = axum::serve(listener, app)
            .with_graceful_shutdown(async move { until.cancelled().await })
            .await;
        if let Err(e) = served {
            tracing::error!(error = %e, "HTTP server failed");
        }
    })
}

/// On a database with no token at all, makes an admin token and prints it once (the
/// only time it is shown), with how to use it.
async fn first_token(store: &dyn JobStore, addr: SocketAddr) -> Result<(), Error> {
    if !store.tokens().await?.is_empty() {
        return Ok(());
    }
    let secret =
        Secret::generate().map_err(|e| io("making the first token")(std::io::Error::other(e)))?;
    store
        .create_token("admin", Role::Admin, secret.hash, now_ms())
        .await?;
    let token = &secret.text;
    let shown = writeln!(
        std::io::stdout(),
        "\nOrchestra made an admin token; it is shown only now, so keep it:\n\n    {token}\n\n\
         Send it with every request, e.g.:\n\n    \
         curl -H 'Authorization: Bearer {token}' http://{addr}/api/jobs\n\n\
         Make more with POST /api/tokens, or `orchestra token create` while the host is stopped.\n"
    );
    if let Err(e) = shown {
        // Standard output is gone (a closed pipe): the host runs on, and the operator
        // makes a token with `orchestra token create` once it is stopped.
        tracing::warn!(error = %e, "the first admin token could not be shown");
    }
    Ok(())
}
