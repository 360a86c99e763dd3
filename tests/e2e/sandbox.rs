//! The filesystem sandbox: a job sees only its repository, mounted at `/repo`, and only
//! repositories under a `--repo-root` are accepted.

use crate::common::{Options, Orchestra, TERMINAL, TIMEOUT, error_kind, state};
use serde_json::{Value, json};
use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

/// A host with the `files` plugin and a repository root holding `repo/`.
struct Sandbox {
    host: Orchestra,
    root: tempfile::TempDir,
    repo: PathBuf,
}

impl Sandbox {
    fn start() -> Sandbox {
        let root = tempfile::Builder::new()
            .prefix("orchestra-e2e-root-")
            .tempdir()
            .expect("creating a repository root");
        let repo = root.path().join("repo");
        fs::create_dir(&repo).expect("creating the repository");
        let host = Orchestra::start(Options::new().plugin("files").repo_root(root.path()));
        Sandbox { host, root, repo }
    }

    /// Runs `files` with `args` on `repository` (one attempt) until it ends.
    fn run_files_in(&self, repository: Option<&Path>, args: Value) -> Value {
        let mut body = json!({"plugin": "files", "args": args, "max_attempts": 1});
        if let Some(repository) = repository {
            body["repository_path"] = json!(repository);
        }
        let id = self.host.submit_job(body);
        self.host.wait_for_state(&id, &TERMINAL, TIMEOUT)
    }

    /// Runs `files` with `args` on the repository until it ends.
    fn run_files(&self, args: Value) -> Value {
        self.run_files_in(Some(&self.repo), args)
    }

    /// Asserts that reading `path` from the guest fails (fatal, it cannot be read).
    fn assert_unreadable(&self, path: &str) {
        let job = self.run_files(json!({"read": path}));
        assert_eq!(
            state(&job),
            "failed",
            "{path} must not be readable: {job:#}"
        );
        assert_eq!(error_kind(&job), Some("fatal"), "{job:#}");
        assert!(job["result"].is_null(), "nothing was read: {job:#}");
    }

    /// Submits a job on `repository`; asserts it is refused with a 4xx naming the
    /// repository, and returns the status.
    fn assert_repository_refused(&self, repository: &str) -> u16 {
        let body =
            json!({"plugin": "files", "args": {"read": "/repo/x"}, "repository_path": repository});
        let (status, answer) = self.host.post("/api/jobs", &body);
        assert!(
            (400..500).contains(&status),
            "repository {repository} answered {status}: {answer}"
        );
        let error = answer["error"].as_str().unwrap_or_default();
        assert!(
            error.contains("repository"),
            "the error names the repository: {answer}"
        );
        status
    }
}

#[test]
fn a_job_writes_and_reads_inside_its_repository() {
    let sandbox = Sandbox::start();
    let written = sandbox.run_files(json!({"write": "hi"}));
    assert_eq!(state(&written), "succeeded", "{written:#}");
    assert_eq!(written["result"], json!({"written": 2}));
    let canonical = fs::canonicalize(&sandbox.repo).unwrap();
    assert_eq!(
        written["repository_path"],
        json!(canonical),
        "the stored path is canonical"
    );
    let on_disk =
        fs::read_to_string(sandbox.repo.join("out.txt")).expect("the file was written on the host");
    assert_eq!(on_disk, "hi");

    let read = sandbox.run_files(json!({"read": "/repo/out.txt"}));
    assert_eq!(state(&read), "succeeded", "{read:#}");
    assert_eq!(read["result"], json!({"content": "hi"}));
}

#[test]
fn host_files_outside_the_repository_cannot_be_read() {
    let sandbox = Sandbox::start();
    sandbox.assert_unreadable("/etc/passwd");
    sandbox.assert_unreadable("/etc/hostname");
}

#[test]
fn dot_dot_cannot_escape_the_repository() {
    let sandbox = Sandbox::start();
    fs::write(sandbox.root.path().join("secret.txt"), "beside the repo").unwrap();
    sandbox.assert_unreadable("/repo/../../etc/hostname");
    sandbox.assert_unreadable("/repo/../secret.txt");
    sandbox.assert_unreadable("/repo/../../../../../../etc/passwd");
}

#[test]
fn symlinks_cannot_lead_out_of_the_repository() {
    let sandbox = Sandbox::start();
    symlink("/etc", sandbox.repo.join("link")).unwrap();
    sandbox.assert_unreadable("/repo/link/passwd");

    // A write through a planted symlink must not reach the file it points to.
    let outside = tempfile::tempdir().unwrap();
    let victim = outside.path().join("victim.txt");
    fs::write(&victim, "original").unwrap();
    symlink(&victim, sandbox.repo.join("out.txt")).unwrap();
    let job = sandbox.run_files(json!({"write": "pwned"}));
    assert_eq!(
        state(&job),
        "failed",
        "the write through the symlink must fail: {job:#}"
    );
    assert_eq!(
        fs::read_to_string(&victim).unwrap(),
        "original",
        "the outside file is untouched"
    );
}

#[test]
fn a_job_without_a_repository_sees_no_files() {
    let sandbox = Sandbox::start();
    let job = sandbox.run_files_in(None, json!({"write": "hi"}));
    assert_eq!(state(&job), "failed", "{job:#}");
    assert_eq!(error_kind(&job), Some("fatal"), "{job:#}");
    assert!(!sandbox.repo.join("out.txt").exists());
}

#[test]
fn repositories_outside_the_root_are_refused() {
    let sandbox = Sandbox::start();
    let elsewhere = tempfile::tempdir().unwrap();
    assert_eq!(
        sandbox.assert_repository_refused(elsewhere.path().to_str().unwrap()),
        422
    );
    assert_eq!(sandbox.assert_repository_refused("/etc"), 422);
    // A symlink under the root that points outside it is judged by its target.
    let escape = sandbox.root.path().join("escape");
    symlink(elsewhere.path(), &escape).unwrap();
    sandbox.assert_repository_refused(escape.to_str().unwrap());
    // A file is not a repository; a missing path neither.
    fs::write(sandbox.repo.join("file"), "x").unwrap();
    sandbox.assert_repository_refused(sandbox.repo.join("file").to_str().unwrap());
    sandbox.assert_repository_refused(sandbox.repo.join("missing").to_str().unwrap());
    assert_eq!(sandbox.host.count_jobs(), 0, "nothing was stored");
}

#[test]
fn dot_dot_in_the_repository_path_cannot_leave_the_root() {
    let sandbox = Sandbox::start();
    let up = format!("{}/../..", sandbox.repo.display());
    sandbox.assert_repository_refused(&up);
    let up_and_over = format!("{}/../../etc", sandbox.repo.display());
    sandbox.assert_repository_refused(&up_and_over);
    // `..` that stays inside the root is fine.
    let inside = format!("{}/../repo", sandbox.repo.display());
    let job = sandbox.run_files_in(Some(Path::new(&inside)), json!({"write": "ok"}));
    assert_eq!(state(&job), "succeeded", "{job:#}");
}

#[test]
fn repositories_are_refused_without_a_repo_root() {
    let host = Orchestra::start(Options::new().plugin("files"));
    let repo = tempfile::tempdir().unwrap();
    let body = json!({"plugin": "files", "args": {"write": "hi"}, "repository_path": repo.path()});
    let (status, answer) = host.post("/api/jobs", &body);
    assert_eq!(status, 422, "{answer}");
    assert!(
        answer["error"]
            .as_str()
            .unwrap_or_default()
            .contains("repository"),
        "{answer}"
    );
    assert_eq!(host.count_jobs(), 0, "nothing was stored");
}
