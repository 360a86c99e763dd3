//! The plugin contract's bindings, generated from `wit/` (a link to the repository's `wit/`,
//! which `cargo package` follows, so the published crate carries the WIT it was built from).
//!
//! Public for the macros only: plugins use the types the crate re-exports.

#![allow(unsafe_code, missing_docs, unreachable_pub, clippy::too_many_arguments)]

wit_bindgen::generate!({
    world: "task-handler",
    path: "wit",
    pub_export_macro: true,
    additional_derives: [PartialEq, Eq],
});

/// The previous contract, `orchestra:plugin@0.1.0`, under a world name of its own (the
/// export macros of both worlds live at the crate root). Its types have the same shapes as
/// the current ones, so they are the current ones.
pub mod v0_1 {
    wit_bindgen::generate!({
        inline: "
            package orchestra:sdk;
            world legacy-task-handler {
                include orchestra:plugin/task-handler@0.1.0;
            }
        ",
        path: "wit/0.1.0",
        world: "legacy-task-handler",
        pub_export_macro: true,
        generate_all,
        with: {
            "orchestra:plugin/types@0.1.0": crate::bindings::orchestra::plugin::types,
            "orchestra:plugin/log@0.1.0/level": crate::bindings::orchestra::plugin::log::Level,
        },
    });
}
