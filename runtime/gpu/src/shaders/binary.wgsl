// Element-wise operations on two tensors with numpy broadcasting. Shapes are
// padded on the left to rank 4; a stride of 0 repeats an operand along a
// dimension. Op codes: `Binary::code` in ops.rs.

struct Params {
    n: u32, op: u32, pad0: u32, pad1: u32,
    dims: vec4<u32>,
    stride_a: vec4<u32>,
    stride_b: vec4<u32>,
}

@group(0) @binding(0) var<storage, read> a: array<f32>;
@group(0) @binding(1) var<storage, read> b: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;
@group(0) @binding(3) var<uniform> p: Params;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) li: u32) {
    let i = flat_index(wg, nwg, li);
    if (i >= p.n) {
        return;
    }
    var rest = i;
    var ia = 0u;
    var ib = 0u;
    for (var d = 3; d >= 0; d--) {
        let coord = rest % p.dims[d];
        rest = rest / p.dims[d];
        ia += coord * p.stride_a[d];
        ib += coord * p.stride_b[d];
    }
    let u = a[ia];
    let v = b[ib];
    var r: f32;
    switch p.op {
        case 0u: { r = u + v; }
        case 1u: { r = u - v; }
        case 2u: { r = u * v; }
        case 3u: { r = u / v; }
        case 4u: { r = max(u, v); }
        case 5u: { r = min(u, v); }
        case 6u: { r = select(0.0, 1.0, u > v); }
        default: { r = select(0.0, v, u > 0.0); }
    }
    y[i] = r;
}
