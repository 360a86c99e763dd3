//! The WebAssembly runtime: one wasmtime `Engine`, components compiled once (and cached on
//! disk), and a fresh, limited `Store` for every run.
//!
//! The runtime knows nothing of the job store or of agents: a run reaches the outside
//! world only through the [`RunHost`] its caller passes in.
//!
//! Components of both versions of the plugin contract run: `orchestra:plugin@0.2.0`
//! (`wit/`) and `@0.1.0` (`wit/0.1.0`), whose imports are linked side by side.

mod bindings;
mod cache;
mod deadline;
mod disk_quota;
mod host;
mod inspect;
mod memory;
mod outbound;
mod output;
mod repo_fs;
mod repo_guard;

use crate::model::limits::{self, Limits};
pub use cache::digest;
pub use host::{MAX_COMMAND_CHARS, MAX_PROGRESS_MESSAGE_CHARS};
pub use inspect::check_fits;

use crate::model::{ErrorKind, JobError, Usage};
use bindings::TaskHandlerPre;
use bindings::orchestra::plugin::types::{JobContext, JobError as GuestError};
use cache::ComponentCache;
use deadline::Deadline;
use host::RunState;
use outbound::Outbound;
use output::{LineSink, OutputCapture};
use repo_guard::RepoGuard;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use wasmtime::component::{HasSelf, Linker, ResourceTable};
use wasmtime::{
    Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store, Trap,
    UpdateDeadline,
};
use wasmtime_wasi::{FsPerms, WasiCtxBuilder};
use wasmtime_wasi_http::WasiHttpCtx;

/// How often the epoch advances: the granularity of deadlines and time slices.
const TICK: Duration = Duration::from_millis(10);
/// Fuel between forced yields to tokio, so a busy guest cannot starve the host.
const YIELD_FUEL: u64 = 50_000_000;

/// Bytes of each pooled memory kept resident between instances (reset with memset).
const KEEP_RESIDENT_BYTES: usize = 2 << 20;
/// Bytes of each pooled table kept resident: tables of real guests are small.
const KEEP_TABLE_RESIDENT_BYTES: usize = 64 << 10;
/// Core instances pooled per run: a componentize-py component instantiates 14 core
/// modules (a Rust one 3, a componentize-js one 4).
const CORE_INSTANCES_PER_RUN: u32 = 16;

/// Runtime errors: a module that cannot become a runnable plugin.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The bytes are not a valid component for this engine.
    #[error("module does not compile: {0}")]
    Compile(String),
    /// The component imports something the host does not provide.
    #[error(
        "module imports what the host does not provide ({0}); the host provides \
         orchestra:plugin@0.2.0 (and @0.1.0) and WASI 0.2 (wasi:cli, wasi:clocks, \
         wasi:filesystem, wasi:io, wasi:random, wasi:sockets) only"
    )]
    Imports(String),
    /// The component does not implement the `task-handler` world.
    #[error("module does not implement world orchestra:plugin/task-handler: {0}")]
    World(String),
    /// The engine could not be set up.
    #[error("wasm engine: {0}")]
    Engine(String),
    /// The component can never run under its limits.
    #[error("module cannot run under its limits: {0}")]
    Limits(String),
}

/// The agent a job is bound to, as the guest sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentInfo {
    /// The agent's id.
    pub id: String,
    /// The agent's display name.
    pub name: String,
    /// The directory on this host that its commands run in.
    pub repository_path: String,
    /// How many commands the agent may run at once, across all jobs.
    pub max_concurrency: u32,
    /// The agent's labels, as key-value pairs.
    pub labels: Vec<(String, String)>,
}

/// A finished agent command (also the partial output of one stopped by its timeout).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecResult {
    /// The process's exit code; `None` when a signal killed it (a timeout included).
    pub exit_code: Option<i32>,
    /// The last 1 MiB of its standard output.
    pub stdout: String,
    /// The last 1 MiB of its standard error.
    pub stderr: String,
    /// How long it ran, in milliseconds.
    pub duration_ms: u64,
}

/// Why an agent command gave no result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExecError {
    /// The job is not bound to an agent, or the agent cannot take a command now: the
    /// guest sees `agent-unavailable`, which is worth retrying later.
    Unavailable(String),
    /// The command ran past its timeout and was killed; what it wrote until then.
    Timeout(ExecResult),
    /// The command was refused or its process could not be started: `spawn-failure`.
    Spawn(String),
}

/// Where an agent command's output lines go, as `(level, line)`.
pub type ExecLog = dyn Fn(&str, &str) + Send + Sync;

/// Where the guest's imports lead: implemented by the engine over the job store.
#[async_trait::async_trait]
pub trait RunHost: Send + Sync {
    /// A valid progress report (0..=100, message within limits).
    fn progress(&self, percent: u8, message: &str);
    /// One log line: a `log` call, or a line of guest stdout (`stdout`) or stderr (`stderr`).
    fn log(&self, level: &str, message: &str);
    /// The agent this job is bound to, if any.
    fn agent(&self) -> Option<AgentInfo> {
        None
    }
    /// Runs `command` on the bound agent (see the WIT `agent.exec`).
    ///
    /// The runtime has already refused empty commands, commands over
    /// [`MAX_COMMAND_CHARS`] and a zero timeout, and stops its run's wall clock while
    /// this runs. The implementation must honour `timeout` itself (kill the process, return
    /// [`ExecError::Timeout`] with the output so far); a little after it the runtime stops
    /// waiting and drops this future. The command's output lines go to `log` (level
    /// `stdout` or `stderr`), which counts them against the run's log allowance.
    async fn exec(
        &self,
        command: String,
        timeout: std::time::Duration,
        log: &ExecLog,
    ) -> Result<ExecResult, ExecError> {
        let _ = (command, timeout, log);
        Err(ExecError::Unavailable(
            "this job is not bound to an agent".into(),
        ))
    }
}

/// What the guest is told about its job.
#[derive(Debug, Clone)]
pub struct RunInput {
    /// Job id.
    pub id: String,
    /// Plugin name.
    pub plugin: String,
    /// Queue name.
    pub queue: String,
    /// 1-based attempt.
    pub attempt: u32,
    /// Attempts allowed.
    pub max_attempts: u32,
    /// Arguments as JSON text.
    pub args: String,
}

/// How a run ended.
#[derive(Debug, Clone, PartialEq)]
pub enum RunOutcome {
    /// The handler returned this result text.
    Succeeded(String),
    /// The run failed.
    Failed(JobError),
}

/// A run's outcome and what it used.
#[derive(Debug, Clone)]
pub struct RunReport {
    /// How it ended.
    pub outcome: RunOutcome,
    /// Resources used.
    pub usage: Usage,
}

/// A plugin version ready to instantiate: compiled, linked and type-checked once.
///
/// The 0.2.0 bindings serve components of both contract versions: their imports are all
/// linked, and the `handle` export has the same shape in both (export types are checked
/// structurally).
#[derive(Clone)]
pub struct Prepared {
    pre: TaskHandlerPre<RunState>,
}

impl std::fmt::Debug for Prepared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Prepared")
    }
}

/// The wasmtime engine and linker shared by every plugin.
pub struct Runtime {
    engine: Engine,
    linker: Linker<RunState>,
    cache: ComponentCache,
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime")
            .field("cache", &self.cache)
            .finish()
    }
}

impl Runtime {
    /// An engine with room for `max_instances` concurrent runs, caching compiled
    /// components in `cache_dir`.
    ///
    /// # Errors
    /// The engine cannot be configured (e.g. the address space for the pool is refused).
    pub fn new(cache_dir: PathBuf, max_instances: u32) -> Result<Runtime, Error> {
        let engine = Engine::new(&engine_config(max_instances)).map_err(engine_error)?;
        spawn_epoch_ticker(&engine);
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker).map_err(engine_error)?;
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker).map_err(engine_error)?;
        repo_fs::add_to_linker(&mut linker).map_err(engine_error)?;
        bindings::TaskHandler::add_to_linker::<RunState, HasSelf<RunState>>(&mut linker, |s| s)
            .map_err(engine_error)?;
        bindings::v0_1::TaskHandler::add_to_linker::<RunState, HasSelf<RunState>>(
            &mut linker,
            |s| s,
        )
        .map_err(engine_error)?;
        let cache = ComponentCache::new(cache_dir, &engine);
        Ok(Runtime {
            engine,
            linker,
            cache,
        })
    }

    /// Compiles (or loads from the cache) and links a module built against either version
    /// of the plugin contract.
    ///
    /// # Errors
    /// The module is not a component, imports what the host does not provide, or does
    /// not implement the world.
    pub fn prepare(&self, bytes: &[u8], digest: &str) -> Result<Prepared, Error> {
        let component = self
            .cache
            .load(&self.engine, digest, bytes)
            .map_err(|e| Error::Compile(format!("{e:#}")))?;
        let pre = self
            .linker
            .instantiate_pre(&component)
            .map_err(|e| Error::Imports(format!("{e:#}")))?;
        let pre = TaskHandlerPre::new(pre).map_err(|e| Error::World(format!("{e:#}")))?;
        Ok(Prepared { pre })
    }

    /// Drops the compiled entries of the module `digest` from the on-disk cache: it left
    /// the plugin folder. Versions already prepared from it keep running.
    pub fn evict(&self, digest: &str) {
        self.cache.remove(digest);
    }

    /// Runs one attempt of a job under `limits`, with `repo` (if any) at `/repo`.
    pub async fn run(
        &self,
        prepared: &Prepared,
        input: &RunInput,
        limits: &Limits,
        repo: Option<&Path>,
        host: Arc<dyn RunHost>,
    ) -> RunReport {
        let started = Instant::now();
        let sink = Arc::new(Mutex::new(LineSink::new(host.clone(), limits.log_bytes)));
        let stdout = OutputCapture::new(sink.clone(), "stdout");
        let stderr = OutputCapture::new(sink.clone(), "stderr");
        let mut wasi = WasiCtxBuilder::new();
        wasi.stdout(stdout.clone())
            .stderr(stderr.clone())
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false);
        let guard = match repo.map(|repo| mount(&mut wasi, repo, limits)).transpose() {
            Ok(guard) => guard,
            Err(error) => return report(RunOutcome::Failed(error), started, 0, 0),
        };
        let (deadline, expiry) = Deadline::new(started + limits.timeout);
        let outbound = Outbound::new(
            limits.outbound_hosts.clone(),
            sink.clone(),
            limits.memory_bytes,
        );
        let state = RunState {
            wasi: wasi.build(),
            table: ResourceTable::new(),
            limiter: memory::MemoryLimiter::new(limits.memory_bytes),
            deadline,
            sink,
            host,
            repo: guard,
            http: WasiHttpCtx::new(),
            outbound,
        };
        let mut store = Store::new(&self.engine, state);
        store.limiter(|state| &mut state.limiter);
        let ready = store
            .set_fuel(limits.fuel)
            .and_then(|()| store.fuel_async_yield_interval(Some(YIELD_FUEL)));
        if let Err(e) = ready {
            let error = JobError::new(ErrorKind::Trap, format!("run setup failed: {e:#}"));
            return report(RunOutcome::Failed(error), started, 0, 0);
        }
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(|cx| {
            Ok(if Instant::now() >= cx.data().deadline.at() {
                UpdateDeadline::Interrupt
            } else {
                UpdateDeadline::YieldCustom(1, Box::pin(tokio::task::yield_now()))
            })
        });
        let context = JobContext {
            id: input.id.clone(),
            plugin: input.plugin.clone(),
            queue: input.queue.clone(),
            attempt: input.attempt,
            max_attempts: input.max_attempts,
            args: input.args.clone(),
        };
        let call = async {
            let instance = prepared
                .pre
                .instantiate_async(&mut store)
                .await
                .map_err(CallError::Instantiate)?;
            instance
                .call_handle(&mut store, &context)
                .await
                .map_err(CallError::Run)
        };
        // The epoch callback stops a spinning guest; this outer timer stops one blocked in
        // a host call (a WASI sleep), which never reaches an epoch check. Neither counts
        // time spent in agent commands.
        let result = tokio::select! {
            biased;
            result = call => Ok(result),
            () = expiry.expired(2 * TICK) => Err(()),
        };
        stdout.finish();
        stderr.finish();
        let fuel_used = limits.fuel.saturating_sub(store.get_fuel().unwrap_or(0));
        let state = store.data();
        let outcome = match result {
            Err(_) => timed_out(limits),
            Ok(Ok(Ok(text))) if text.len() > limits.result_bytes => failed(
                ErrorKind::ResultTooLarge,
                format!(
                    "result of {} bytes is larger than its limit of {} bytes",
                    text.len(),
                    limits.result_bytes
                ),
            ),
            Ok(Ok(Ok(text))) => RunOutcome::Succeeded(text),
            Ok(Ok(Err(GuestError::Retryable(m)))) => failed(ErrorKind::Retryable, m),
            Ok(Ok(Err(GuestError::Fatal(m)))) => failed(ErrorKind::Fatal, m),
            Ok(Err(CallError::Run(e))) => {
                classify_error(&e, limits, state.limiter.denied, &stderr.tail())
            }
            Ok(Err(CallError::Instantiate(e))) => classify_instantiation(&e, limits),
        };
        let outcome = match &state.repo {
            Some(guard) if guard.quota.refused() => over_quota(outcome, guard.quota.limit()),
            _ => outcome,
        };
        let outcome = match &state.outbound.refused {
            Some(refusal) => with_refusal(outcome, refusal),
            None => outcome,
        };
        report(outcome, started, fuel_used, state.limiter.peak)
    }
}

/// Where a run's wasmtime error came from.
enum CallError {
    /// Creating the instance.
    Instantiate(wasmtime::Error),
    /// Calling `handle`.
    Run(wasmtime::Error),
}

/// Mounts `repo` at `/repo` (read-write, guarded by [`repo_fs`]) and returns its guard.
fn mount(wasi: &mut WasiCtxBuilder, repo: &Path, limits: &Limits) -> Result<RepoGuard, JobError> {
    let mounted = RepoGuard::new(repo, limits.disk_quota_bytes).and_then(|guard| {
        wasi.preopened_dir(repo, "/repo", FsPerms::ReadWrite)
            .map_err(std::io::Error::other)?;
        Ok(guard)
    });
    mounted.map_err(|e| {
        JobError::new(
            ErrorKind::Fatal,
            format!("repository {} cannot be mounted: {e:#}", repo.display()),
        )
    })
}

/// A failure of a run that was refused a write past its disk quota is named for it:
/// the guest gave up because of the quota.
fn over_quota(outcome: RunOutcome, quota: u64) -> RunOutcome {
    match outcome {
        RunOutcome::Failed(error)
            if matches!(
                error.kind,
                ErrorKind::Retryable | ErrorKind::Fatal | ErrorKind::Trap
            ) =>
        {
            failed(
                ErrorKind::DiskQuota,
                format!(
                    "run wrote past its disk quota of {} bytes under /repo: {}",
                    quota, error.message
                ),
            )
        }
        outcome => outcome,
    }
}

/// A failure of a run that was refused an outgoing request names the refusal: the guest
/// may have given up because of it.
fn with_refusal(outcome: RunOutcome, refusal: &str) -> RunOutcome {
    match outcome {
        RunOutcome::Failed(mut error) => {
            error.message = format!("{}; {refusal}", error.message);
            RunOutcome::Failed(error)
        }
        outcome => outcome,
    }
}

fn report(outcome: RunOutcome, started: Instant, fuel: u64, memory: usize) -> RunReport {
    RunReport {
        outcome,
        usage: Usage {
            fuel_consumed: fuel,
            wall_ms: started.elapsed().as_millis() as u64,
            memory_peak_bytes: memory as u64,
        },
    }
}

fn failed(kind: ErrorKind, message: String) -> RunOutcome {
    RunOutcome::Failed(JobError::new(kind, message))
}

fn timed_out(limits: &Limits) -> RunOutcome {
    failed(
        ErrorKind::Timeout,
        format!(
            "run exceeded its time limit of {} ms",
            limits.timeout.as_millis()
        ),
    )
}

/// Names the failure behind a wasmtime error.
fn classify_error(
    e: &wasmtime::Error,
    limits: &Limits,
    memory_denied: bool,
    stderr: &str,
) -> RunOutcome {
    let detail = if stderr.is_empty() {
        String::new()
    } else {
        format!("; stderr: {stderr}")
    };
    match e.downcast_ref::<Trap>() {
        Some(Trap::OutOfFuel) => failed(
            ErrorKind::OutOfFuel,
            format!("run used its whole fuel budget of {}", limits.fuel),
        ),
        Some(Trap::Interrupt) => timed_out(limits),
        _ if memory_denied => failed(
            ErrorKind::MemoryLimit,
            format!(
                "guest was refused memory beyond its limit of {} MiB ({e}){detail}",
                limits.memory_bytes >> 20
            ),
        ),
        _ => failed(ErrorKind::Trap, format!("{e:#}{detail}")),
    }
}

/// Names the failure to create an instance: a full pool passes, and fuel and deadlines
/// are what they are, but anything else fails the same way every time.
fn classify_instantiation(e: &wasmtime::Error, limits: &Limits) -> RunOutcome {
    if e.downcast_ref::<wasmtime::PoolConcurrencyLimitError>()
        .is_some()
    {
        return failed(ErrorKind::Retryable, format!("no free instance slot: {e}"));
    }
    match e.downcast_ref::<Trap>() {
        Some(Trap::OutOfFuel | Trap::Interrupt) => classify_error(e, limits, false, ""),
        _ => failed(
            ErrorKind::Fatal,
            format!("the component cannot be instantiated: {e:#}"),
        ),
    }
}

fn engine_error(e: wasmtime::Error) -> Error {
    Error::Engine(format!("{e:#}"))
}

fn engine_config(max_instances: u32) -> Config {
    let mut pool = PoolingAllocationConfig::new();
    pool.total_component_instances(max_instances)
        .total_core_instances(max_instances * CORE_INSTANCES_PER_RUN)
        .total_memories(max_instances * 2)
        .total_tables(max_instances * 5)
        .total_stacks(max_instances)
        .max_memory_size(limits::MAX_MEMORY_BYTES)
        // Reset small memories and tables with memset rather than madvise: no page
        // faults or TLB shootdowns on the next instantiation.
        .linear_memory_keep_resident(KEEP_RESIDENT_BYTES)
        .table_keep_resident(KEEP_TABLE_RESIDENT_BYTES);
    let mut config = Config::new();
    config
        .consume_fuel(true)
        .epoch_interruption(true)
        .memory_reservation(limits::MAX_MEMORY_BYTES as u64)
        .memory_guard_size(64 << 10)
        .memory_reservation_for_growth(0)
        .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    config
}

/// Advances the engine's epoch every [`TICK`] until the engine is dropped.
fn spawn_epoch_ticker(engine: &Engine) {
    let weak = engine.weak();
    std::thread::Builder::new()
        .name("epoch-ticker".into())
        .spawn(move || {
            while let Some(engine) = weak.upgrade() {
                engine.increment_epoch();
                drop(engine);
                std::thread::sleep(TICK);
            }
        })
        .expect("spawning the epoch ticker thread");
}

#[cfg(test)]
mod tests;
