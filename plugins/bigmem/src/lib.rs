//! `bigmem`: a plugin whose initial memory is large, to show that the host refuses at
//! load a module that could never run under its `memory_mb`.
//!
//! It holds a zero-initialised static of 32 MiB (in `.bss`), so its linear memory must
//! start above 32 MiB before any code runs.
//!
//! Args (a JSON object): `index` (integer, optional, default 0): which byte of the
//! static to set and read back. Result: `{"value": 1}`.

use orchestra_plugin::{Error, Handler, Job, log};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::sync::atomic::{AtomicU8, Ordering};

/// Bytes of the static.
const SIZE: usize = 32 << 20;

/// Zero-initialised, so it lives in `.bss` and takes no room in the module.
static BIG: [AtomicU8; SIZE] = [const { AtomicU8::new(0) }; SIZE];

/// The handler exported to the host.
struct Bigmem;

/// What a job asks for.
#[derive(Deserialize)]
struct Args {
    /// Which byte of the static to set and read back.
    #[serde(default)]
    index: u64,
}

impl Handler for Bigmem {
    fn handle(job: Job) -> Result<impl Serialize, Error> {
        log::info!("bigmem: attempt {}", job.attempt());
        let Args { index } = job.args()?;
        let byte = usize::try_from(index)
            .ok()
            .and_then(|index| BIG.get(index))
            .ok_or_else(|| Error::bad_args(format!("index {index} is past {SIZE}")))?;
        byte.store(1, Ordering::Relaxed);
        Ok(json!({ "value": byte.load(Ordering::Relaxed) }))
    }
}

orchestra_plugin::export!(Bigmem);
