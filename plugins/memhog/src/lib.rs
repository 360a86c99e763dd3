//! `memhog`: a plugin that allocates memory, to show the host's memory limit.
//!
//! A component's linear memory grows as it allocates; the host caps that growth per job.
//! This plugin reserves a buffer of the asked size and writes one byte in every 4 KiB page
//! of it, so the memory is really used, then passes it through `std::hint::black_box` so
//! the optimiser cannot drop it. Touching one byte per page rather than filling the whole
//! buffer keeps the fuel cost small, so it is the memory limit, not the fuel budget, that
//! a large request runs into.
//!
//! The allocation is infallible, as most Rust code's is: when the host refuses to grow
//! memory, the guest aborts (a trap), and the host records the attempt as `memory_limit`.
//!
//! Args (a JSON object): `mb` (integer, required): how many MiB to allocate.
//!
//! Result: `{"mb": mb}`.

mod bindings {
    //! Bindings generated from `wit/world.wit`, and the component's export of [`Memhog`].
    #![allow(unsafe_code, missing_docs, unreachable_pub, clippy::too_many_arguments)]
    wit_bindgen::generate!({ world: "task-handler", path: "../../wit" });
    use super::Memhog;
    export!(Memhog);
}

use bindings::orchestra::plugin::log::{Level, log};
use bindings::{Guest, JobContext, JobError};
use serde_json::{Map, Value, json};
use std::hint::black_box;

/// The handler exported to the host.
struct Memhog;

impl Guest for Memhog {
    fn handle(job: JobContext) -> Result<String, JobError> {
        log(Level::Info, &format!("memhog: attempt {}", job.attempt));
        let args: Map<String, Value> = serde_json::from_str(&job.args)
            .map_err(|e| JobError::Fatal(format!("bad args: {e}")))?;
        let mb = args.get("mb").and_then(Value::as_u64).ok_or_else(|| {
            JobError::Fatal("bad args: `mb` (a non-negative integer) is required".into())
        })?;
        // A wasm32 address space is 4 GiB, so larger sizes cannot even be expressed.
        let bytes = usize::try_from(mb)
            .ok()
            .and_then(|mb| mb.checked_mul(1 << 20))
            .ok_or_else(|| JobError::Fatal(format!("bad args: {mb} MiB is too large")))?;

        let mut buf: Vec<u8> = Vec::new();
        buf.reserve_exact(bytes);
        // Write the first byte of every page of the reserved (not yet initialised) space.
        for page in buf.spare_capacity_mut().chunks_mut(4096) {
            page[0].write(1);
        }
        black_box(&mut buf);
        Ok(json!({ "mb": mb }).to_string())
    }
}
