//! Host bindings generated from the WIT packages (generated code only).
//!
//! The top level is `orchestra:plugin@0.2.0` (`wit/`); [`v0_1`] is `orchestra:plugin@0.1.0`
//! (`wit/0.1.0`), still linked so components built against it keep instantiating:
//! wasmtime's semver matching does not let a 0.2 import satisfy a 0.1 one.

wasmtime::component::bindgen!({
    path: "../wit",
    world: "task-handler",
    imports: {
        // Waits for a process: the only import that must not block a worker thread.
        "orchestra:plugin/agent.exec": async | trappable,
        default: trappable,
    },
    exports: { default: async },
});

pub(super) mod v0_1 {
    //! Imports of the 0.1.0 world. Its export has the same shape as 0.2.0's, so the
    //! 0.2.0 [`TaskHandlerPre`](super::TaskHandlerPre) calls both versions.
    wasmtime::component::bindgen!({
        path: "../wit/0.1.0",
        world: "task-handler",
        imports: { default: trappable },
        exports: { default: async },
    });
}
