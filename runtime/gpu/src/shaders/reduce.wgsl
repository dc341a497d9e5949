// Reduction along one axis of a tensor seen as [outer, len, inner]; one
// invocation per output element. Op codes: `Reduce::code` in ops.rs.

struct Params { outer: u32, len: u32, inner: u32, op: u32 }

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> y: array<f32>;
@group(0) @binding(2) var<uniform> p: Params;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) li: u32) {
    let i = flat_index(wg, nwg, li);
    if (i >= p.outer * p.inner) {
        return;
    }
    let o = i / p.inner;
    let inner = i % p.inner;
    let base = o * p.len * p.inner + inner;
    var acc = 0.0;
    if (p.op == 2u) {
        acc = neg_inf();
    }
    for (var j = 0u; j < p.len; j++) {
        let v = x[base + j * p.inner];
        if (p.op == 2u) {
            acc = max(acc, v);
        } else {
            acc += v;
        }
    }
    if (p.op == 1u) {
        acc = acc / f32(p.len);
    }
    y[i] = acc;
}
