//! Generated from `wit/runtime.wit`. Kept private: the rest of the crate
//! wraps these types.

wasmtime::component::bindgen!({
    path: "../../wit",
    world: "job",
    imports: { default: async | trappable },
    exports: { default: async },
    with: {
        "wray:runtime/types.object-ref": crate::instance::RefGuard,
        "wray:runtime/tensors.tensor": crate::tensors::HostTensor,
    },
});
