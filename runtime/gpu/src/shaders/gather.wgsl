// Copies the rows at `indices` (checked by the host) into a new tensor; one
// invocation per output element.

struct Params { n: u32, row_len: u32, pad0: u32, pad1: u32 }

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> indices: array<u32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;
@group(0) @binding(3) var<uniform> p: Params;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) li: u32) {
    let i = flat_index(wg, nwg, li);
    if (i >= p.n) {
        return;
    }
    let row = i / p.row_len;
    y[i] = x[indices[row] * p.row_len + i % p.row_len];
}
