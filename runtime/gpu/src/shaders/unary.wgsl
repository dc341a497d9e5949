// Element-wise operations on one tensor. Op codes: `Unary::code` in ops.rs;
// semantics: `Unary::apply` (the CPU path), which the tests compare against.

struct Params { n: u32, op: u32, a: f32, b: f32 }

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> y: array<f32>;
@group(0) @binding(2) var<uniform> p: Params;

fn sigmoid(v: f32) -> f32 {
    if (v >= 0.0) {
        return 1.0 / (1.0 + exp(-v));
    }
    let e = exp(v);
    return e / (1.0 + e);
}

// `pow` in WGSL is undefined for negative bases; define it as the CPU path
// does (powf): integer exponents keep the sign rule, others give NaN.
fn power(v: f32, e: f32) -> f32 {
    if (e == 0.0) {
        return 1.0;
    }
    if (v == 0.0) {
        return select(pos_inf(), 0.0, e > 0.0);
    }
    let m = exp2(e * log2(abs(v)));
    if (v > 0.0) {
        return m;
    }
    if (fract(e) != 0.0) {
        return nan();
    }
    return select(m, -m, fract(e * 0.5) != 0.0);
}

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) li: u32) {
    let i = flat_index(wg, nwg, li);
    if (i >= p.n) {
        return;
    }
    let v = x[i];
    var r: f32;
    switch p.op {
        case 0u: { r = -v; }
        case 1u: { r = max(v, 0.0); }
        case 2u: { r = sigmoid(v); }
        // tanh(±15) is ±1 in f32; clamping avoids the overflow some
        // drivers' exp-based tanh has for large |x|.
        case 3u: { r = tanh(clamp(v, -15.0, 15.0)); }
        case 4u: { r = exp(v); }
        case 5u: { r = log(v); }
        case 6u: { r = sqrt(v); }
        case 7u: { r = abs(v); }
        case 8u: { r = v * p.a + p.b; }
        case 9u: { r = min(max(v, p.a), p.b); }
        default: { r = power(v, p.a); }
    }
    y[i] = r;
}
