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

mod bindings {
    //! Bindings generated from `wit/world.wit`, and the component's export of [`Spin`].
    #![allow(unsafe_code, missing_docs, unreachable_pub, clippy::too_many_arguments)]
    wit_bindgen::generate!({ world: "task-handler", path: "../../wit" });
    use super::Spin;
    export!(Spin);
}

use bindings::orchestra::plugin::log::{Level, log};
use bindings::{Guest, JobContext, JobError};
use serde_json::{Map, Value, json};
use std::hint::black_box;

/// The handler exported to the host.
struct Spin;

impl Guest for Spin {
    fn handle(job: JobContext) -> Result<String, JobError> {
        log(Level::Info, &format!("spin: attempt {}", job.attempt));
        let args: Map<String, Value> = serde_json::from_str(&job.args)
            .map_err(|e| JobError::Fatal(format!("bad args: {e}")))?;
        let iterations = match args.get("iterations") {
            None => None,
            Some(v) => Some(v.as_u64().ok_or_else(|| {
                JobError::Fatal("bad args: `iterations` must be a non-negative integer".into())
            })?),
        };

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
        Ok(json!({ "iterations": done, "value": value }).to_string())
    }
}
