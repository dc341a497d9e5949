// One fused SGD-with-momentum update, in place (PyTorch's formulation):
// v = momentum·v + (g + weight_decay·p); p -= lr·v.

struct Params { n: u32, lr: f32, momentum: f32, weight_decay: f32 }

@group(0) @binding(0) var<storage, read_write> param: array<f32>;
@group(0) @binding(1) var<storage, read> grad: array<f32>;
@group(0) @binding(2) var<storage, read_write> velocity: array<f32>;
@group(0) @binding(3) var<uniform> p: Params;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) li: u32) {
    let i = flat_index(wg, nwg, li);
    if (i >= p.n) {
        return;
    }
    let v = p.momentum * velocity[i] + (grad[i] + p.weight_decay * param[i]);
    velocity[i] = v;
    param[i] = param[i] - p.lr * v;
}
