//! Generated from `wit/runtime.wit`. Private: the SDK's types wrap it.

wit_bindgen::generate!({
    path: "../../wit",
    world: "job",
    // Link-time helpers keep the component-type section even though the
    // bindings live in a library crate rather than the job crate itself.
    disable_custom_section_link_helpers: false,
});

use crate::dispatch::Entry;
export!(Entry);
