//! The filesystem sandbox: a job sees only its repository, mounted at `/repo`, and only
//! repositories under a `--repo-root` are accepted. The mount is no way onto the host:
//! `.git` is read-only, no symlink may lead out, and git in agent commands runs no hooks.

use crate::common::agents::Workspace;
use crate::common::{Options, Orchestra, TERMINAL, TIMEOUT, error_kind, state, wait_until};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

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

/// Runs the real `git` with `args` in `dir`, as the operator; asserts it succeeds.
fn git(dir: &Path, args: &[&str]) {
    let status = Command::new("git")
        .args(args)
        .current_dir(dir)
        .stdout(Stdio::null())
        .status()
        .expect("running git (is it installed?)");
    assert!(
        status.success(),
        "git {args:?} in {}: {status}",
        dir.display()
    );
}

/// Every file, directory and symlink under `dir` (recursively) with its content or
/// target: compared before and after a job, it shows anything the job changed.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut seen = BTreeMap::new();
    let mut pending = vec![dir.to_owned()];
    while let Some(next) = pending.pop() {
        for entry in fs::read_dir(&next).unwrap() {
            let path = entry.unwrap().path();
            let kind = fs::symlink_metadata(&path).unwrap().file_type();
            let content = if kind.is_symlink() {
                let target = fs::read_link(&path).unwrap();
                format!("symlink to {}", target.display()).into_bytes()
            } else if kind.is_dir() {
                pending.push(path.clone());
                b"directory".to_vec()
            } else {
                fs::read(&path).unwrap()
            };
            seen.insert(path, content);
        }
    }
    seen
}

/// The per-operation outcomes of a `files` job that succeeded.
fn op_outcomes(job: &Value) -> Vec<String> {
    assert_eq!(state(job), "succeeded", "{job:#}");
    serde_json::from_value(job["result"]["ops"].clone()).expect("a list of outcomes")
}

/// Asserts which operations of `ops` worked: each is `(op, whether it should work)`.
fn assert_outcomes(job: &Value, ops: &[(Value, bool)]) {
    let outcomes = op_outcomes(job);
    for ((op, works), outcome) in ops.iter().zip(&outcomes) {
        assert_eq!(outcome == "ok", *works, "{op}: {outcome}");
    }
    assert_eq!(outcomes.len(), ops.len(), "{outcomes:?}");
}

/// `(op, works)` for a `files` operation.
fn op(op: Value, works: bool) -> (Value, bool) {
    (op, works)
}

#[test]
fn a_guest_cannot_change_anything_under_git() {
    let sandbox = Sandbox::start();
    let repo = &sandbox.repo;
    git(repo, &["init", "-q"]);
    fs::create_dir(repo.join("sub")).unwrap();
    // The operator's own symlinks into .git: the guest may read through them, not write.
    symlink(".git", repo.join("dotgit")).unwrap();
    symlink(".git/config", repo.join("config-link")).unwrap();
    let before = snapshot(&repo.join(".git"));
    let evil = "[core]\n\tfsmonitor = /tmp/evil.sh\n";
    let write = |path: &str| json!({"op": "write", "path": path, "text": evil});
    let ops = [
        op(write("/repo/.git/config"), false),
        op(
            json!({"op": "open_write", "path": "/repo/.git/config", "text": evil}),
            false,
        ),
        op(
            json!({"op": "append", "path": "/repo/.git/config", "text": evil}),
            false,
        ),
        op(
            json!({"op": "set_len", "path": "/repo/.git/config", "len": 0}),
            false,
        ),
        op(write("/repo/sub/../.git/config"), false),
        op(write("/repo/.GIT/config"), false),
        op(write("/repo/.git/hooks/pre-commit"), false),
        op(write("/repo/dotgit/config"), false),
        op(write("/repo/config-link"), false),
        op(
            json!({"op": "open_write", "path": "/repo/config-link", "text": evil}),
            false,
        ),
        op(json!({"op": "mkdir", "path": "/repo/.git/x"}), false),
        op(
            json!({"op": "remove_file", "path": "/repo/.git/HEAD"}),
            false,
        ),
        op(
            json!({"op": "remove_dir", "path": "/repo/.git/refs/tags"}),
            false,
        ),
        op(
            json!({"op": "rename", "from": "/repo/.git", "to": "/repo/moved"}),
            false,
        ),
        op(
            json!({"op": "rename", "from": "/repo/.git/description", "to": "/repo/d"}),
            false,
        ),
        op(
            json!({"op": "hard_link", "from": "/repo/.git/config", "to": "/repo/cfg"}),
            false,
        ),
        // Planted inside the repository, then moved or linked into .git.
        op(write("/repo/evil"), true),
        op(
            json!({"op": "rename", "from": "/repo/evil", "to": "/repo/.git/config"}),
            false,
        ),
        op(
            json!({"op": "rename", "from": "/repo/evil", "to": "/repo/sub/../.git/x"}),
            false,
        ),
        op(
            json!({"op": "hard_link", "from": "/repo/evil", "to": "/repo/.git/x"}),
            false,
        ),
        // Symlinks of the guest's own that lead into .git.
        op(
            json!({"op": "symlink", "target": ".git", "link": "/repo/g"}),
            false,
        ),
        op(
            json!({"op": "symlink", "target": "../.git/config", "link": "/repo/sub/c"}),
            false,
        ),
        op(
            json!({"op": "symlink", "target": "..", "link": "/repo/sub/up"}),
            true,
        ),
        op(write("/repo/sub/up/.git/config"), false),
        op(json!({"op": "mkdir", "path": "/repo/sub/up/.git/y"}), false),
        // No new .git anywhere: not a nested one, not one put in place of the real one.
        op(json!({"op": "mkdir", "path": "/repo/sub/.git"}), false),
        op(
            json!({"op": "rename", "from": "/repo/sub", "to": "/repo/.git"}),
            false,
        ),
        // Everything else stays writable.
        op(write("/repo/sub/notes.txt"), true),
        op(
            json!({"op": "rename", "from": "/repo/sub/notes.txt", "to": "/repo/n.txt"}),
            true,
        ),
        op(
            json!({"op": "symlink", "target": "n.txt", "link": "/repo/n-link"}),
            true,
        ),
    ];
    let list: Vec<Value> = ops.iter().map(|(op, _)| op.clone()).collect();
    let job = sandbox.run_files(json!({"ops": list}));
    assert_outcomes(&job, &ops);
    assert_eq!(snapshot(&repo.join(".git")), before, ".git is unchanged");
    assert!(!repo.join("sub/.git").exists());
    assert_eq!(fs::read_to_string(repo.join("n.txt")).unwrap(), evil);

    // Reading .git stays allowed.
    let read = sandbox.run_files(json!({"read": "/repo/.git/HEAD"}));
    assert_eq!(state(&read), "succeeded", "{read:#}");
    assert!(
        read["result"]["content"]
            .as_str()
            .unwrap()
            .starts_with("ref: "),
        "{read:#}"
    );
}

#[test]
fn no_symlink_leading_out_of_the_repository_can_be_made() {
    let sandbox = Sandbox::start();
    let repo = &sandbox.repo;
    fs::create_dir_all(repo.join("a/b")).unwrap();
    fs::write(repo.join("inside.txt"), "in").unwrap();
    let link = |target: &str, link: &str| json!({"op": "symlink", "target": target, "link": link});
    let rename =
        |from: &str, to: &str, works| op(json!({"op": "rename", "from": from, "to": to}), works);
    let ops = [
        op(link("/etc/passwd", "/repo/abs"), false),
        op(link("/repo/inside.txt", "/repo/abs2"), false),
        op(link("..", "/repo/up"), false),
        op(link("../repo/inside.txt", "/repo/up2"), false),
        op(link("../../../secret", "/repo/a/b/up3"), false),
        op(link("b/../../..", "/repo/a/up4"), false),
        // Inside is fine, however it gets there.
        op(link("../../inside.txt", "/repo/a/b/in1"), true),
        op(link("b/../../a", "/repo/a/in2"), true),
        op(link("../missing/../a", "/repo/a/in3"), true),
        // A link that is fine where it is may not be moved or linked to where it leads out.
        op(link("../../x", "/repo/a/b/rel"), true),
        rename("/repo/a/b/rel", "/repo/rel", false),
        op(
            json!({"op": "hard_link", "from": "/repo/a/b/rel", "to": "/repo/rel2"}),
            false,
        ),
        rename("/repo/a/b/rel", "/repo/a/b/rel3", true),
        // Nor may a directory holding it move closer to the root; elsewhere it may.
        rename("/repo/a/b", "/repo/b2", false),
        rename("/repo/a/b", "/repo/a/b/../b3", true),
        op(json!({"op": "mkdir", "path": "/repo/z"}), true),
        rename("/repo/z", "/repo/a/b3/z", true),
    ];
    let list: Vec<Value> = ops.iter().map(|(op, _)| op.clone()).collect();
    let job = sandbox.run_files(json!({"ops": list}));
    assert_outcomes(&job, &ops);
    for refused in [
        "abs", "abs2", "up", "up2", "a/b/up3", "a/up4", "rel", "rel2", "b2",
    ] {
        assert!(
            fs::symlink_metadata(repo.join(refused)).is_err(),
            "{refused} was created"
        );
    }
    let root = fs::canonicalize(repo).unwrap();
    for (path, _) in snapshot(repo) {
        if let Ok(target) = fs::canonicalize(&path) {
            assert!(
                target.starts_with(&root),
                "{} leads to {}",
                path.display(),
                target.display()
            );
        }
    }
    assert_eq!(fs::read_to_string(repo.join("a/b3/in1")).unwrap(), "in");
    assert!(repo.join("a/b3/z").is_dir());
}

/// Makes the repository of `ws` a git repository whose config (written by the operator,
/// not a plugin) asks git to run a program that leaves a file behind; returns where.
fn plant_fsmonitor(ws: &Workspace) -> PathBuf {
    let repo = PathBuf::from(ws.repo());
    git(&repo, &["init", "-q"]);
    let marker = ws.root().join("fsmonitor-ran");
    let monitor = ws.root().join("fsmonitor.sh");
    let script = format!("#!/bin/sh\necho ran > '{}'\nexit 1\n", marker.display());
    fs::write(&monitor, script).unwrap();
    fs::set_permissions(&monitor, fs::Permissions::from_mode(0o755)).unwrap();
    git(
        &repo,
        &["config", "core.fsmonitor", monitor.to_str().unwrap()],
    );
    git(
        &repo,
        &["config", "core.hooksPath", ws.root().to_str().unwrap()],
    );
    marker
}

#[test]
fn agent_commands_run_git_without_hooks_or_fsmonitor() {
    let ws = Workspace::new();
    let host = Orchestra::start(ws.options().plugin("files"));
    let repo = PathBuf::from(ws.repo());
    let marker = plant_fsmonitor(&ws);
    let config = fs::read(repo.join(".git/config")).unwrap();

    host.register_agent(&ws.shell_agent("sh"));
    let (task, _, _) = host.submit_task(&json!({
        "command": "git status && git config core.fsmonitor && git config core.hooksPath",
        "repository_path": ws.repo(),
    }));
    let done = host.wait_for_task(&task, &["succeeded"], TIMEOUT);
    assert!(!marker.exists(), "git ran the repository's fsmonitor");
    let output = done["output"].as_str().unwrap();
    assert!(output.ends_with("\nfalse\n/dev/null\n"), "{done:#}");

    // Nor can a plugin write such a setting into the repository's config.
    let body = json!({
        "plugin": "files", "repository_path": ws.repo(), "max_attempts": 1,
        "args": {"ops": [{"op": "write", "path": "/repo/.git/config", "text": "[core]\n"}]},
    });
    let id = host.submit_job(body);
    let job = host.wait_for_state(&id, &TERMINAL, TIMEOUT);
    let outcomes = op_outcomes(&job);
    assert!(outcomes[0].starts_with("error"), "{outcomes:?}");
    assert_eq!(
        fs::read(repo.join(".git/config")).unwrap(),
        config,
        "the config is unchanged"
    );
}

#[test]
fn health_commands_run_git_without_hooks_or_fsmonitor() {
    let ws = Workspace::new();
    let marker = plant_fsmonitor(&ws);
    let checked = ws.root().join("checked");
    let config = "agent_health_schedule = \"* * * * * *\"\n";
    let host = Orchestra::start(ws.options().config(config));
    let mut agent = ws.shell_agent("sh");
    agent["health_interval_seconds"] = json!(1);
    let check = format!("git status; touch '{}'", checked.display());
    agent["health_command"] = json!(["/usr/bin/env", "bash", "-c", check]);
    host.register_agent(&agent);
    wait_until("a health check", TIMEOUT, || {
        if checked.exists() || marker.exists() {
            Ok(())
        } else {
            Err(host.agent("sh").to_string())
        }
    });
    assert!(!marker.exists(), "git ran the repository's fsmonitor");
}

#[test]
fn writes_past_the_disk_quota_fail_the_job_with_disk_quota() {
    let root = tempfile::tempdir().unwrap();
    let repo = root.path().join("repo");
    fs::create_dir(&repo).unwrap();
    let options = Options::new()
        .plugin("files")
        .repo_root(root.path())
        .manifest("files", "disk_quota_mb = 1\n");
    let host = Orchestra::start(options);
    let fill = |bytes: u64| {
        json!({
            "plugin": "files", "repository_path": repo, "max_attempts": 3,
            "args": {"ops": [{"op": "fill", "path": "/repo/big", "bytes": bytes}], "give_up": true},
        })
    };
    let id = host.submit_job(fill(4 << 20));
    let job = host.wait_for_state(&id, &TERMINAL, TIMEOUT);
    assert_eq!(state(&job), "failed", "{job:#}");
    assert_eq!(error_kind(&job), Some("disk_quota"), "{job:#}");
    assert_eq!(
        job["attempt"], 1,
        "a disk_quota failure is not retried: {job:#}"
    );
    let written = fs::metadata(repo.join("big")).unwrap().len();
    assert!(written <= 1 << 20, "{written} bytes reached the disk");

    let id = host.submit_job(fill(512 << 10));
    let job = host.wait_for_state(&id, &TERMINAL, TIMEOUT);
    assert_eq!(state(&job), "succeeded", "under the quota: {job:#}");
}
