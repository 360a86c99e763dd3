//! `files`: a plugin that uses the filesystem, to show the host's sandbox.
//!
//! A plugin sees no filesystem except the job's repository, mounted read-write at `/repo`
//! when the job is granted it. Ordinary `std::fs` calls work there; anything else fails
//! with an io error (the path does not exist, or access is denied), which this plugin
//! returns as `JobError::Fatal` with the error's text.
//!
//! Args (a JSON object; at least one of):
//!
//! - `write` (string): write this text to `/repo/out.txt`;
//! - `read` (string): read the file at this path, after the write if both are given.
//!
//! Result: `{"written": len}` (bytes written) and/or `{"content": "..."}` (the text read).

mod bindings {
    //! Bindings generated from `wit/world.wit`, and the component's export of [`Files`].
    #![allow(unsafe_code, missing_docs, unreachable_pub, clippy::too_many_arguments)]
    wit_bindgen::generate!({ world: "task-handler", path: "../../wit" });
    use super::Files;
    export!(Files);
}

use bindings::orchestra::plugin::log::{Level, log};
use bindings::{Guest, JobContext, JobError};
use serde_json::{Map, Value};

/// Where `write` puts its text.
const OUT_PATH: &str = "/repo/out.txt";

/// The handler exported to the host.
struct Files;

impl Guest for Files {
    fn handle(job: JobContext) -> Result<String, JobError> {
        log(Level::Info, &format!("files: attempt {}", job.attempt));
        let args: Map<String, Value> = serde_json::from_str(&job.args)
            .map_err(|e| JobError::Fatal(format!("bad args: {e}")))?;
        let write = string_arg(&args, "write")?;
        let read = string_arg(&args, "read")?;
        if write.is_none() && read.is_none() {
            return Err(JobError::Fatal(
                "bad args: give `write` (text) or `read` (a path)".into(),
            ));
        }

        let mut result = Map::new();
        if let Some(text) = write {
            std::fs::write(OUT_PATH, text)
                .map_err(|e| JobError::Fatal(format!("cannot write {OUT_PATH}: {e}")))?;
            result.insert("written".into(), text.len().into());
        }
        if let Some(path) = read {
            let content = std::fs::read_to_string(path)
                .map_err(|e| JobError::Fatal(format!("cannot read {path}: {e}")))?;
            result.insert("content".into(), content.into());
        }
        Ok(Value::Object(result).to_string())
    }
}

/// The string argument `name`, if given; any other type is bad args.
fn string_arg<'a>(args: &'a Map<String, Value>, name: &str) -> Result<Option<&'a str>, JobError> {
    match args.get(name) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(JobError::Fatal(format!(
            "bad args: `{name}` must be a string"
        ))),
    }
}
