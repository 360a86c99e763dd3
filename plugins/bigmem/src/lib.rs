//! `bigmem`: a plugin whose initial memory is large, to show that the host refuses at
//! load a module that could never run under its `memory_mb`.
//!
//! It holds a zero-initialised static of 32 MiB (in `.bss`), so its linear memory must
//! start above 32 MiB before any code runs.
//!
//! Args (a JSON object): `index` (integer, optional, default 0): which byte of the
//! static to set and read back. Result: `{"value": 1}`.

mod bindings {
    //! Bindings generated from `wit/world.wit`, and the component's export of [`Bigmem`].
    #![allow(unsafe_code, missing_docs, unreachable_pub, clippy::too_many_arguments)]
    wit_bindgen::generate!({ world: "task-handler", path: "../../wit" });
    use super::Bigmem;
    export!(Bigmem);
}

use bindings::orchestra::plugin::log::{Level, log};
use bindings::{Guest, JobContext, JobError};
use serde_json::{Map, Value, json};
use std::sync::atomic::{AtomicU8, Ordering};

/// Bytes of the static.
const SIZE: usize = 32 << 20;

/// Zero-initialised, so it lives in `.bss` and takes no room in the module.
static BIG: [AtomicU8; SIZE] = [const { AtomicU8::new(0) }; SIZE];

/// The handler exported to the host.
struct Bigmem;

impl Guest for Bigmem {
    fn handle(job: JobContext) -> Result<String, JobError> {
        log(Level::Info, &format!("bigmem: attempt {}", job.attempt));
        let args: Map<String, Value> = serde_json::from_str(&job.args)
            .map_err(|e| JobError::Fatal(format!("bad args: {e}")))?;
        let index = args.get("index").and_then(Value::as_u64).unwrap_or(0) as usize;
        let byte = BIG
            .get(index)
            .ok_or_else(|| JobError::Fatal(format!("bad args: index {index} is past {SIZE}")))?;
        byte.store(1, Ordering::Relaxed);
        Ok(json!({ "value": byte.load(Ordering::Relaxed) }).to_string())
    }
}
