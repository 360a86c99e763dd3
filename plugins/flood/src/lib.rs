//! `flood`: a plugin that writes as much as it can, to show that a guest cannot hold the
//! host with its output or its result.
//!
//! It writes to its standard output stream directly (`wasi:io/streams`, through the
//! `wasip2` crate), so it can do what a careless or hostile guest does: one write far larger than the stream granted,
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

use orchestra_plugin::{Error, Handler, Job, log};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use wasip2::cli::stdout::get_stdout;
use wasip2::io::streams::OutputStream;

/// The handler exported to the host.
struct Flood;

/// What a job asks for.
#[derive(Deserialize)]
struct Args {
    /// Newline bytes to write at once.
    newlines: Option<u64>,
    /// Lines to print.
    lines: Option<u64>,
    /// Bytes per printed line.
    #[serde(default = "default_width")]
    width: u64,
    /// Whether to write until the host stops the run.
    #[serde(default)]
    forever: bool,
    /// Bytes of the result.
    result_bytes: Option<u64>,
}

/// The width of a printed line when the args do not say.
fn default_width() -> u64 {
    80
}

impl Handler for Flood {
    fn handle(job: Job) -> Result<impl Serialize, Error> {
        log::info!("flood: attempt {}", job.attempt());
        let args: Args = job.args()?;
        let stdout = get_stdout();
        if let Some(n) = args.newlines {
            let outcome = match stdout.write(&vec![b'\n'; n as usize]) {
                Ok(()) => "accepted".to_owned(),
                Err(e) => format!("refused: {e:?}"),
            };
            log::info!("flood: a write of {n} newlines was {outcome}");
        }
        if let Some(lines) = args.lines {
            let line = "x".repeat(args.width as usize);
            for _ in 0..lines {
                println!("{line}");
            }
        }
        if args.forever {
            flood_forever(&stdout);
        }
        // A JSON string of `n` bytes holds `n - 2` between its quotes.
        Ok(match args.result_bytes {
            Some(n) => Value::from("x".repeat((n as usize).saturating_sub(2))),
            None => json!({}),
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

orchestra_plugin::export!(Flood);
