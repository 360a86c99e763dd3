//! Agents for the tests: a temporary repository root with a repository and a scripted
//! stand-in for a coding-agent CLI, agent definitions, and task helpers.

use super::{Options, Orchestra, TERMINAL, TIMEOUT, wait_until};
use serde_json::{Value, json};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A scripted coding agent: `fake-agent --prompt PROMPT` thinks aloud, works in steps,
/// writes a note into the repository (its working directory), and gives up on prompts
/// that ask for the impossible.
const FAKE_AGENT: &str = r#"#!/bin/sh
[ "$1" = "--prompt" ] || { echo "usage: fake-agent --prompt PROMPT" >&2; exit 64; }
prompt="$2"
echo "thinking about: $prompt"
for step in 1 2 3; do echo "step $step of 3"; sleep 0.2; done
echo "edited README.md" >&2
case "$prompt" in *impossible*) echo "cannot do that" >&2; exit 2;; esac
echo "$prompt" >> agent-notes.txt
echo "done"
"#;

/// A repository root holding a repository `repo/` and the fake agent `bin/fake-agent`.
pub(crate) struct Workspace {
    root: tempfile::TempDir,
}

impl Workspace {
    /// A fresh root.
    pub(crate) fn new() -> Workspace {
        let root = tempfile::tempdir().expect("creating a repository root");
        fs::create_dir(root.path().join("repo")).expect("creating the repository");
        fs::create_dir(root.path().join("bin")).expect("creating bin/");
        let script = root.path().join("bin/fake-agent");
        fs::write(&script, FAKE_AGENT).expect("writing the fake agent");
        fs::set_permissions(&script, fs::Permissions::from_mode(0o755))
            .expect("making the fake agent executable");
        Workspace { root }
    }

    /// The root, canonical.
    pub(crate) fn root(&self) -> PathBuf {
        fs::canonicalize(self.root.path()).expect("the root exists")
    }

    /// The repository, canonical.
    pub(crate) fn repo(&self) -> String {
        self.path("repo")
    }

    /// `relative` under the root, canonical, as text.
    pub(crate) fn path(&self, relative: &str) -> String {
        self.root().join(relative).to_string_lossy().into_owned()
    }

    /// A file of the repository.
    pub(crate) fn repo_file(&self, name: &str) -> PathBuf {
        Path::new(&self.repo()).join(name)
    }

    /// Four workers, this root allowed, and the `task_execution` plugin.
    pub(crate) fn options(&self) -> Options {
        Options::new()
            .workers(4)
            .repo_root(&self.root())
            .plugin("task_execution")
    }

    /// An agent that runs its commands with bash in the repository.
    pub(crate) fn shell_agent(&self, id: &str) -> Value {
        json!({
            "id": id, "name": format!("shell {id}"), "repository_path": self.repo(),
            "command": ["/usr/bin/env", "bash", "-c", "{command}"],
            "labels": {"kind": "shell"},
        })
    }

    /// An agent that hands its commands to the fake coding agent as a prompt.
    pub(crate) fn coding_agent(&self, id: &str) -> Value {
        json!({
            "id": id, "name": format!("coder {id}"), "repository_path": self.repo(),
            "command": [self.path("bin/fake-agent"), "--prompt", "{command}"],
            "env": {"AGENT_MODE": "test"},
        })
    }
}

impl Orchestra {
    /// Registers an agent; asserts 201 and returns it.
    pub(crate) fn register_agent(&self, spec: &Value) -> Value {
        let (status, agent) = self.post("/api/agents", spec);
        assert_eq!(
            status, 201,
            "POST /api/agents {spec} answered {status}: {agent}"
        );
        agent
    }

    /// `GET /api/agents/{id}`, asserting 200.
    pub(crate) fn agent(&self, id: &str) -> Value {
        let (status, agent) = self.get(&format!("/api/agents/{id}"));
        assert_eq!(
            status, 200,
            "GET /api/agents/{id} answered {status}: {agent}"
        );
        agent
    }

    /// Submits a task (the whole `POST /api/tasks` body); asserts 201 and returns
    /// `(task_id, job_id, agent_id)`.
    pub(crate) fn submit_task(&self, body: &Value) -> (String, String, String) {
        let (status, answer) = self.post("/api/tasks", body);
        assert_eq!(
            status, 201,
            "POST /api/tasks {body} answered {status}: {answer}"
        );
        let field = |name: &str| {
            answer[name]
                .as_str()
                .unwrap_or_else(|| panic!("no {name} in {answer}"))
                .to_owned()
        };
        (field("task_id"), field("job_id"), field("agent_id"))
    }

    /// `GET /api/tasks/{id}`, asserting 200.
    pub(crate) fn task(&self, id: &str) -> Value {
        let (status, task) = self.get(&format!("/api/tasks/{id}"));
        assert_eq!(status, 200, "GET /api/tasks/{id} answered {status}: {task}");
        task
    }

    /// Polls the task until it is in one of `states`; panics if it ends otherwise.
    pub(crate) fn wait_for_task(&self, id: &str, states: &[&str], timeout: Duration) -> Value {
        wait_until(&format!("task {id} to be {states:?}"), timeout, || {
            let task = self.task(id);
            let now = task["state"].as_str().unwrap_or_default().to_owned();
            if states.contains(&now.as_str()) {
                Ok(task)
            } else if TERMINAL.contains(&now.as_str()) {
                panic!("task {id} ended {now}, not {states:?}: {task:#}")
            } else {
                Err(task.to_string())
            }
        })
    }

    /// Waits until the log of job `job` has a line containing `text`.
    pub(crate) fn wait_for_log(&self, job: &str, text: &str) -> Value {
        wait_until(&format!("job {job} to log `{text}`"), TIMEOUT, || {
            let job = self.job(job);
            let logged = job["logs"].as_array().is_some_and(|logs| {
                logs.iter()
                    .any(|l| l["message"].as_str().is_some_and(|m| m.contains(text)))
            });
            if logged {
                Ok(job)
            } else {
                Err(job.to_string())
            }
        })
    }
}
