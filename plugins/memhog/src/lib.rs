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

use orchestra_plugin::{Error, Handler, Job, log};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::hint::black_box;

/// The handler exported to the host.
struct Memhog;

/// What a job asks for.
#[derive(Deserialize)]
struct Args {
    /// How many MiB to allocate.
    mb: u64,
}

impl Handler for Memhog {
    fn handle(job: Job) -> Result<impl Serialize, Error> {
        log::info!("memhog: attempt {}", job.attempt());
        let Args { mb } = job.args()?;
        // A wasm32 address space is 4 GiB, so larger sizes cannot even be expressed.
        let bytes = usize::try_from(mb)
            .ok()
            .and_then(|mb| mb.checked_mul(1 << 20))
            .ok_or_else(|| Error::bad_args(format!("{mb} MiB is too large")))?;

        let mut buf: Vec<u8> = Vec::new();
        buf.reserve_exact(bytes);
        // Write the first byte of every page of the reserved (not yet initialised) space.
        for page in buf.spare_capacity_mut().chunks_mut(4096) {
            page[0].write(1);
        }
        black_box(&mut buf);
        Ok(json!({ "mb": mb }))
    }
}

orchestra_plugin::export!(Memhog);
