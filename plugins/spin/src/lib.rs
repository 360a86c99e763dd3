//! `spin`: a CPU-bound plugin, to show the host's fuel budget and wall-clock deadline.
//!
//! The host runs each attempt with a limited amount of fuel (roughly, wasm instructions)
//! and a deadline; a handler that runs past either is stopped and the attempt fails.
//! This plugin does real work in a loop: steps of a linear congruential generator, passed
//! through `std::hint::black_box` so the optimiser cannot remove or shorten the loop.
//!
//! Args (a JSON object): `iterations` (integer, optional): how many steps to run; without
//! it the loop never ends, and only the host's limits stop it.
//!
//! Result: `{"iterations": n, "value": x}`, with `x` the generator's final state.

use orchestra_plugin::{Error, Handler, Job, log};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::hint::black_box;

/// The handler exported to the host.
struct Spin;

/// What a job asks for.
#[derive(Deserialize)]
struct Args {
    /// Steps to run; without it, the loop never ends.
    iterations: Option<u64>,
}

impl Handler for Spin {
    fn handle(job: Job) -> Result<impl Serialize, Error> {
        log::info!("spin: attempt {}", job.attempt());
        let Args { iterations } = job.args()?;

        let mut value: u64 = 1;
        let mut done: u64 = 0;
        while iterations.is_none_or(|n| done < n) {
            // Knuth's MMIX LCG step; `black_box` keeps every step in the compiled code.
            value = black_box(
                value
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1_442_695_040_888_963_407),
            );
            done += 1;
        }
        Ok(json!({ "iterations": done, "value": value }))
    }
}

orchestra_plugin::export!(Spin);
