//! The harness shared by every e2e test.
//!
//! [`Orchestra`] runs the real `orchestra` binary on a free port, with its own temporary
//! database, plugin folder and log file, and offers HTTP helpers that return
//! `(status, JSON body)` plus bounded polling ([`Orchestra::wait_for_state`],
//! [`wait_until`]). Nothing here sleeps for correctness: every wait polls a condition
//! until a generous deadline and then fails saying what it last saw.

pub(crate) mod agents;
pub(crate) mod browser;

use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// How long anything a test waits for may take: machines are slow and shared.
pub(crate) const TIMEOUT: Duration = Duration::from_secs(60);
/// How often polling looks again.
const POLL: Duration = Duration::from_millis(20);
/// States no worker moves a job out of.
pub(crate) const TERMINAL: [&str; 3] = ["succeeded", "failed", "cancelled"];
/// Lines of the host's log shown when a test fails.
const LOG_TAIL_LINES: usize = 80;

/// The Cargo workspace root.
pub(crate) fn workspace() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the host crate lies inside the workspace")
}

/// The built example plugin `name` (`scripts/plugins.sh` puts it there).
pub(crate) fn plugin_module(name: &str) -> PathBuf {
    let path = workspace()
        .join("target/wasm32-wasip2/plugin")
        .join(format!("{name}.wasm"));
    assert!(
        path.is_file(),
        "build the plugins first: bash scripts/plugins.sh ({} is missing)",
        path.display()
    );
    path
}

/// The sha256 (hex) of the built example plugin `name`: the digest the host reports.
pub(crate) fn module_digest(name: &str) -> String {
    let bytes = fs::read(plugin_module(name)).expect("reading a built plugin");
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Calls `probe` every 20 ms until it returns `Ok`, and returns that value. After
/// `timeout`, panics naming `what` was awaited and the last `Err` (what was seen).
pub(crate) fn wait_until<T>(
    what: &str,
    timeout: Duration,
    mut probe: impl FnMut() -> Result<T, String>,
) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        match probe() {
            Ok(value) => return value,
            Err(seen) if Instant::now() >= deadline => {
                panic!("timed out after {timeout:?} waiting for {what}; last seen: {seen}")
            }
            Err(_) => std::thread::sleep(POLL),
        }
    }
}

/// A job's `state`.
pub(crate) fn state(job: &Value) -> &str {
    job["state"]
        .as_str()
        .unwrap_or_else(|| panic!("job without a state: {job}"))
}

/// A job's `error.kind`, if it has an error.
pub(crate) fn error_kind(job: &Value) -> Option<&str> {
    job["error"]["kind"].as_str()
}

/// The states of a job's history, oldest first.
pub(crate) fn history_states(job: &Value) -> Vec<String> {
    job["history"]
        .as_array()
        .unwrap_or_else(|| panic!("job without a history: {job}"))
        .iter()
        .map(|t| {
            t["state"]
                .as_str()
                .expect("a transition has a state")
                .to_owned()
        })
        .collect()
}

/// Whether `job`'s history has an entry into `state` whose reason contains `reason`.
pub(crate) fn history_has(job: &Value, state: &str, reason: &str) -> bool {
    job["history"].as_array().is_some_and(|history| {
        history.iter().any(|t| {
            t["state"] == state && t["reason"].as_str().is_some_and(|r| r.contains(reason))
        })
    })
}

/// How often a job entered `wanted`.
pub(crate) fn times_entered(job: &Value, wanted: &str) -> usize {
    history_states(job).iter().filter(|s| *s == wanted).count()
}

/// Now, in milliseconds since the epoch.
pub(crate) fn now_ms() -> i64 {
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("a clock after 1970");
    i64::try_from(since.as_millis()).expect("a sane clock")
}

/// RFC 3339 text for `ms` since the epoch.
pub(crate) fn rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .expect("a representable time")
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// A time field (RFC 3339) of a job or a log line, in Unix milliseconds.
pub(crate) fn time_ms(item: &Value, field: &str) -> i64 {
    let text = item[field]
        .as_str()
        .unwrap_or_else(|| panic!("no `{field}` time in {item}"));
    chrono::DateTime::parse_from_rfc3339(text)
        .unwrap_or_else(|e| panic!("`{field}` = {text:?} is not RFC 3339: {e}"))
        .timestamp_millis()
}

/// When the job's guest started: the time of its first log line (every example plugin
/// logs first thing).
pub(crate) fn guest_started_ms(job: &Value) -> i64 {
    let first = &job["logs"][0];
    assert!(first.is_object(), "the job has no log line: {job}");
    time_ms(first, "at")
}

/// Whether a log line at `level` contains `text`.
pub(crate) fn has_log(job: &Value, level: &str, text: &str) -> bool {
    job["logs"].as_array().is_some_and(|logs| {
        logs.iter().any(|line| {
            line["level"] == level && line["message"].as_str().is_some_and(|m| m.contains(text))
        })
    })
}

/// How a host is started: flags and the plugin folder's initial content.
#[derive(Debug, Clone)]
pub(crate) struct Options {
    workers: usize,
    repo_root: Option<PathBuf>,
    host_id: Option<String>,
    lease_seconds: Option<u64>,
    grace_seconds: Option<u64>,
    /// Compile into a cache of this host's own instead of the suite's shared one.
    own_cache: bool,
    /// Whether the API asks for no token.
    no_auth: bool,
    /// `(built module, installed as)`.
    plugins: Vec<(String, String)>,
    /// `(plugin name, NAME.toml text)`.
    manifests: Vec<(String, String)>,
    /// `(file name, bytes)` written into the plugin folder as they are.
    files: Vec<(String, Vec<u8>)>,
    /// The settings file's text (`--config`), if any.
    config: Option<String>,
    /// The database file, if not `o.db` in the host's folder.
    db: Option<PathBuf>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            workers: 2,
            repo_root: None,
            host_id: None,
            lease_seconds: None,
            grace_seconds: None,
            own_cache: false,
            no_auth: false,
            plugins: Vec::new(),
            manifests: Vec::new(),
            files: Vec::new(),
            config: None,
            db: None,
        }
    }
}

impl Options {
    /// Two workers, no plugins.
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// `--workers`.
    pub(crate) fn workers(mut self, n: usize) -> Self {
        self.workers = n;
        self
    }

    /// `--repo-root`.
    pub(crate) fn repo_root(mut self, dir: &Path) -> Self {
        self.repo_root = Some(dir.to_owned());
        self
    }

    /// `--host-id`.
    pub(crate) fn host_id(mut self, id: &str) -> Self {
        self.host_id = Some(id.to_owned());
        self
    }

    /// `--lease-seconds`.
    pub(crate) fn lease_seconds(mut self, seconds: u64) -> Self {
        self.lease_seconds = Some(seconds);
        self
    }

    /// `--grace-seconds`.
    pub(crate) fn grace_seconds(mut self, seconds: u64) -> Self {
        self.grace_seconds = Some(seconds);
        self
    }

    /// Installs the example plugin `name` under its own name.
    pub(crate) fn plugin(self, name: &str) -> Self {
        self.plugin_as(name, name)
    }

    /// Installs the example plugin `module` as `name.wasm`.
    pub(crate) fn plugin_as(mut self, module: &str, name: &str) -> Self {
        self.plugins.push((module.to_owned(), name.to_owned()));
        self
    }

    /// Writes `bytes` into the plugin folder as `file` before the host starts.
    pub(crate) fn plugin_file(mut self, file: &str, bytes: Vec<u8>) -> Self {
        self.files.push((file.to_owned(), bytes));
        self
    }

    /// Gives the host a compiled-plugin cache of its own (`cache/` beside its database).
    pub(crate) fn own_cache(mut self) -> Self {
        self.own_cache = true;
        self
    }

    /// Serves the API without tokens (`--no-auth`).
    pub(crate) fn no_auth(mut self) -> Self {
        self.no_auth = true;
        self
    }

    /// Writes `name.toml` with `toml`.
    pub(crate) fn manifest(mut self, name: &str, toml: &str) -> Self {
        self.manifests.push((name.to_owned(), toml.to_owned()));
        self
    }

    /// `--db`: a database file elsewhere than in the host's own folder.
    pub(crate) fn db(mut self, path: &Path) -> Self {
        self.db = Some(path.to_owned());
        self
    }

    /// The database file of a host in `dir`.
    fn db_path(&self, dir: &Path) -> PathBuf {
        self.db.clone().unwrap_or_else(|| dir.join("o.db"))
    }

    /// `--config` with a settings file holding `toml`.
    pub(crate) fn config(mut self, toml: &str) -> Self {
        self.config = Some(toml.to_owned());
        self
    }

    /// The `serve` flags for a host in `dir` listening on `port`.
    fn serve_args(&self, dir: &Path, port: u16) -> Vec<String> {
        let path = |p: PathBuf| p.to_string_lossy().into_owned();
        let mut args = vec![
            "serve".to_owned(),
            "--listen".to_owned(),
            format!("127.0.0.1:{port}"),
            "--db".to_owned(),
            path(self.db_path(dir)),
            "--plugins".to_owned(),
            path(dir.join("plugins")),
            "--cache-dir".to_owned(),
            path(if self.own_cache {
                dir.join("cache")
            } else {
                workspace().join("target/e2e-cache")
            }),
            "--workers".to_owned(),
            self.workers.to_string(),
        ];
        let optional = [
            ("--repo-root", self.repo_root.clone().map(path)),
            ("--host-id", self.host_id.clone()),
            ("--lease-seconds", self.lease_seconds.map(|s| s.to_string())),
            ("--grace-seconds", self.grace_seconds.map(|s| s.to_string())),
            (
                "--config",
                self.config.as_ref().map(|_| path(config_file(dir))),
            ),
        ];
        for (flag, value) in optional {
            if let Some(value) = value {
                args.extend([flag.to_owned(), value]);
            }
        }
        if self.no_auth {
            args.push("--no-auth".to_owned());
        }
        args
    }
}

/// The settings file of a host in `dir`.
fn config_file(dir: &Path) -> PathBuf {
    dir.join("orchestra.toml")
}

/// A port nobody listened on a moment ago.
pub(crate) fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("binding an ephemeral port");
    listener
        .local_addr()
        .expect("a bound socket has an address")
        .port()
}

/// A blocking HTTP client that hands back every status as a value and, given a token,
/// sends it with every request that carries no `Authorization` of its own.
pub(crate) fn new_agent(token: Option<&str>, timeout: Duration) -> ureq::Agent {
    let config = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(timeout));
    let Some(token) = token else {
        return config.build().into();
    };
    let bearer: ureq::http::HeaderValue = format!("Bearer {token}").parse().expect("a header");
    config
        .middleware(
            move |mut request: ureq::http::Request<ureq::SendBody>,
                  next: ureq::middleware::MiddlewareNext| {
                request
                    .headers_mut()
                    .entry("authorization")
                    .or_insert(bearer.clone());
                next.handle(request)
            },
        )
        .build()
        .into()
}

/// How long the harness's requests may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// The admin token a host printed at its first start, if its log shows one.
fn printed_token(log: &str) -> Option<String> {
    log.lines()
        .map(str::trim)
        .find(|line| line.starts_with("orch_") && !line.contains(' '))
        .map(str::to_owned)
}

/// Writes `bytes` to `path` through a temporary file and a rename, so a watcher never
/// sees a partial file. The temporary name does not end in `.wasm` or `.toml`.
fn write_atomically(path: &Path, bytes: &[u8]) {
    let tmp = path.with_extension("partial");
    fs::write(&tmp, bytes).unwrap_or_else(|e| panic!("writing {}: {e}", tmp.display()));
    fs::rename(&tmp, path).unwrap_or_else(|e| panic!("renaming onto {}: {e}", path.display()));
}

/// A running `orchestra serve` with its own temporary folder; killed when dropped.
pub(crate) struct Orchestra {
    dir: tempfile::TempDir,
    port: u16,
    options: Options,
    child: Option<Child>,
    agent: ureq::Agent,
    /// The admin token the host printed at its first start.
    token: Option<String>,
}

impl Orchestra {
    /// Starts a host with `options` on a free port and waits until `/healthz` answers
    /// and its plugins have compiled; panics with the host's log if it does not.
    pub(crate) fn start(options: Options) -> Orchestra {
        let host = Orchestra::try_start(options).unwrap_or_else(|why| panic!("{why}"));
        host.wait_compiled();
        host
    }

    /// Waits until no plugin is listed as `compiling`.
    pub(crate) fn wait_compiled(&self) {
        wait_until("the plugins to compile", TIMEOUT, || {
            let compiling: Vec<Value> = self
                .plugins()
                .into_iter()
                .filter(|p| p["status"] == "compiling")
                .collect();
            if compiling.is_empty() {
                Ok(())
            } else {
                Err(format!("{compiling:?}"))
            }
        });
    }

    /// Like [`Orchestra::start`], but a host that exits before it is ready is an `Err`
    /// carrying its log.
    pub(crate) fn try_start(options: Options) -> Result<Orchestra, String> {
        let dir = tempfile::Builder::new()
            .prefix("orchestra-e2e-")
            .tempdir()
            .expect("creating a temp dir");
        let mut host = Orchestra {
            dir,
            port: 0,
            options,
            child: None,
            agent: new_agent(None, REQUEST_TIMEOUT),
            token: None,
        };
        fs::create_dir(host.plugin_dir()).expect("creating the plugin folder");
        for (module, name) in host.options.plugins.clone() {
            host.install_plugin(&module, &name);
        }
        for (name, toml) in host.options.manifests.clone() {
            host.write_manifest(&name, &toml);
        }
        for (file, bytes) in host.options.files.clone() {
            host.write_plugin_file(&file, &bytes);
        }
        if let Some(toml) = &host.options.config {
            fs::write(config_file(host.dir.path()), toml).expect("writing the settings file");
        }
        // Another process may take the free port between our probe and the host's bind.
        const TRIES: u32 = 3;
        for attempt in 1..=TRIES {
            host.port = free_port();
            host.spawn();
            match host.wait_ready() {
                Ok(()) => {
                    host.token = printed_token(&host.log());
                    host.agent = new_agent(host.token.as_deref(), REQUEST_TIMEOUT);
                    return Ok(host);
                }
                Err(why) if attempt < TRIES && why.contains("Address already in use") => {}
                Err(why) => return Err(why),
            }
        }
        unreachable!("the last try returns")
    }

    /// Starts the host again on the same database, plugin folder, port and flags, after
    /// [`Orchestra::kill`] or [`Orchestra::terminate`].
    pub(crate) fn restart(&mut self) {
        assert!(
            self.child.is_none(),
            "restart() needs the previous process stopped"
        );
        self.agent = new_agent(self.token.as_deref(), REQUEST_TIMEOUT);
        self.spawn();
        if let Err(why) = self.wait_ready() {
            panic!("{why}");
        }
        self.wait_compiled();
    }

    fn spawn(&mut self) {
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .expect("opening the host log");
        let mut command = Command::new(env!("CARGO_BIN_EXE_orchestra"));
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("ORCHESTRA_") {
                command.env_remove(key);
            }
        }
        command
            .args(self.options.serve_args(self.dir.path(), self.port))
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("cloning the log handle"))
            .stderr(log);
        self.child = Some(command.spawn().expect("spawning orchestra"));
    }

    /// Waits until `/healthz` answers 200; an error (with the log) if the process exits
    /// first or the deadline passes.
    fn wait_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + TIMEOUT;
        let probe = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(2)))
            .max_idle_connections(0)
            .build()
            .new_agent();
        loop {
            let child = self.child.as_mut().expect("a spawned process");
            if let Some(status) = child.try_wait().expect("polling the host process") {
                self.child = None;
                return Err(format!(
                    "orchestra exited ({status}) before it was ready:\n{}",
                    self.log()
                ));
            }
            if let Ok(response) = probe.get(self.url("/healthz")).call()
                && response.status() == 200
            {
                return Ok(());
            }
            if Instant::now() >= deadline {
                self.kill();
                return Err(format!(
                    "orchestra not ready after {TIMEOUT:?}:\n{}",
                    self.log()
                ));
            }
            std::thread::sleep(POLL);
        }
    }

    /// Kills the process at once (SIGKILL) and reaps it.
    pub(crate) fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Sends SIGTERM and waits for the process to exit; panics (after killing it) if it
    /// is still running after `timeout`.
    pub(crate) fn terminate(&mut self, timeout: Duration) -> ExitStatus {
        let pid = self.pid().to_string();
        let sent = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("running kill");
        assert!(sent.success(), "kill -TERM {pid} failed: {sent}");
        let child = self.child.as_mut().expect("a running host");
        let status = wait_until("the host to exit after SIGTERM", timeout, || {
            child
                .try_wait()
                .expect("polling the host process")
                .ok_or_else(|| "still running".to_owned())
        });
        self.child = None;
        status
    }

    /// The host's database file.
    pub(crate) fn db_path(&self) -> PathBuf {
        self.options.db_path(self.dir.path())
    }

    /// The host process id.
    pub(crate) fn pid(&self) -> u32 {
        self.child.as_ref().expect("a running host").id()
    }

    /// Everything the host (every run of it) wrote to stdout and stderr.
    pub(crate) fn log(&self) -> String {
        fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// Copies the whole log into the folder `E2E_KEEP_LOGS` names, if set, as
    /// `{host id or port}-{process id}.log` (a failing test shows only its tail).
    pub(crate) fn keep_log(&self) {
        let Some(dir) = std::env::var_os("E2E_KEEP_LOGS") else {
            return;
        };
        let name = self
            .options
            .host_id
            .clone()
            .unwrap_or_else(|| self.port.to_string());
        let path = Path::new(&dir).join(format!("{name}-{}.log", std::process::id()));
        let kept = fs::create_dir_all(&dir).and_then(|()| fs::copy(self.log_path(), &path));
        match kept {
            Ok(_) => eprintln!("the whole log of host {name} is in {}", path.display()),
            Err(e) => eprintln!("keeping the log of host {name} in {}: {e}", path.display()),
        }
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("orchestra.log")
    }

    /// The plugin folder.
    pub(crate) fn plugin_dir(&self) -> PathBuf {
        self.dir.path().join("plugins")
    }

    /// The compiled-plugin cache of a host started with [`Options::own_cache`].
    pub(crate) fn cache_dir(&self) -> PathBuf {
        self.dir.path().join("cache")
    }

    /// Installs (or replaces, atomically) the example plugin `module` as `name.wasm`.
    pub(crate) fn install_plugin(&self, module: &str, name: &str) {
        let bytes = fs::read(plugin_module(module)).expect("reading a built plugin");
        self.write_plugin_file(&format!("{name}.wasm"), &bytes);
    }

    /// Writes `file` in the plugin folder atomically.
    pub(crate) fn write_plugin_file(&self, file: &str, bytes: &[u8]) {
        write_atomically(&self.plugin_dir().join(file), bytes);
    }

    /// Writes `name.toml` atomically.
    pub(crate) fn write_manifest(&self, name: &str, toml: &str) {
        self.write_plugin_file(&format!("{name}.toml"), toml.as_bytes());
    }

    /// Deletes `name.wasm`.
    pub(crate) fn remove_plugin(&self, name: &str) {
        let path = self.plugin_dir().join(format!("{name}.wasm"));
        fs::remove_file(&path).unwrap_or_else(|e| panic!("removing {}: {e}", path.display()));
    }

    /// The `Authorization` header value of the host's admin token.
    pub(crate) fn authorization(&self) -> String {
        format!("Bearer {}", self.token().unwrap_or("none"))
    }

    /// The admin token the host printed at its first start.
    pub(crate) fn token(&self) -> Option<&str> {
        self.token.as_deref()
    }

    /// The URL of `path` on this host.
    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// `GET path`.
    pub(crate) fn get(&self, path: &str) -> (u16, Value) {
        answer(self.agent.get(self.url(path)).call(), "GET", path)
    }

    /// Opens the WebSocket event stream at `path` and delivers each message's JSON, in
    /// order. (A minimal client: the handshake, then unmasked server frames.)
    pub(crate) fn listen_ws(&self, path: &str) -> mpsc::Receiver<Value> {
        let mut socket = TcpStream::connect(("127.0.0.1", self.port)).expect("connecting");
        let authorization = self.authorization();
        write!(
            socket,
            "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n\
             Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
             Sec-WebSocket-Version: 13\r\nAuthorization: {authorization}\r\n\r\n"
        )
        .expect("sending the handshake");
        let mut reader = BufReader::new(socket);
        let mut status = String::new();
        reader.read_line(&mut status).expect("reading the status");
        assert!(status.contains(" 101 "), "not upgraded: {status}");
        loop {
            let mut header = String::new();
            reader.read_line(&mut header).expect("reading a header");
            if header == "\r\n" {
                break;
            }
        }
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            while let Some((opcode, payload)) = read_frame(&mut reader) {
                if opcode == 8 {
                    return;
                }
                if opcode == 1 {
                    let event = serde_json::from_slice(&payload).expect("a JSON message");
                    if tx.send(event).is_err() {
                        return;
                    }
                }
            }
        });
        rx
    }

    /// `GET path` with one extra header.
    pub(crate) fn get_with_header(&self, path: &str, name: &str, value: &str) -> (u16, Value) {
        answer(
            self.agent.get(self.url(path)).header(name, value).call(),
            "GET",
            path,
        )
    }

    /// `POST path` with a JSON body.
    pub(crate) fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        answer(
            self.agent.post(self.url(path)).send_json(body),
            "POST",
            path,
        )
    }

    /// `POST path` without a body.
    pub(crate) fn post_empty(&self, path: &str) -> (u16, Value) {
        answer(self.agent.post(self.url(path)).send_empty(), "POST", path)
    }

    /// `POST path` with raw bytes and, if given, a `Content-Type`.
    pub(crate) fn post_raw(
        &self,
        path: &str,
        content_type: Option<&str>,
        body: &[u8],
    ) -> (u16, Value) {
        let mut request = self.agent.post(self.url(path));
        if let Some(content_type) = content_type {
            request = request.header("content-type", content_type);
        }
        answer(request.send(body), "POST", path)
    }

    /// `PUT path` with a JSON body.
    pub(crate) fn put(&self, path: &str, body: &Value) -> (u16, Value) {
        answer(self.agent.put(self.url(path)).send_json(body), "PUT", path)
    }

    /// `PUT path` without a body.
    pub(crate) fn put_empty(&self, path: &str) -> (u16, Value) {
        answer(self.agent.put(self.url(path)).send_empty(), "PUT", path)
    }

    /// `DELETE path`.
    pub(crate) fn delete(&self, path: &str) -> (u16, Value) {
        answer(self.agent.delete(self.url(path)).call(), "DELETE", path)
    }

    /// `PATCH path` with a JSON body.
    pub(crate) fn patch(&self, path: &str, body: &Value) -> (u16, Value) {
        answer(
            self.agent.patch(self.url(path)).send_json(body),
            "PATCH",
            path,
        )
    }

    /// Opens the event stream at `path` (resuming after event `last_event_id`, if
    /// given) and delivers each event's JSON data, in order (checking that its `id` is the SSE id).
    pub(crate) fn listen(&self, path: &str, last_event_id: Option<&str>) -> mpsc::Receiver<Value> {
        let mut request = ureq::get(self.url(path)).header("authorization", self.authorization());
        if let Some(last) = last_event_id {
            request = request.header("last-event-id", last);
        }
        let response = request.call().expect("the event stream opens");
        assert_eq!(
            response
                .headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok()),
            Some("text/event-stream")
        );
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let reader = BufReader::new(response.into_body().into_reader());
            let mut id = None;
            for line in reader.lines().map_while(Result::ok) {
                if let Some(sse_id) = line.strip_prefix("id: ") {
                    id = Some(sse_id.to_owned());
                } else if let Some(data) = line.strip_prefix("data: ") {
                    let event: Value = serde_json::from_str(data).expect("event data is JSON");
                    let sse_id = id.take();
                    assert_eq!(
                        event["id"].as_str(),
                        sse_id.as_deref(),
                        "the SSE id is the event's"
                    );
                    if tx.send(event).is_err() {
                        return;
                    }
                }
            }
        });
        rx
    }

    /// Submits a job (the whole `POST /api/jobs` body); asserts 201 and returns its id.
    pub(crate) fn submit_job(&self, body: Value) -> String {
        let (status, answer) = self.post("/api/jobs", &body);
        assert_eq!(
            status, 201,
            "POST /api/jobs {body} answered {status}: {answer}"
        );
        answer["id"]
            .as_str()
            .unwrap_or_else(|| panic!("submission answer without an id: {answer}"))
            .to_owned()
    }

    /// Submits a job for `plugin` with `args`; returns its id.
    pub(crate) fn submit(&self, plugin: &str, args: Value) -> String {
        self.submit_job(json!({"plugin": plugin, "args": args}))
    }

    /// `GET /api/jobs/{id}`, asserting 200.
    pub(crate) fn job(&self, id: &str) -> Value {
        let (status, job) = self.get(&format!("/api/jobs/{id}"));
        assert_eq!(status, 200, "GET /api/jobs/{id} answered {status}: {job}");
        job
    }

    /// Every line of job `id`'s log, read through `GET /api/jobs/{id}/logs?{query}` page
    /// by page.
    pub(crate) fn log_lines(&self, id: &str, query: &str) -> Vec<Value> {
        let mut lines = Vec::new();
        let mut after = String::new();
        loop {
            let path = format!("/api/jobs/{id}/logs?{query}{after}");
            let (status, page) = self.get(&path);
            assert_eq!(status, 200, "GET {path} answered {status}: {page}");
            lines.extend(page["lines"].as_array().expect("a page has lines").clone());
            match page["next_cursor"].as_i64() {
                Some(cursor) => after = format!("&after={cursor}"),
                None => return lines,
            }
        }
    }

    /// Polls the job until it is in one of `states`, and returns it. Panics with the job
    /// on timeout, or at once if it ended in a terminal state not asked for.
    pub(crate) fn wait_for_state(&self, id: &str, states: &[&str], timeout: Duration) -> Value {
        wait_until(&format!("job {id} to be {states:?}"), timeout, || {
            let job = self.job(id);
            let now = state(&job);
            if states.contains(&now) {
                Ok(job)
            } else if TERMINAL.contains(&now) {
                panic!("job {id} ended {now}, not {states:?}: {job:#}")
            } else {
                Err(job.to_string())
            }
        })
    }

    /// Waits until the guest of job `id` is seen running: the job is `processing` and
    /// shows a log line (every example plugin logs first thing), which is later than
    /// its claim. Returns the job; panics if it ends first.
    pub(crate) fn wait_for_guest(&self, id: &str) -> Value {
        wait_until(&format!("the guest of job {id} to run"), TIMEOUT, || {
            let job = self.job(id);
            let logged = job["logs"].as_array().is_some_and(|logs| !logs.is_empty());
            match state(&job) {
                "processing" if logged => Ok(job),
                done if TERMINAL.contains(&done) => {
                    panic!(
                        "job {id} ended {done} before its guest was seen running (no log line while it ran): {job:#}"
                    )
                }
                _ => Err(job.to_string()),
            }
        })
    }

    /// Waits for every job of `ids` to be in one of `states`, within one `timeout`.
    pub(crate) fn wait_for_all(
        &self,
        ids: &[String],
        states: &[&str],
        timeout: Duration,
    ) -> Vec<Value> {
        let deadline = Instant::now() + timeout;
        ids.iter()
            .map(|id| {
                self.wait_for_state(
                    id,
                    states,
                    deadline.saturating_duration_since(Instant::now()),
                )
            })
            .collect()
    }

    /// `POST /api/jobs/{id}/retry`.
    pub(crate) fn retry(&self, id: &str) -> (u16, Value) {
        self.post_empty(&format!("/api/jobs/{id}/retry"))
    }

    /// `POST /api/jobs/{id}/cancel`.
    pub(crate) fn cancel(&self, id: &str) -> (u16, Value) {
        self.post_empty(&format!("/api/jobs/{id}/cancel"))
    }

    /// `GET /api/jobs?{query}`: the page's jobs and its `next_cursor`.
    pub(crate) fn list(&self, query: &str) -> (Vec<Value>, Option<String>) {
        let (status, page) = self.get(&format!("/api/jobs?{query}"));
        assert_eq!(
            status, 200,
            "GET /api/jobs?{query} answered {status}: {page}"
        );
        let jobs = page["jobs"]
            .as_array()
            .unwrap_or_else(|| panic!("a page without jobs: {page}"))
            .clone();
        (jobs, page["next_cursor"].as_str().map(str::to_owned))
    }

    /// The ids of the jobs `GET /api/jobs?{query}` lists on its first page.
    pub(crate) fn list_ids(&self, query: &str) -> Vec<String> {
        let (jobs, _) = self.list(query);
        jobs.iter()
            .map(|job| {
                job["id"]
                    .as_str()
                    .expect("a listed job has an id")
                    .to_owned()
            })
            .collect()
    }

    /// `GET /api/plugins`.
    pub(crate) fn plugins(&self) -> Vec<Value> {
        let (status, body) = self.get("/api/plugins");
        assert_eq!(status, 200, "GET /api/plugins answered {status}: {body}");
        body["plugins"].as_array().expect("a plugin list").clone()
    }

    /// One plugin as `GET /api/plugins` shows it, if listed.
    pub(crate) fn plugin(&self, name: &str) -> Option<Value> {
        self.plugins().into_iter().find(|p| p["name"] == name)
    }

    /// Polls `GET /api/plugins` until plugin `name` satisfies `ready` (`None` when it
    /// is not listed), and returns its entry.
    pub(crate) fn wait_for_plugin(
        &self,
        name: &str,
        what: &str,
        ready: impl Fn(Option<&Value>) -> bool,
    ) -> Option<Value> {
        wait_until(&format!("plugin {name} to be {what}"), TIMEOUT, || {
            let plugin = self.plugin(name);
            if ready(plugin.as_ref()) {
                Ok(plugin)
            } else {
                Err(format!("{plugin:?}"))
            }
        })
    }

    /// `GET /api/queues`.
    pub(crate) fn queues(&self) -> Vec<Value> {
        let (status, body) = self.get("/api/queues");
        assert_eq!(status, 200, "GET /api/queues answered {status}: {body}");
        body["queues"].as_array().expect("a queue list").clone()
    }

    /// Job counts by state, summed over every queue.
    pub(crate) fn counts(&self) -> BTreeMap<String, u64> {
        let mut totals = BTreeMap::new();
        for queue in self.queues() {
            for (state, n) in queue["counts"].as_object().expect("a queue has counts") {
                *totals.entry(state.clone()).or_default() += n.as_u64().expect("a count");
            }
        }
        totals
    }

    /// Every stored job, over every queue and state.
    pub(crate) fn count_jobs(&self) -> u64 {
        self.counts().values().sum()
    }
}

/// Turns a ureq outcome into `(status, body)`: JSON when the body is JSON, `null` when
/// empty, else the text as a JSON string. Transport failures panic.
/// One WebSocket frame from the server: its opcode and payload; `None` at the end.
fn read_frame(reader: &mut impl Read) -> Option<(u8, Vec<u8>)> {
    let mut head = [0u8; 2];
    reader.read_exact(&mut head).ok()?;
    let len = match head[1] & 0x7f {
        126 => {
            let mut bytes = [0u8; 2];
            reader.read_exact(&mut bytes).ok()?;
            u64::from(u16::from_be_bytes(bytes))
        }
        127 => {
            let mut bytes = [0u8; 8];
            reader.read_exact(&mut bytes).ok()?;
            u64::from_be_bytes(bytes)
        }
        short => u64::from(short),
    };
    let mut payload = vec![0; usize::try_from(len).ok()?];
    reader.read_exact(&mut payload).ok()?;
    Some((head[0] & 0x0f, payload))
}

fn answer(
    result: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
    method: &str,
    path: &str,
) -> (u16, Value) {
    let mut response = result.unwrap_or_else(|e| panic!("{method} {path} failed: {e}"));
    let status = response.status().as_u16();
    let text = response
        .body_mut()
        .read_to_string()
        .unwrap_or_else(|e| panic!("{method} {path}: reading the body failed: {e}"));
    let body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    };
    (status, body)
}

impl Drop for Orchestra {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            self.keep_log();
            let log = self.log();
            let lines: Vec<&str> = log.lines().collect();
            let tail = &lines[lines.len().saturating_sub(LOG_TAIL_LINES)..];
            eprintln!(
                "--- orchestra log (last {} lines) ---\n{}",
                tail.len(),
                tail.join("\n")
            );
        }
    }
}
