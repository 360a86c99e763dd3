//! `flood`: a plugin that writes as much as it can, to show that a guest cannot hold the
//! host with its output or its result.
//!
//! It writes to its standard output stream directly (`wasi:io/streams`), so it can do
//! what a careless or hostile guest does: one write far larger than the stream granted,
//! and writes without end.
//!
//! Args (a JSON object, every field optional, applied in this order):
//! - `newlines` (integer): one write of that many newline bytes, whatever the stream
//!   granted; whether it was refused is logged.
//! - `lines` (integer) and `width` (integer, default 80): that many lines of `width`
//!   bytes, printed.
//! - `forever` (bool): then write newlines, as much as the stream grants each time,
//!   until the host stops the run.
//! - `result_bytes` (integer): the result is a JSON string of that many bytes, quotes
//!   included (at least 2); without it the result is `{}`.

mod bindings {
    //! Bindings generated from `wit/world.wit` plus the WASI output stream, and the
    //! component's export of [`Flood`].
    #![allow(unsafe_code, missing_docs, unreachable_pub, clippy::too_many_arguments)]
    wit_bindgen::generate!({
        inline: "
            package orchestra:flood;
            world flood {
                import wasi:cli/stdout@0.2.0;
                include orchestra:plugin/task-handler@0.2.0;
            }
        ",
        path: ["../../wit", "wit/io.wit", "wit/cli.wit"],
        world: "flood",
        generate_all,
    });
    use super::Flood;
    export!(Flood);
}

use bindings::orchestra::plugin::log::{Level, log};
use bindings::wasi::cli::stdout::get_stdout;
use bindings::wasi::io::streams::OutputStream;
use bindings::{Guest, JobContext, JobError};
use serde_json::{Map, Value};

/// The handler exported to the host.
struct Flood;

impl Guest for Flood {
    fn handle(job: JobContext) -> Result<String, JobError> {
        log(Level::Info, &format!("flood: attempt {}", job.attempt));
        let args: Map<String, Value> = serde_json::from_str(&job.args)
            .map_err(|e| JobError::Fatal(format!("bad args: {e}")))?;
        let number = |name: &str| args.get(name).and_then(Value::as_u64);
        let stdout = get_stdout();
        if let Some(n) = number("newlines") {
            let outcome = match stdout.write(&vec![b'\n'; n as usize]) {
                Ok(()) => "accepted".to_owned(),
                Err(e) => format!("refused: {e:?}"),
            };
            log(
                Level::Info,
                &format!("flood: a write of {n} newlines was {outcome}"),
            );
        }
        if let Some(lines) = number("lines") {
            let width = number("width").unwrap_or(80) as usize;
            let line = "x".repeat(width);
            for _ in 0..lines {
                println!("{line}");
            }
        }
        if args.get("forever").and_then(Value::as_bool) == Some(true) {
            flood_forever(&stdout);
        }
        Ok(match number("result_bytes") {
            Some(n) => format!("\"{}\"", "x".repeat((n as usize).saturating_sub(2))),
            None => "{}".to_owned(),
        })
    }
}

/// Writes newlines, as many as the stream grants each time, until the host stops the run
/// (or the stream fails).
fn flood_forever(stdout: &OutputStream) {
    loop {
        let granted = match stdout.check_write() {
            Ok(granted) => granted.max(1) as usize,
            Err(_) => return,
        };
        if stdout.write(&vec![b'\n'; granted]).is_err() {
            return;
        }
    }
}
