//! Outgoing HTTP requests (`wasi:http`): a plugin reaches the hosts its
//! `allowed_outbound_hosts` lists, within the operator's list of the same name, and
//! nothing else; every request is written into the job's log.

use crate::common::{Options, Orchestra, TERMINAL, TIMEOUT, error_kind, has_log, state};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// The body the local server answers every request with.
const BODY: &str = "hello from the local server";

/// A local HTTP server that answers every request with `answer`, counting them.
struct Server {
    /// `http://127.0.0.1:PORT`.
    origin: String,
    served: Arc<AtomicUsize>,
}

/// Answers 200 with [`BODY`].
fn greet(stream: &mut TcpStream) {
    let _ = write!(
        stream,
        "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{BODY}",
        BODY.len()
    );
}

impl Server {
    /// A server that answers with [`greet`].
    fn start() -> Server {
        Server::answering(greet)
    }

    /// A server that reads each request's head, then leaves the rest to `answer` on a
    /// thread of its own.
    fn answering(answer: fn(&mut TcpStream)) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").expect("binding the server");
        let origin = format!("http://{}", listener.local_addr().expect("an address"));
        let served = Arc::new(AtomicUsize::new(0));
        let count = served.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let mut reader = BufReader::new(&stream);
                let mut line = String::new();
                while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                    line.clear();
                }
                count.fetch_add(1, Ordering::SeqCst);
                std::thread::spawn(move || answer(&mut stream));
            }
        });
        Server { origin, served }
    }

    fn served(&self) -> usize {
        self.served.load(Ordering::SeqCst)
    }
}

/// Starts a host with `fetch` under `manifest` and the operator's `config`, fetches
/// `url` with one attempt and returns the finished job.
fn fetch(manifest: &str, config: &str, url: &str) -> (Orchestra, Value) {
    let host = Orchestra::start(
        Options::new()
            .plugin("fetch")
            .manifest("fetch", manifest)
            .config(config),
    );
    let id = host.submit_job(json!({"plugin": "fetch", "args": {"url": url}, "max_attempts": 1}));
    let job = host.wait_for_state(&id, &TERMINAL, TIMEOUT);
    (host, job)
}

fn allow(hosts: &[&str]) -> String {
    format!("allowed_outbound_hosts = {hosts:?}\n")
}

/// Asserts `job` failed, fatally, naming the refused `authority` and the setting.
fn assert_refused(job: &Value, authority: &str) {
    assert_eq!(state(job), "failed", "{job:#}");
    assert_eq!(error_kind(job), Some("fatal"), "{job:#}");
    let message = job["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("HttpRequestDenied"), "{job:#}");
    assert!(
        message.contains(&format!(
            "{authority} is not among the hosts this plugin may reach"
        )) && message.contains("allowed_outbound_hosts"),
        "{job:#}"
    );
    assert!(
        has_log(job, "warn", "refused"),
        "the refusal is logged: {job:#}"
    );
}

#[test]
fn an_allowed_host_is_reached_and_the_request_logged() {
    let server = Server::start();
    let url = format!("{}/greeting?token=secret", server.origin);
    let allowed = allow(&[&server.origin]);
    let (host, job) = fetch(&allowed, &allowed, &url);
    assert_eq!(state(&job), "succeeded", "{job:#}");
    assert_eq!(
        job["result"],
        json!({"status": 200, "body": BODY}),
        "{job:#}"
    );
    assert_eq!(server.served(), 1);
    let logged = format!("GET {}/greeting?… → 200", server.origin);
    assert!(has_log(&job, "info", &logged), "{job:#}");
    assert!(
        !job["logs"].to_string().contains("secret"),
        "no query in the log: {job:#}"
    );
    let (_, plugins) = host.get("/api/plugins");
    let fetch = &plugins["plugins"][0];
    assert_eq!(
        fetch["allowed_outbound_hosts"],
        json!([server.origin.clone()]),
        "{plugins:#}"
    );
    assert_eq!(fetch["outbound_refused"], json!([]), "{plugins:#}");
}

#[test]
fn a_host_not_listed_is_refused() {
    let server = Server::start();
    let other = Server::start();
    let allowed = allow(&[&server.origin]);
    let (_host, job) = fetch(&allowed, &allowed, &format!("{}/", other.origin));
    let authority = other.origin.trim_start_matches("http://");
    assert_refused(&job, authority);
    assert_eq!(other.served(), 0, "nothing was sent");
}

#[test]
fn without_allowed_outbound_hosts_everything_is_refused() {
    let server = Server::start();
    let (_host, job) = fetch("", &allow(&["http://*:80", &server.origin]), &server.origin);
    assert_refused(&job, server.origin.trim_start_matches("http://"));
    assert_eq!(server.served(), 0);
}

#[test]
fn the_operators_list_caps_the_plugins() {
    let server = Server::start();
    let manifest = allow(&[&server.origin, "https://api.example.com"]);
    let (host, job) = fetch(
        &manifest,
        &allow(&["https://*.example.com"]),
        &server.origin,
    );
    assert_refused(&job, server.origin.trim_start_matches("http://"));
    assert_eq!(server.served(), 0);
    let (_, plugins) = host.get("/api/plugins");
    let fetch = &plugins["plugins"][0];
    assert_eq!(
        fetch["allowed_outbound_hosts"],
        json!(["https://api.example.com:443"])
    );
    assert_eq!(
        fetch["outbound_refused"],
        json!([format!("{}", server.origin)]),
        "{plugins:#}"
    );
}

#[test]
fn a_server_that_never_answers_is_cut_off_by_the_runs_deadline() {
    let server = Server::answering(|_stream| std::thread::sleep(Duration::from_secs(600)));
    let allowed = allow(&[&server.origin]);
    let started = Instant::now();
    let (_host, job) = fetch(
        &format!("{allowed}timeout_ms = 1000\n"),
        &allowed,
        &server.origin,
    );
    assert_eq!(state(&job), "failed", "{job:#}");
    assert_eq!(error_kind(&job), Some("timeout"), "{job:#}");
    assert_eq!(server.served(), 1, "the request was sent");
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "a 1 s deadline ended a stalled request: {:?}",
        started.elapsed()
    );
    assert!(
        job["usage"]["wall_ms"]
            .as_u64()
            .is_some_and(|ms| ms < 5_000),
        "{job:#}"
    );
}

#[test]
fn a_body_larger_than_the_runs_memory_fails_the_job_not_the_host() {
    /// Content-length announced and streamed: far above the run's 32 MiB.
    const HUGE: usize = 512 << 20;
    let server = Server::answering(|stream| {
        let _ = write!(
            stream,
            "HTTP/1.1 200 OK\r\ncontent-length: {HUGE}\r\nconnection: close\r\n\r\n"
        );
        let chunk = vec![b'x'; 64 << 10];
        for _ in 0..HUGE / chunk.len() {
            if stream.write_all(&chunk).is_err() {
                return;
            }
        }
    });
    let allowed = allow(&[&server.origin]);
    let (host, job) = fetch(
        &format!("{allowed}memory_mb = 32\n"),
        &allowed,
        &server.origin,
    );
    assert_eq!(state(&job), "failed", "{job:#}");
    assert_eq!(error_kind(&job), Some("memory_limit"), "{job:#}");
    let peak = job["usage"]["memory_peak_bytes"]
        .as_u64()
        .unwrap_or(u64::MAX);
    assert!(
        peak <= 32 << 20,
        "the body stayed within the run's memory: {job:#}"
    );
    let echo = host
        .submit_job(json!({"plugin": "fetch", "args": {"url": "not a url"}, "max_attempts": 1}));
    let after = host.wait_for_state(&echo, &TERMINAL, TIMEOUT);
    assert_eq!(
        error_kind(&after),
        Some("fatal"),
        "the host still runs jobs: {after:#}"
    );
}
