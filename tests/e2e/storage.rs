//! Storage faults lose nothing and stall nothing: a full disk answers 507 and a locked
//! database 503, and the host goes on once the fault is gone; an outcome that cannot be
//! written is given up so the job runs again; a database file deleted or replaced
//! under the host is noticed; a second process on the same database is refused.

use crate::common::{Options, Orchestra, TIMEOUT, history_has, history_states, wait_until};
use serde_json::{Value, json};
use sqlx::{Connection, SqliteConnection};
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// How long a host may take to notice its database file is gone: it looks every second.
const NOTICE: Duration = Duration::from_secs(15);

/// A small tmpfs mounted on a temporary directory; unmounted when dropped.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    /// Mounts a tmpfs of `size` (e.g. `4m`).
    fn mount(size: &str) -> Tmpfs {
        let dir = tempfile::Builder::new()
            .prefix("orchestra-e2e-disk-")
            .tempdir()
            .expect("creating a temp dir");
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .status()
            .expect("running mount");
        assert!(status.success(), "mounting a tmpfs failed: {status}");
        Tmpfs { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Fills the disk with a file of zeros; returns it.
    fn fill(&self) -> PathBuf {
        let path = self.path().join("filler");
        let mut file = fs::File::create(&path).expect("creating the filler");
        let chunk = vec![0u8; 64 << 10];
        let full = loop {
            if let Err(e) = file.write_all(&chunk) {
                break e;
            }
        };
        assert_eq!(
            full.kind(),
            std::io::ErrorKind::StorageFull,
            "filling the disk: {full}"
        );
        path
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let status = Command::new("umount").arg(self.path()).status();
        if !status.is_ok_and(|s| s.success()) {
            let _ = Command::new("umount").arg("-l").arg(self.path()).status();
        }
    }
}

/// The host's log lines that contain `text`.
fn logged(host: &Orchestra, text: &str) -> Result<(), String> {
    if host.log().contains(text) {
        Ok(())
    } else {
        Err(format!("no log line with {text:?}"))
    }
}

/// Submits a job with `padding` bytes of arguments: `(status, answer)`.
fn submit_padded(host: &Orchestra, padding: usize) -> (u16, Value) {
    let args = json!({"padding": "x".repeat(padding)});
    host.post("/api/jobs", &json!({"plugin": "echo", "args": args}))
}

#[test]
fn a_full_disk_answers_507_and_the_host_goes_on_once_space_is_back() {
    let disk = Tmpfs::mount("4m");
    let host = Orchestra::start(
        Options::new()
            .db(&disk.path().join("o.db"))
            .plugin("echo")
            .plugin("sleep"),
    );
    let later = host.submit_job(json!({"plugin": "echo", "args": {}, "delay_seconds": 3}));
    let running = host.submit("sleep", json!({"ms": 2000}));
    host.wait_for_guest(&running);

    let filler = disk.fill();
    let mut accepted = Vec::new();
    let refused = wait_until(
        "a submission to be refused for a full disk",
        TIMEOUT,
        || match submit_padded(&host, 64 << 10) {
            (507, answer) => Ok(answer),
            (201, answer) => {
                accepted.push(answer["id"].as_str().expect("an id").to_owned());
                Err(format!("accepted: {answer}"))
            }
            (status, answer) => panic!("a full disk answered {status}: {answer}"),
        },
    );
    let error = refused["error"].as_str().expect("an error message");
    assert!(error.contains("disk full"), "{refused}");
    wait_until("the run's outcome to fail to be written", TIMEOUT, || {
        logged(&host, "writing the run's outcome failed; trying again")
    });

    fs::remove_file(&filler).expect("removing the filler");
    let job = host.wait_for_state(&running, &["succeeded"], TIMEOUT);
    assert_eq!(
        job["attempt"], 1,
        "its outcome landed once written: {job:#}"
    );
    host.wait_for_state(&later, &["succeeded"], TIMEOUT);
    let after = host.submit("echo", json!({"n": 2}));
    accepted.push(after);
    host.wait_for_all(&accepted, &["succeeded"], TIMEOUT);
}

#[test]
fn a_database_locked_by_another_process_answers_503_until_it_is_let_go() {
    let host = Orchestra::start(Options::new().plugin("echo"));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let url = format!("sqlite://{}", host.db_path().display());
    let mut other = runtime
        .block_on(SqliteConnection::connect(&url))
        .expect("opening the database beside the host");
    runtime
        .block_on(sqlx::query("BEGIN IMMEDIATE").execute(&mut other))
        .expect("locking the database");

    // Each write waits out SQLite's busy timeout (10 s), and the submission may queue
    // behind a few: give it longer than the harness's requests get.
    let patient = crate::common::new_agent(host.token(), Duration::from_secs(120));
    let mut response = patient
        .post(host.url("/api/jobs"))
        .send_json(json!({"plugin": "echo", "args": {}}))
        .expect("the submission is answered");
    let answer: Value = response.body_mut().read_json().expect("a JSON answer");
    assert_eq!(response.status(), 503, "{answer}");
    let error = answer["error"].as_str().expect("an error message");
    assert!(error.contains("locked by another process"), "{answer}");

    runtime
        .block_on(sqlx::query("ROLLBACK").execute(&mut other))
        .expect("letting the database go");
    let id = host.submit("echo", json!({}));
    host.wait_for_state(&id, &["succeeded"], TIMEOUT);
}

#[test]
fn a_run_whose_outcome_cannot_be_written_gives_its_lease_up_and_runs_again() {
    let disk = Tmpfs::mount("4m");
    let host = Orchestra::start(
        Options::new()
            .db(&disk.path().join("o.db"))
            .lease_seconds(2)
            .plugin("sleep")
            .manifest("sleep", "retry_delays_seconds = [1]\n"),
    );
    let id = host.submit("sleep", json!({"ms": 2000}));
    host.wait_for_guest(&id);

    let filler = disk.fill();
    wait_until("the host to give the outcome up", TIMEOUT, || {
        logged(
            &host,
            "the run's outcome could not be written; giving its lease up",
        )
    });
    fs::remove_file(&filler).expect("removing the filler");

    let job = host.wait_for_state(&id, &["succeeded"], TIMEOUT);
    assert_eq!(job["attempt"], 2, "it ran again: {job:#}");
    assert!(
        history_has(&job, "scheduled", "lease_expired"),
        "the lost attempt's lease expired: {job:#}"
    );
}

/// Checks that a submission is refused with 503 at once (never a 201 for a job the host
/// cannot keep), that `/healthz` turns 503, each naming the database file, and that the
/// host logged it as an error.
fn assert_refusing_and_unhealthy(host: &Orchestra) {
    let named = |body: &Value| {
        body["error"]
            .as_str()
            .is_some_and(|e| e.contains("database file was deleted or replaced"))
    };
    let (status, answer) = host.post("/api/jobs", &json!({"plugin": "echo", "args": {}}));
    assert_eq!(status, 503, "{answer}");
    assert!(named(&answer), "{answer}");
    let health = wait_unhealthy(host);
    assert!(named(&health), "{health}");
    let log = host.log();
    assert!(
        log.lines()
            .any(|line| line.contains("ERROR") && line.contains("deleted or replaced")),
        "logged as an error:\n{log}"
    );
}

/// Waits for `/healthz` to answer 503 (the file is looked at every second, writes or
/// not); returns its body.
fn wait_unhealthy(host: &Orchestra) -> Value {
    wait_until("/healthz to turn unhealthy", NOTICE, || {
        match host.get("/healthz") {
            (503, body) => Ok(body),
            (status, body) => Err(format!("{status}: {body}")),
        }
    })
}

#[test]
fn a_deleted_database_file_is_noticed_and_jobs_are_refused() {
    let host = Orchestra::start(Options::new().plugin("echo"));
    host.submit("echo", json!({}));
    fs::remove_file(host.db_path()).expect("deleting the database");
    wait_unhealthy(&host);
    assert_refusing_and_unhealthy(&host);
}

#[test]
fn a_replaced_database_file_is_noticed_and_jobs_are_refused() {
    let host = Orchestra::start(Options::new().plugin("echo"));
    host.submit("echo", json!({}));
    let copy = host.db_path().with_extension("copy");
    fs::copy(host.db_path(), &copy).expect("copying the database");
    fs::rename(&copy, host.db_path()).expect("replacing the database");
    assert_refusing_and_unhealthy(&host);
}

#[test]
fn a_second_process_on_the_same_database_is_refused_and_touches_nothing() {
    let first = Orchestra::start(Options::new().host_id("same").plugin("sleep"));
    let id = first.submit("sleep", json!({"ms": 2000}));
    first.wait_for_guest(&id);

    let second = Orchestra::try_start(
        Options::new()
            .host_id("same")
            .db(&first.db_path())
            .plugin("sleep"),
    );
    let Err(refused) = second else {
        panic!("a second process started on the same database");
    };
    assert!(
        refused.contains("SQLite is one host; several hosts share Postgres"),
        "{refused}"
    );

    let job = first.wait_for_state(&id, &["succeeded"], TIMEOUT);
    assert_eq!(
        history_states(&job),
        ["enqueued", "processing", "succeeded"],
        "the first process kept its job: {job:#}"
    );
}
