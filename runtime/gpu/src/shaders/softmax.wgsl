// Softmax of each row of a [rows, cols] matrix, one invocation per row,
// shifted by the row's maximum so that exp never overflows.

struct Params { rows: u32, cols: u32, pad0: u32, pad1: u32 }

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> y: array<f32>;
@group(0) @binding(2) var<uniform> p: Params;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) li: u32) {
    let row = flat_index(wg, nwg, li);
    if (row >= p.rows) {
        return;
    }
    let base = row * p.cols;
    var m = neg_inf();
    for (var j = 0u; j < p.cols; j++) {
        m = max(m, x[base + j]);
    }
    var sum = 0.0;
    for (var j = 0u; j < p.cols; j++) {
        sum += exp(x[base + j] - m);
    }
    for (var j = 0u; j < p.cols; j++) {
        y[base + j] = exp(x[base + j] - m) / sum;
    }
}
