//! Host bindings generated from the WIT package in `wit/` (generated code only).

wasmtime::component::bindgen!({
    path: "../wit",
    world: "task-handler",
    imports: { default: trappable },
    exports: { default: async },
});
