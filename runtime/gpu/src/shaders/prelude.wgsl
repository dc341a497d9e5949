// Prepended to every kernel (gpu.rs, `Kernel::source`).

// The flat index of an invocation in a dispatch of 256-wide workgroups
// folded into two dimensions (`GpuDevice::groups_for`): one dimension holds
// at most 65 535 workgroups.
fn flat_index(wg: vec3<u32>, nwg: vec3<u32>, li: u32) -> u32 {
    return (wg.y * nwg.x + wg.x) * 256u + li;
}

// WGSL has no literals for these (and no const-evaluated bitcast in naga).
fn neg_inf() -> f32 {
    return bitcast<f32>(0xff800000u);
}

fn pos_inf() -> f32 {
    return bitcast<f32>(0x7f800000u);
}

fn nan() -> f32 {
    return bitcast<f32>(0x7fc00000u);
}
