// Cross-entropy of each row of logits against its class index:
// logsumexp(row) - row[target]. The host has checked every target < cols.

struct Params { rows: u32, cols: u32, pad0: u32, pad1: u32 }

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> targets: array<u32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;
@group(0) @binding(3) var<uniform> p: Params;

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
    y[row] = m + log(sum) - x[base + min(targets[row], p.cols - 1u)];
}
