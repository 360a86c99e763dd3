//! Runs an agent command as a child process on behalf of a job, the way a CI runner does:
//! own process group, streamed output lines, bounded output tails, timeout and cancellation kill.
#![deny(unsafe_code)]

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, BufReader};
use tokio::process::{Child, Command};

/// Bytes kept of the end of each stream.
pub(super) const TAIL_BYTES: usize = 1 << 20;
/// A longer line is delivered to `on_line` in pieces of this size (a char split there turns lossy).
pub(super) const MAX_LINE_BYTES: usize = 64 << 10;
/// How long readers may go on after the main child exited (a grandchild may hold the pipes).
const GRACE: Duration = Duration::from_millis(200);

/// What to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Spawn {
    /// Program and arguments, already rendered (`argv[0]` is the program).
    /// Never passed through a shell by us.
    pub(super) argv: Vec<String>,
    /// Working directory.
    pub(super) cwd: PathBuf,
    /// Environment: the child gets exactly these variables.
    pub(super) env: Vec<(String, String)>,
}

/// Which stream a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(in crate::engine) enum Stream {
    /// The child's standard output.
    Stdout,
    /// The child's standard error.
    Stderr,
}

impl Stream {
    /// The level its lines get in a job's log.
    pub(in crate::engine) fn level(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }
}

/// A command that ran to its end or was stopped by its timeout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Finished {
    /// Exit code; None when killed by a signal (including our timeout kill).
    pub(super) exit_code: Option<i32>,
    /// The last [`TAIL_BYTES`] bytes of stdout (lossy UTF-8, cut at a char boundary at the start).
    pub(super) stdout: String,
    /// Same for stderr.
    pub(super) stderr: String,
    /// Wall time from spawn to exit.
    pub(super) duration: Duration,
    /// Whether the timeout stopped it.
    pub(super) timed_out: bool,
}

/// The command could not be started (empty argv, program missing, not executable, cwd missing...).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct SpawnError(pub(super) String);

impl std::fmt::Display for SpawnError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for SpawnError {}

/// Renders an agent's argument template: every `{command}` inside an element is replaced by
/// `command` (the element stays one argv entry: no shell parsing by us), every `{repository}` by
/// `repository`. Substituted text is not scanned again.
#[must_use]
pub(super) fn render(template: &[String], command: &str, repository: &str) -> Vec<String> {
    let fill = |arg: &String| {
        let parts: Vec<String> = arg
            .split("{command}")
            .map(|p| p.replace("{repository}", repository))
            .collect();
        parts.join(command)
    };
    template.iter().map(fill).collect()
}

/// Runs `spawn` to its end or until `timeout`, passing each output line to `on_line` as it comes.
///
/// The child gets its own process group, which is killed (SIGKILL) on timeout, when this future
/// is dropped before the end, or when a grandchild still holds the output pipes 200 ms after
/// the main child exited. On Linux the direct child also gets SIGKILL if the spawning thread dies.
///
/// # Errors
/// [`SpawnError`] when the command cannot be started.
pub(super) async fn run(
    spawn: &Spawn,
    timeout: Duration,
    on_line: &(dyn Fn(Stream, &str) + Send + Sync),
) -> Result<Finished, SpawnError> {
    let start = Instant::now();
    let mut child = command(spawn)?.spawn().map_err(|e| {
        SpawnError(format!(
            "cannot start `{}` in `{}`: {e}",
            spawn.argv[0],
            spawn.cwd.display()
        ))
    })?;
    let mut guard = GroupKill(child.id().and_then(|id| i32::try_from(id).ok()));
    let (stdout, stderr) = (child.stdout.take(), child.stderr.take());
    let (mut out, mut err) = (Tail::default(), Tail::default());
    let readers = async {
        tokio::join!(
            pump(stdout, Stream::Stdout, &mut out, on_line),
            pump(stderr, Stream::Stderr, &mut err, on_line),
        );
    };
    let (exit_code, timed_out, duration) =
        supervise(&mut child, &guard, readers, timeout, start).await;
    guard.disarm();
    Ok(Finished {
        exit_code,
        stdout: out.into_string(),
        stderr: err.into_string(),
        duration,
        timed_out,
    })
}

/// Builds the command: own process group, null stdin, piped output, exactly `spawn.env`.
fn command(spawn: &Spawn) -> Result<Command, SpawnError> {
    let (program, args) = spawn
        .argv
        .split_first()
        .ok_or_else(|| SpawnError("cannot start: empty argv".into()))?;
    let mut cmd = Command::new(program);
    cmd.args(args)
        .current_dir(&spawn.cwd)
        .env_clear()
        .envs(spawn.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    die_with_parent(&mut cmd);
    Ok(cmd)
}

/// Best effort: asks Linux to SIGKILL the direct child (not its descendants) when the thread
/// that spawned it dies; tokio's worker threads live as long as the runtime.
#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
fn die_with_parent(cmd: &mut Command) {
    // SAFETY: the hook runs between fork and exec; it only calls prctl, which is
    // async-signal-safe, allocates nothing and touches no shared state.
    unsafe {
        cmd.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
}

/// No parent-death signal outside Linux.
#[cfg(not(target_os = "linux"))]
fn die_with_parent(_: &mut Command) {}

/// Kills the child's process group (SIGKILL) on drop unless disarmed once the run completed.
struct GroupKill(Option<i32>);

impl GroupKill {
    /// Kills the group now (it stays armed).
    #[allow(unsafe_code)]
    fn kill(&self) {
        if let Some(pgid) = self.0 {
            // SAFETY: killpg only sends a signal; it reads no memory of ours. ESRCH is fine.
            unsafe { libc::killpg(pgid, libc::SIGKILL) };
        }
    }

    /// The run completed: nothing left to kill on drop.
    fn disarm(&mut self) {
        self.0 = None;
    }
}

impl Drop for GroupKill {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Drives `readers` while waiting for the exit or the deadline, then gives the readers [`GRACE`].
/// Returns the exit code, whether the timeout fired, and the time from `start` to the exit.
async fn supervise(
    child: &mut Child,
    guard: &GroupKill,
    readers: impl Future<Output = ()>,
    timeout: Duration,
    start: Instant,
) -> (Option<i32>, bool, Duration) {
    tokio::pin!(readers);
    let deadline = tokio::time::sleep(timeout);
    tokio::pin!(deadline);
    let (mut read_all, mut timed_out) = (false, false);
    let status = loop {
        tokio::select! {
            status = child.wait() => break status,
            () = &mut readers, if !read_all => read_all = true,
            () = &mut deadline, if !timed_out => {
                guard.kill();
                timed_out = true;
            }
        }
    };
    let duration = start.elapsed();
    if status.is_err() || (!read_all && tokio::time::timeout(GRACE, readers).await.is_err()) {
        guard.kill(); // not reaped, or a grandchild still holds the pipes
    }
    (status.ok().and_then(|s| s.code()), timed_out, duration)
}

/// Reads one pipe to its end (or first error), feeding `tail` and `on_line` line by line;
/// a line longer than [`MAX_LINE_BYTES`] comes in pieces.
async fn pump<R: AsyncRead + Unpin>(
    pipe: Option<R>,
    stream: Stream,
    tail: &mut Tail,
    on_line: &(dyn Fn(Stream, &str) + Send + Sync),
) {
    let Some(pipe) = pipe else { return };
    let mut reader = BufReader::new(pipe);
    let mut line = Vec::new();
    loop {
        line.clear();
        let mut limited = (&mut reader).take(MAX_LINE_BYTES as u64);
        match limited.read_until(b'\n', &mut line).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        tail.push(&line);
        on_line(stream, &String::from_utf8_lossy(strip_eol(&line)));
    }
}

/// Strips a trailing `\n` and then a `\r` before it.
fn strip_eol(line: &[u8]) -> &[u8] {
    match line.strip_suffix(b"\n") {
        Some(line) => line.strip_suffix(b"\r").unwrap_or(line),
        None => line,
    }
}

/// The last [`TAIL_BYTES`] of a stream, held in at most twice that.
#[derive(Default)]
struct Tail {
    bytes: Vec<u8>,
    cut: bool,
}

impl Tail {
    /// Appends, dropping old bytes once twice the limit is held.
    fn push(&mut self, bytes: &[u8]) {
        self.bytes.extend_from_slice(bytes);
        if self.bytes.len() > 2 * TAIL_BYTES {
            self.bytes.drain(..self.bytes.len() - TAIL_BYTES);
            self.cut = true;
        }
    }

    /// The last [`TAIL_BYTES`] as lossy UTF-8, starting at a char boundary when cut.
    fn into_string(self) -> String {
        let start = self.bytes.len().saturating_sub(TAIL_BYTES);
        let mut tail = &self.bytes[start..];
        if self.cut || start > 0 {
            while tail.first().is_some_and(|b| b & 0xC0 == 0x80) {
                tail = &tail[1..]; // a UTF-8 continuation byte
            }
        }
        String::from_utf8_lossy(tail).into_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Stream::{Stderr, Stdout};
    use std::sync::Mutex;

    /// What `on_line` saw, with when.
    type Seen = Vec<(Stream, String, Instant)>;

    fn sh(script: &str, cwd: PathBuf) -> Spawn {
        let argv = vec!["/bin/sh".into(), "-c".into(), script.into()];
        let env = vec![("PATH".into(), "/usr/bin:/bin".into())];
        Spawn { argv, cwd, env }
    }

    /// Runs `spawn`, recording what `on_line` saw.
    async fn run_rec(spawn: &Spawn, secs: f64) -> Result<(Finished, Seen), SpawnError> {
        let seen = Mutex::new(Seen::new());
        let rec = |s, l: &str| seen.lock().unwrap().push((s, l.to_owned(), Instant::now()));
        let done = run(spawn, Duration::from_secs_f64(secs), &rec).await?;
        Ok((done, seen.into_inner().unwrap()))
    }

    fn texts(seen: &Seen) -> Vec<(Stream, &str)> {
        seen.iter().map(|(s, l, _)| (*s, l.as_str())).collect()
    }

    /// A script run in a fresh dir, where it writes a grandchild's pid to `pidfile`.
    fn with_pidfile(name: &str, script: &str) -> (Spawn, PathBuf) {
        let dir = std::env::temp_dir().join(format!("agent-process-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        (sh(script, dir.clone()), dir.join("pidfile"))
    }

    /// Waits up to 2 s for the pid in `pidfile` to be gone or a zombie, then removes its dir.
    async fn assert_dies(pidfile: PathBuf) {
        let pid = std::fs::read_to_string(&pidfile).unwrap();
        let _ = std::fs::remove_dir_all(pidfile.parent().unwrap());
        for _ in 0..100 {
            let stat = std::fs::read_to_string(format!("/proc/{}/stat", pid.trim()));
            let state = stat
                .as_deref()
                .map(|s| s.rsplit(')').next().unwrap_or("").trim_start());
            if state.is_err() || state.is_ok_and(|st| st.starts_with(['Z', 'X'])) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("process {} still alive", pid.trim());
    }

    #[tokio::test]
    async fn streams_lines_as_they_arrive() {
        let tmp = std::env::temp_dir();
        let script = "echo first; echo oops >&2; sleep 1; printf 'crlf\\r\\nlast'";
        let (done, seen) = run_rec(&sh(script, tmp), 10.0).await.unwrap();
        let exited = Instant::now();
        assert_eq!(done.stdout, "first\ncrlf\r\nlast");
        assert_eq!(done.stderr, "oops\n");
        assert!(
            exited - seen[0].2 > Duration::from_millis(700),
            "first line not streamed"
        );
        let mut got = texts(&seen);
        got.sort_by_key(|(s, _)| *s == Stderr);
        assert_eq!(
            got,
            [
                (Stdout, "first"),
                (Stdout, "crlf"),
                (Stdout, "last"),
                (Stderr, "oops")
            ]
        );
    }

    #[tokio::test]
    async fn splits_long_lines_and_replaces_invalid_utf8() {
        let tmp = std::env::temp_dir();
        let script = "head -c 200000 /dev/zero | tr '\\0' x; printf '\\n\\377ok\\n'";
        let (done, seen) = run_rec(&sh(script, tmp), 10.0).await.unwrap();
        let lens: Vec<usize> = texts(&seen).iter().map(|(_, l)| l.len()).collect();
        let max = MAX_LINE_BYTES;
        assert_eq!(lens, [max, max, max, 200_000 - 3 * max, 5]);
        assert_eq!(texts(&seen)[4].1, "\u{FFFD}ok");
        assert!(done.stdout.ends_with("x\n\u{FFFD}ok\n"));
    }

    #[tokio::test]
    async fn keeps_only_the_tail() {
        let tmp = std::env::temp_dir();
        let script = "yes 0123456789abcdef | head -c 3145728; printf 'é-END'";
        let (done, seen) = run_rec(&sh(script, tmp), 30.0).await.unwrap();
        let streamed: usize = texts(&seen).iter().map(|(_, l)| l.len() + 1).sum();
        assert_eq!(streamed, 3 * 1024 * 1024 + "é-END\n".len());
        assert!(done.stdout.len() <= TAIL_BYTES && done.stdout.len() > TAIL_BYTES - 4);
        assert!(done.stdout.ends_with("\n0123456789abcdé-END")); // 3 MiB % 17 == 14
        let first = done.stdout.as_bytes()[0];
        assert!(first.is_ascii_hexdigit() || first == b'\n');
    }

    #[test]
    fn tail_starts_at_a_char_boundary() {
        let mut tail = Tail::default();
        tail.push("é".repeat(TAIL_BYTES).as_bytes());
        tail.push(b"x");
        let s = tail.into_string();
        assert!(s.len() <= TAIL_BYTES && s.ends_with("éx") && s.starts_with('é'));
    }

    #[tokio::test]
    async fn returns_exit_code_and_duration() {
        fn assert_send<T: Send>(_: &T) {}
        let spawn = sh("sleep 0.2; exit 3", std::env::temp_dir());
        let fut = run_rec(&spawn, 10.0);
        assert_send(&fut);
        let (done, _) = fut.await.unwrap();
        assert_eq!((done.exit_code, done.timed_out), (Some(3), false));
        assert!(done.duration >= Duration::from_millis(200));
        assert!(done.duration < Duration::from_secs(5));
    }

    #[tokio::test]
    async fn timeout_kills_the_group_and_keeps_output() {
        let script = "echo before; sleep 30 & echo $! > pidfile; wait";
        let (spawn, pidfile) = with_pidfile("timeout", script);
        let started = Instant::now();
        let (done, _) = run_rec(&spawn, 0.3).await.unwrap();
        assert!(started.elapsed() < Duration::from_secs(2));
        assert_eq!((done.exit_code, done.timed_out), (None, true));
        assert_eq!(done.stdout, "before\n");
        assert_dies(pidfile).await;
    }

    #[tokio::test]
    async fn dropping_the_future_kills_the_group() {
        let (spawn, pidfile) = with_pidfile("drop", "sleep 30 & echo $! > pidfile; wait");
        let cancelled = tokio::time::timeout(Duration::from_millis(300), run_rec(&spawn, 60.0));
        assert!(cancelled.await.is_err());
        assert_dies(pidfile).await;
    }

    #[tokio::test]
    async fn grandchild_holding_the_pipes_is_killed_after_the_grace() {
        let (spawn, pidfile) = with_pidfile("grace", "sleep 30 & echo $! > pidfile; echo done");
        let started = Instant::now();
        let (done, _) = run_rec(&spawn, 60.0).await.unwrap();
        assert!(started.elapsed() < Duration::from_secs(2));
        assert_eq!((done.exit_code, done.stdout.as_str()), (Some(0), "done\n"));
        assert_dies(pidfile).await;
    }

    #[tokio::test]
    async fn spawn_failure_reports_os_reason() {
        let missing = Spawn {
            argv: vec!["/no/such".into()],
            ..sh("", std::env::temp_dir())
        };
        let err = run_rec(&missing, 1.0).await.unwrap_err().to_string();
        assert!(err.starts_with("cannot start `/no/such`"), "{err}");
        assert!(err.ends_with("(os error 2)"), "{err}");
        let no_cwd = sh("true", PathBuf::from("/no/such/dir"));
        let err = run_rec(&no_cwd, 1.0).await.unwrap_err().to_string();
        assert!(err.contains("`/no/such/dir`"), "{err}");
        assert!(err.ends_with("(os error 2)"), "{err}");
    }

    #[tokio::test]
    async fn env_is_exactly_what_was_given() {
        let env = vec![("FOO".into(), "bar".into())];
        let spawn = Spawn {
            argv: vec!["/usr/bin/env".into()],
            env,
            ..sh("", std::env::temp_dir())
        };
        let (done, seen) = run_rec(&spawn, 5.0).await.unwrap();
        assert_eq!(done.stdout, "FOO=bar\n");
        assert_eq!(texts(&seen), [(Stdout, "FOO=bar")]);
    }

    #[test]
    fn render_keeps_command_as_one_argument() {
        let template = ["agent", "-p", "do: {command}", "--repo={repository}"].map(String::from);
        let command = r#"it's "quoted"; rm -rf / $(whoami) {repository}"#;
        let want = ["agent", "-p", &format!("do: {command}"), "--repo=/src/repo"];
        assert_eq!(render(&template, command, "/src/repo"), want);
    }

    #[test]
    fn render_without_placeholder_is_unchanged() {
        let template = ["agent", "--flag", "{other}", "{"].map(String::from);
        assert_eq!(render(&template, "cmd", "/repo"), template);
    }
}
