//! Generated from `wit/runtime.wit`. Kept private: the rest of the crate
//! wraps these types.

wasmtime::component::bindgen!({
    path: "../../wit",
    world: "job",
    imports: {
        // Dropping a reference never waits; as an async import each drop
        // boxed a future (one of a short task's dozen allocations).
        "wray:runtime/types.[drop]object-ref": trappable,
        default: async | trappable,
    },
    exports: { default: async },
    with: {
        "wray:runtime/types.object-ref": crate::instance::RefGuard,
        "wray:runtime/tensors.tensor": crate::tensors::HostTensor,
    },
});
