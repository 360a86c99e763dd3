//! Runs built example plugins (`scripts/plugins.sh`) through the runtime with a fake
//! [`RunHost`]: the `agent` import, its wall-clock rule, 0.1.0 and Python components, and
//! the disk quota of a repository mount.

use super::*;
use serde_json::{Value, json};
use std::sync::OnceLock;

/// The runtime and the plugins every test shares: compiling once is enough.
struct Fixture {
    runtime: Runtime,
    task_execution: Prepared,
    flaky: Prepared,
    sleep: Prepared,
    bigmem: Prepared,
    files: Prepared,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let runtime = Runtime::new(cache_dir(), 16).expect("an engine");
        let prepare = |name: &str| prepare(&runtime, name);
        Fixture {
            task_execution: prepare("task_execution"),
            flaky: prepare("flaky"),
            sleep: prepare("sleep"),
            bigmem: prepare("bigmem"),
            files: prepare("files"),
            runtime,
        }
    })
}

/// Where the tests' compiled plugins are cached.
fn cache_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/runtime-tests-cache")
}

/// The built example plugin `name`, prepared on `runtime`.
fn prepare(runtime: &Runtime, name: &str) -> Prepared {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(format!("../target/wasm32-wasip2/plugin/{name}.wasm"));
    let bytes = std::fs::read(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; build the plugins first: cargo plugins",
            path.display()
        )
    });
    runtime
        .prepare(&bytes, &digest(&bytes))
        .unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// A [`RunHost`] with a scripted agent that records what the guest did.
struct FakeAgent {
    agent: Option<AgentInfo>,
    reply: Result<ExecResult, ExecError>,
    /// How long `exec` takes.
    delay: Duration,
    progress: Mutex<Vec<(u8, String)>>,
    logs: Mutex<Vec<(String, String)>>,
    commands: Mutex<Vec<(String, Duration)>>,
}

impl FakeAgent {
    fn replying(reply: Result<ExecResult, ExecError>) -> FakeAgent {
        FakeAgent {
            agent: Some(AgentInfo {
                id: "agent-1".into(),
                name: "builder".into(),
                repository_path: "/srv/repo".into(),
                max_concurrency: 1,
                labels: vec![("os".into(), "linux".into())],
            }),
            reply,
            delay: Duration::ZERO,
            progress: Mutex::default(),
            logs: Mutex::default(),
            commands: Mutex::default(),
        }
    }

    fn progress(&self) -> Vec<(u8, String)> {
        self.progress.lock().unwrap().clone()
    }

    fn commands(&self) -> Vec<(String, Duration)> {
        self.commands.lock().unwrap().clone()
    }
}

#[async_trait::async_trait]
impl RunHost for FakeAgent {
    fn progress(&self, percent: u8, message: &str) {
        self.progress
            .lock()
            .unwrap()
            .push((percent, message.to_owned()));
    }

    fn log(&self, level: &str, message: &str) {
        self.logs
            .lock()
            .unwrap()
            .push((level.to_owned(), message.to_owned()));
    }

    fn agent(&self) -> Option<AgentInfo> {
        self.agent.clone()
    }

    async fn exec(
        &self,
        command: String,
        timeout: Duration,
        log: &ExecLog,
    ) -> Result<ExecResult, ExecError> {
        log("stdout", &format!("running {command}"));
        self.commands.lock().unwrap().push((command, timeout));
        tokio::time::sleep(self.delay).await;
        self.reply.clone()
    }
}

fn exited(code: Option<i32>, stdout: &str, stderr: &str) -> ExecResult {
    ExecResult {
        exit_code: code,
        stdout: stdout.into(),
        stderr: stderr.into(),
        duration_ms: 1234,
    }
}

/// Runs `plugin` with `args` under `limits`.
async fn run_with(
    plugin: &Prepared,
    args: Value,
    limits: Limits,
    host: Arc<dyn RunHost>,
) -> RunReport {
    run_in(plugin, args, limits, None, host).await
}

/// Runs `plugin` with `args` under `limits`, with `repo` (if any) at `/repo`.
async fn run_in(
    plugin: &Prepared,
    args: Value,
    limits: Limits,
    repo: Option<&Path>,
    host: Arc<dyn RunHost>,
) -> RunReport {
    fixture()
        .runtime
        .run(plugin, &input(args), &limits, repo, host)
        .await
}

/// The first attempt of a job with `args`.
fn input(args: Value) -> RunInput {
    RunInput {
        id: "job-1".into(),
        plugin: "test".into(),
        queue: "default".into(),
        attempt: 1,
        max_attempts: 3,
        args: args.to_string(),
    }
}

/// Runs task-execution for `task-7` running `cargo build` on `agent`.
async fn execute(agent: &Arc<FakeAgent>) -> RunOutcome {
    let args = json!({"task_id": "task-7", "command": "cargo build"});
    let host: Arc<dyn RunHost> = agent.clone();
    let report = run_with(&fixture().task_execution, args, Limits::default(), host).await;
    report.outcome
}

/// The failure of `outcome`, or a panic saying it succeeded.
fn failure(outcome: RunOutcome) -> JobError {
    match outcome {
        RunOutcome::Failed(error) => error,
        RunOutcome::Succeeded(result) => panic!("expected a failure, got success: {result}"),
    }
}

#[tokio::test]
async fn a_command_that_exits_0_succeeds_with_its_stdout_tail() {
    let stdout = format!("{}END", "x".repeat(5000));
    let agent = Arc::new(FakeAgent::replying(Ok(exited(Some(0), &stdout, "warn"))));
    let RunOutcome::Succeeded(result) = execute(&agent).await else {
        panic!("the task failed: {:?}", agent.logs.lock().unwrap());
    };
    let result: Value = serde_json::from_str(&result).unwrap();
    assert_eq!(result["task_id"], "task-7");
    assert_eq!(result["exit_code"], 0);
    assert_eq!(result["duration_ms"], 1234);
    let tail = result["stdout_tail"].as_str().unwrap();
    assert_eq!(tail.len(), 4096);
    assert!(tail.ends_with("xEND"));

    assert_eq!(
        agent.commands(),
        [("cargo build".to_owned(), Duration::from_secs(1200))],
        "the command as given, with the default timeout"
    );
    let progress = agent.progress();
    let percents: Vec<u8> = progress.iter().map(|(p, _)| *p).collect();
    assert_eq!(percents, [5, 15, 25, 90, 100]);
    assert_eq!(progress[1].1, "agent builder acquired");
    assert_eq!(progress[4].1, "done");
}

#[tokio::test]
async fn a_non_zero_exit_fails_fatally_with_the_output() {
    let agent = Arc::new(FakeAgent::replying(Ok(exited(
        Some(3),
        "compiling",
        "error: boom",
    ))));
    let error = failure(execute(&agent).await);
    assert_eq!(error.kind, ErrorKind::Fatal, "{error:?}");
    assert!(error.message.contains("code 3"), "{}", error.message);
    assert!(error.message.contains("error: boom"), "{}", error.message);
    assert!(
        agent.progress().iter().all(|(p, _)| *p < 100),
        "a failed task does not report 100 %"
    );

    let killed = Arc::new(FakeAgent::replying(Ok(exited(None, "only stdout", ""))));
    let error = failure(execute(&killed).await);
    assert_eq!(error.kind, ErrorKind::Fatal, "{error:?}");
    assert!(error.message.contains("killed"), "{}", error.message);
    assert!(error.message.contains("only stdout"), "{}", error.message);
}

#[tokio::test]
async fn an_unavailable_agent_is_retryable() {
    let agent = Arc::new(FakeAgent::replying(Err(ExecError::Unavailable(
        "agent builder is busy".into(),
    ))));
    let error = failure(execute(&agent).await);
    assert_eq!(error.kind, ErrorKind::Retryable, "{error:?}");
    assert!(
        error.message.contains("agent builder is busy"),
        "{}",
        error.message
    );
}

#[tokio::test]
async fn a_timed_out_command_fails_fatally_with_its_partial_output() {
    let agent = Arc::new(FakeAgent::replying(Err(ExecError::Timeout(exited(
        None,
        "half done",
        "",
    )))));
    let args = json!({"task_id": "t", "command": "sleep 99", "timeout_seconds": 30});
    let host: Arc<dyn RunHost> = agent.clone();
    let report = run_with(&fixture().task_execution, args, Limits::default(), host).await;
    let error = failure(report.outcome);
    assert_eq!(error.kind, ErrorKind::Fatal, "{error:?}");
    assert!(
        error.message.contains("timed out after 30 s"),
        "{}",
        error.message
    );
    assert!(error.message.contains("half done"), "{}", error.message);
    assert_eq!(agent.commands()[0].1, Duration::from_secs(30));
}

#[tokio::test]
async fn a_command_that_cannot_start_fails_fatally() {
    let agent = Arc::new(FakeAgent::replying(Err(ExecError::Spawn(
        "no such file: claude".into(),
    ))));
    let error = failure(execute(&agent).await);
    assert_eq!(error.kind, ErrorKind::Fatal, "{error:?}");
    assert!(
        error.message.contains("no such file: claude"),
        "{}",
        error.message
    );
}

#[tokio::test]
async fn a_job_not_bound_to_an_agent_fails_fatally() {
    let mut unbound = FakeAgent::replying(Ok(exited(Some(0), "", "")));
    unbound.agent = None;
    let agent = Arc::new(unbound);
    let error = failure(execute(&agent).await);
    assert_eq!(error.kind, ErrorKind::Fatal, "{error:?}");
    assert!(error.message.contains("not bound"), "{}", error.message);
    assert!(agent.commands().is_empty(), "no command may run");
}

#[tokio::test]
async fn bad_args_fail_fatally_before_the_agent_is_asked() {
    let agent = Arc::new(FakeAgent::replying(Ok(exited(Some(0), "", ""))));
    for args in [
        json!({"task_id": "t"}),
        json!({"task_id": "t", "command": "   "}),
        json!({"task_id": "t", "command": "x".repeat(2001)}),
        json!({"command": "ls"}),
        json!({"task_id": "t", "command": "ls", "timeout_seconds": 86_401}),
    ] {
        let host: Arc<dyn RunHost> = agent.clone();
        let report = run_with(
            &fixture().task_execution,
            args.clone(),
            Limits::default(),
            host,
        );
        let error = failure(report.await.outcome);
        assert_eq!(error.kind, ErrorKind::Fatal, "{args}: {error:?}");
        assert!(
            error.message.starts_with("bad args"),
            "{args}: {}",
            error.message
        );
    }
    assert!(agent.commands().is_empty());
}

#[tokio::test]
async fn time_in_an_agent_command_does_not_count_against_the_run_timeout() {
    let mut slow = FakeAgent::replying(Ok(exited(Some(0), "built", "")));
    slow.delay = Duration::from_millis(800);
    let agent = Arc::new(slow);
    let limits = Limits {
        timeout: Duration::from_millis(300),
        ..Limits::default()
    };
    let args = json!({"task_id": "t", "command": "make"});
    let host: Arc<dyn RunHost> = agent.clone();
    let report = run_with(&fixture().task_execution, args, limits, host).await;
    assert!(
        matches!(report.outcome, RunOutcome::Succeeded(_)),
        "{:?}",
        report.outcome
    );
    assert!(report.usage.wall_ms >= 800, "{:?}", report.usage);
}

#[tokio::test]
async fn a_guest_blocked_outside_agent_commands_still_times_out() {
    let host: Arc<dyn RunHost> = Arc::new(FakeAgent::replying(Ok(exited(Some(0), "", ""))));
    let limits = Limits {
        timeout: Duration::from_millis(300),
        ..Limits::default()
    };
    let started = Instant::now();
    let report = run_with(&fixture().sleep, json!({"ms": 5000}), limits, host).await;
    let error = failure(report.outcome);
    assert_eq!(error.kind, ErrorKind::Timeout, "{error:?}");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_component_built_against_0_1_0_still_runs() {
    let agent = Arc::new(FakeAgent::replying(Ok(exited(Some(0), "", ""))));
    let host: Arc<dyn RunHost> = agent.clone();
    let report = run_with(
        &fixture().flaky,
        json!({"succeed_on": 1}),
        Limits::default(),
        host,
    );
    assert_eq!(
        report.await.outcome,
        RunOutcome::Succeeded(json!({"attempt": 1}).to_string())
    );

    let host: Arc<dyn RunHost> = agent.clone();
    let report = run_with(&fixture().flaky, json!({}), Limits::default(), host).await;
    assert_eq!(failure(report.outcome).kind, ErrorKind::Retryable);
    let logs = agent.logs.lock().unwrap();
    assert!(
        logs.iter()
            .any(|(level, message)| level == "info" && message == "flaky: attempt 1"),
        "its 0.1.0 log import reached the host: {logs:?}"
    );
}

#[tokio::test]
async fn a_python_component_runs_in_the_one_slot_of_an_engine_for_one_run() {
    // The 14 core instances of a componentize-py component fit one run's share of the pool.
    let runtime = Runtime::new(cache_dir(), 1).expect("an engine");
    let hello = prepare(&runtime, "hello_python");
    let agent = Arc::new(FakeAgent::replying(Ok(exited(Some(0), "", ""))));
    let host: Arc<dyn RunHost> = agent.clone();
    let args = json!({"name": "ada", "steps": 1});
    let report = runtime
        .run(&hello, &input(args), &Limits::default(), None, host)
        .await;
    let RunOutcome::Succeeded(result) = report.outcome else {
        panic!("the run failed: {:?}", report.outcome)
    };
    let result: Value = serde_json::from_str(&result).expect("JSON");
    assert_eq!(result, json!({"text": "hello, ada", "attempt": 1}));
    assert_eq!(
        *agent.progress.lock().unwrap(),
        [(100, "step 1 of 1".into())]
    );
}

#[tokio::test]
async fn an_instance_that_can_never_be_made_is_fatal() {
    let host: Arc<dyn RunHost> = Arc::new(FakeAgent::replying(Ok(exited(Some(0), "", ""))));
    let limits = Limits {
        memory_bytes: 16 << 20,
        ..Limits::default()
    };
    let report = run_with(&fixture().bigmem, json!({}), limits, host).await;
    let error = failure(report.outcome);
    assert_eq!(error.kind, ErrorKind::Fatal, "{error:?}");
    assert!(
        error.message.contains("cannot be instantiated"),
        "{error:?}"
    );
}

#[tokio::test]
async fn no_free_instance_slot_is_retryable() {
    let runtime = Runtime::new(cache_dir(), 1).expect("an engine");
    let sleep = prepare(&runtime, "sleep");
    let holder = Arc::new(FakeAgent::replying(Ok(exited(Some(0), "", ""))));
    let (long, limits) = (input(json!({"ms": 60_000})), Limits::default());
    let holds = runtime.run(&sleep, &long, &limits, None, holder.clone());
    tokio::pin!(holds);
    // Runs the first guest until it has logged: it holds the only slot.
    while holder.logs.lock().unwrap().is_empty() {
        tokio::select! {
            report = &mut holds => panic!("the first run ended: {:?}", report.outcome),
            () = tokio::time::sleep(Duration::from_millis(10)) => {}
        }
    }
    let host: Arc<dyn RunHost> = Arc::new(FakeAgent::replying(Ok(exited(Some(0), "", ""))));
    let report = runtime
        .run(
            &sleep,
            &input(json!({"ms": 1})),
            &Limits::default(),
            None,
            host,
        )
        .await;
    let error = failure(report.outcome);
    assert_eq!(error.kind, ErrorKind::Retryable, "{error:?}");
    assert!(error.message.contains("no free instance slot"), "{error:?}");
}

#[tokio::test]
async fn a_result_over_its_limit_is_result_too_large() {
    let agent = Arc::new(FakeAgent::replying(Ok(exited(Some(0), "", ""))));
    let limits = Limits {
        result_bytes: 8,
        ..Limits::default()
    };
    let host: Arc<dyn RunHost> = agent.clone();
    let report = run_with(&fixture().flaky, json!({"succeed_on": 1}), limits, host).await;
    let error = failure(report.outcome);
    assert_eq!(error.kind, ErrorKind::ResultTooLarge, "{error:?}");
    assert!(error.message.contains("limit of 8 bytes"), "{error:?}");
}

#[tokio::test]
async fn agent_output_counts_against_the_log_allowance() {
    let lines = |limits: Limits| async move {
        let agent = Arc::new(FakeAgent::replying(Ok(exited(Some(0), "", ""))));
        let host: Arc<dyn RunHost> = agent.clone();
        let args = json!({"task_id": "task-7", "command": "cargo build"});
        run_with(&fixture().task_execution, args, limits, host).await;
        agent.logs.lock().unwrap().clone()
    };
    let running = |logs: &[(String, String)]| {
        logs.iter()
            .any(|(level, line)| level == "stdout" && line == "running cargo build")
    };
    let all = lines(Limits::default()).await;
    assert!(
        running(&all),
        "the command's output reaches the log: {all:?}"
    );
    let limits = Limits {
        log_bytes: 1,
        ..Limits::default()
    };
    let cut = lines(limits).await;
    assert!(!running(&cut), "nothing past the allowance: {cut:?}");
    let notes = cut
        .iter()
        .filter(|(_, line)| line.starts_with("log truncated"))
        .count();
    assert_eq!(notes, 1, "{cut:?}");
}

/// Runs `files` with `ops` in a fresh repository under a disk quota of `quota` bytes;
/// returns the outcome and the repository.
async fn files_under_quota(
    ops: Value,
    give_up: bool,
    quota: u64,
) -> (RunOutcome, tempfile::TempDir) {
    let repo = tempfile::tempdir().unwrap();
    let host: Arc<dyn RunHost> = Arc::new(FakeAgent::replying(Ok(exited(Some(0), "", ""))));
    let limits = Limits {
        disk_quota_bytes: quota,
        ..Limits::default()
    };
    let args = json!({"ops": ops, "give_up": give_up});
    let report = run_in(&fixture().files, args, limits, Some(repo.path()), host).await;
    (report.outcome, repo)
}

/// The per-operation outcomes of a `files` run that succeeded.
fn op_outcomes(outcome: RunOutcome) -> Vec<String> {
    let RunOutcome::Succeeded(result) = outcome else {
        panic!("the run failed: {outcome:?}");
    };
    let result: Value = serde_json::from_str(&result).unwrap();
    serde_json::from_value(result["ops"].clone()).unwrap()
}

#[tokio::test]
async fn writes_past_the_disk_quota_are_refused_and_a_run_that_gives_up_fails_with_disk_quota() {
    let quota = 256 << 10;
    let fill = |path: &str, bytes: u64| json!({"op": "fill", "path": path, "bytes": bytes});

    let (outcome, repo) = files_under_quota(json!([fill("/repo/big", 1 << 20)]), true, quota).await;
    let error = failure(outcome);
    assert_eq!(error.kind, ErrorKind::DiskQuota, "{error:?}");
    assert!(
        error.message.contains("disk quota of 262144 bytes"),
        "{}",
        error.message
    );
    let size = std::fs::metadata(repo.path().join("big")).unwrap().len();
    assert!(size <= quota, "{size} bytes reached the disk");

    // Writes count across files and streams; a refused write is an ordinary io error
    // the guest may survive, and then the run succeeds.
    let ops = json!([
        fill("/repo/a", 100 << 10),
        {"op": "append", "path": "/repo/a", "text": "more"},
        fill("/repo/b", 100 << 10),
        fill("/repo/c", 100 << 10),
        {"op": "write", "path": "/repo/d", "text": "small"},
    ]);
    let (outcome, _repo) = files_under_quota(ops, false, quota).await;
    let outcomes = op_outcomes(outcome);
    assert_eq!(outcomes[..3], ["ok", "ok", "ok"], "{outcomes:?}");
    // (wasi-libc reports a failed stream write as EIO, whatever its error code.)
    assert!(outcomes[3].starts_with("error"), "{outcomes:?}");
    assert!(
        outcomes[4].starts_with("error"),
        "the quota is used up: {outcomes:?}"
    );

    // Growing a file with set-size counts too.
    let ops = json!([
        {"op": "write", "path": "/repo/d", "text": "small"},
        {"op": "set_len", "path": "/repo/d", "len": 1 << 30},
        {"op": "set_len", "path": "/repo/d", "len": 1 << 10},
    ]);
    let (outcome, _repo) = files_under_quota(ops, false, quota).await;
    let outcomes = op_outcomes(outcome);
    assert_eq!(outcomes[0], "ok", "{outcomes:?}");
    assert!(
        outcomes[1].contains("No space left on device"),
        "{outcomes:?}"
    );
    assert_eq!(outcomes[2], "ok", "{outcomes:?}");
}

#[tokio::test]
async fn without_a_refusal_a_failure_keeps_its_kind() {
    let ops = json!([{"op": "write", "path": "/repo/missing/x", "text": "x"}]);
    let (outcome, _repo) = files_under_quota(ops, true, 1 << 20).await;
    assert_eq!(failure(outcome).kind, ErrorKind::Fatal);
}
