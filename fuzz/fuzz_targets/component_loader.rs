//! The component loader on arbitrary bytes: the checks wray makes before
//! compiling, wasmtime's parser and validator, compilation, and linking
//! against wray's world. Each input must load or be refused with an error,
//! never panic. Seeded from a real job (see fuzz/README.md), so mutations
//! start from a valid component.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;
use wray_host::{ComponentCache, Engine, EngineConfig};

fn cache() -> &'static ComponentCache {
    static CACHE: OnceLock<ComponentCache> = OnceLock::new();
    CACHE.get_or_init(|| {
        let engine = Engine::new(&EngineConfig { max_instances: 4 }).expect("an engine");
        // No artifact directory: every input is compiled, nothing is written.
        ComponentCache::new(engine, None).expect("a component cache")
    })
}

fuzz_target!(|data: &[u8]| {
    let _ = cache().load("fuzz.wasm", data);
});
