//! `files`: a plugin that uses the filesystem, to show the host's sandbox.
//!
//! A plugin sees no filesystem except the job's repository, mounted read-write at `/repo`
//! when the job is granted it. Ordinary `std::fs` calls work there; anything else fails
//! with an io error (the path does not exist, or access is denied), which this plugin
//! returns as a fatal `Error` with the error's text (`?` would make it retryable).
//!
//! Args (a JSON object; at least one of):
//!
//! - `write` (string): write this text to `/repo/out.txt`;
//! - `read` (string): read the file at this path, after the write if both are given;
//! - `ops` (array): filesystem operations tried in order, each an object with `op` and
//!   its paths, which reach the host as given (relative to `/repo`, `..` and all):
//!   - `{"op": "write", "path", "text"}`: create or truncate the file, write the text;
//!   - `{"op": "open_write", "path", "text"}`: open an existing file for writing
//!     (no create, no truncate) and write the text at its start;
//!   - `{"op": "append", "path", "text"}`: append the text (creating the file);
//!   - `{"op": "fill", "path", "bytes"}`: write that many bytes, 64 KiB at a time;
//!   - `{"op": "set_len", "path", "len"}`: resize an existing file;
//!   - `{"op": "symlink", "target", "link"}`: create a symlink holding `target`;
//!   - `{"op": "hard_link", "from", "to"}`, `{"op": "rename", "from", "to"}`;
//!   - `{"op": "mkdir", "path"}`, `{"op": "remove_file", "path"}`,
//!     `{"op": "remove_dir", "path"}`;
//! - `give_up` (bool): the first failed operation fails the job (fatal, with its error).
//!
//! Result: `{"written": len}` (bytes written) and/or `{"content": "..."}` (the text read)
//! and/or `{"ops": [...]}` (per operation, `"ok"` or `"error: ..."`).

use orchestra_plugin::{Error, Handler, Job, log};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::io::Write;

/// Where `write` puts its text.
const OUT_PATH: &str = "/repo/out.txt";
/// Bytes per write of `fill`.
const FILL_CHUNK: usize = 64 << 10;

/// The handler exported to the host.
struct Files;

/// What a job asks for.
#[derive(Deserialize)]
struct Args {
    /// Text to write to [`OUT_PATH`].
    write: Option<String>,
    /// A path to read, after the write.
    read: Option<String>,
    /// Operations to try in order, each checked when its turn comes.
    ops: Option<Vec<Value>>,
    /// Whether the first failed operation fails the job.
    #[serde(default)]
    give_up: bool,
}

impl Handler for Files {
    fn handle(job: Job) -> Result<impl Serialize, Error> {
        log::info!("files: attempt {}", job.attempt());
        let args: Args = job.args()?;
        if args.write.is_none() && args.read.is_none() && args.ops.is_none() {
            return Err(Error::bad_args(
                "give `write` (text), `read` (a path) or `ops` (a list)",
            ));
        }

        let mut result = Map::new();
        if let Some(text) = args.write {
            std::fs::write(OUT_PATH, &text)
                .map_err(|e| Error::fatal(format!("cannot write {OUT_PATH}: {e}")))?;
            result.insert("written".into(), text.len().into());
        }
        if let Some(path) = args.read {
            let content = std::fs::read_to_string(&path)
                .map_err(|e| Error::fatal(format!("cannot read {path}: {e}")))?;
            result.insert("content".into(), content.into());
        }
        if let Some(ops) = args.ops {
            let mut outcomes = Vec::new();
            for op in &ops {
                let outcome = run_op(op)?;
                if let (true, Err(e)) = (args.give_up, &outcome) {
                    return Err(Error::fatal(format!("{op}: {e}")));
                }
                outcomes.push(Value::from(match outcome {
                    Ok(()) => "ok".to_owned(),
                    Err(e) => format!("error: {e}"),
                }));
            }
            result.insert("ops".into(), outcomes.into());
        }
        Ok(result)
    }
}

/// Runs one operation of `ops`: `Err` for a malformed one, else its io outcome.
fn run_op(op: &Value) -> Result<std::io::Result<()>, Error> {
    let field = |name: &str| {
        op.get(name)
            .and_then(Value::as_str)
            .ok_or_else(|| Error::bad_args(format!("{op} needs a string `{name}`")))
    };
    let number = |name: &str| {
        op.get(name)
            .and_then(Value::as_u64)
            .ok_or_else(|| Error::bad_args(format!("{op} needs a number `{name}`")))
    };
    let open = |path: &str| std::fs::OpenOptions::new().write(true).open(path);
    Ok(match field("op")? {
        "write" => std::fs::write(field("path")?, field("text")?),
        "open_write" => {
            let text = field("text")?;
            open(field("path")?).and_then(|mut file| file.write_all(text.as_bytes()))
        }
        "append" => {
            let text = field("text")?;
            std::fs::OpenOptions::new()
                .append(true)
                .create(true)
                .open(field("path")?)
                .and_then(|mut file| file.write_all(text.as_bytes()))
        }
        "fill" => fill(field("path")?, number("bytes")?),
        "set_len" => {
            let len = number("len")?;
            open(field("path")?).and_then(|file| file.set_len(len))
        }
        #[allow(deprecated)] // the one stable symlink call on WASI
        "symlink" => std::fs::soft_link(field("target")?, field("link")?),
        "hard_link" => std::fs::hard_link(field("from")?, field("to")?),
        "rename" => std::fs::rename(field("from")?, field("to")?),
        "mkdir" => std::fs::create_dir(field("path")?),
        "remove_file" => std::fs::remove_file(field("path")?),
        "remove_dir" => std::fs::remove_dir(field("path")?),
        other => return Err(Error::bad_args(format!("unknown op `{other}`"))),
    })
}

/// Writes `bytes` bytes to a new file at `path`, [`FILL_CHUNK`] at a time.
fn fill(path: &str, bytes: u64) -> std::io::Result<()> {
    let mut file = std::fs::File::create(path)?;
    let chunk = vec![b'x'; FILL_CHUNK];
    let mut left = bytes;
    while left > 0 {
        let n = left.min(FILL_CHUNK as u64) as usize;
        file.write_all(&chunk[..n])?;
        left -= n as u64;
    }
    Ok(())
}

orchestra_plugin::export!(Files);
