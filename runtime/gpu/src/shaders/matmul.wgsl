// C[m, n] = op(A)·op(B), tiled: a 16×16 workgroup computes a 64×64 tile of
// C, each invocation a 4×4 block held in registers, stepping through K in
// slices of 16 staged in workgroup memory. `ta`/`tb` read A or B transposed
// (row-major storage either way); out-of-range loads read 0, so any shape
// works.

struct Params { m: u32, n: u32, k: u32, ta: u32, tb: u32, pad0: u32, pad1: u32, pad2: u32 }

@group(0) @binding(0) var<storage, read> a: array<f32>;
@group(0) @binding(1) var<storage, read> b: array<f32>;
@group(0) @binding(2) var<storage, read_write> c: array<f32>;
@group(0) @binding(3) var<uniform> p: Params;

const TILE: u32 = 64u;
const SLICE: u32 = 16u;

var<workgroup> tile_a: array<array<f32, 64>, 16>; // [k][row]
var<workgroup> tile_b: array<array<f32, 64>, 16>; // [k][col]

fn load_a(row: u32, col: u32) -> f32 {
    if (row >= p.m || col >= p.k) {
        return 0.0;
    }
    if (p.ta == 0u) {
        return a[row * p.k + col];
    }
    return a[col * p.m + row];
}

fn load_b(row: u32, col: u32) -> f32 {
    if (row >= p.k || col >= p.n) {
        return 0.0;
    }
    if (p.tb == 0u) {
        return b[row * p.n + col];
    }
    return b[col * p.k + row];
}

@compute @workgroup_size(16, 16)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let row0 = wg.y * TILE;
    let col0 = wg.x * TILE;
    let t = lid.y * 16u + lid.x;
    var acc: array<array<f32, 4>, 4>;
    for (var i = 0u; i < 4u; i++) {
        for (var j = 0u; j < 4u; j++) {
            acc[i][j] = 0.0;
        }
    }
    for (var k0 = 0u; k0 < p.k; k0 += SLICE) {
        for (var s = 0u; s < 4u; s++) {
            let e = t + s * 256u;
            // A: consecutive invocations walk along K (contiguous when A is
            // not transposed); B: along N.
            tile_a[e % SLICE][e / SLICE] = load_a(row0 + e / SLICE, k0 + e % SLICE);
            tile_b[e / TILE][e % TILE] = load_b(k0 + e / TILE, col0 + e % TILE);
        }
        workgroupBarrier();
        for (var kk = 0u; kk < SLICE; kk++) {
            var av: array<f32, 4>;
            var bv: array<f32, 4>;
            for (var i = 0u; i < 4u; i++) {
                av[i] = tile_a[kk][lid.y + i * 16u];
                bv[i] = tile_b[kk][lid.x + i * 16u];
            }
            for (var i = 0u; i < 4u; i++) {
                for (var j = 0u; j < 4u; j++) {
                    acc[i][j] = fma(av[i], bv[j], acc[i][j]);
                }
            }
        }
        workgroupBarrier();
    }
    for (var i = 0u; i < 4u; i++) {
        let row = row0 + lid.y + i * 16u;
        for (var j = 0u; j < 4u; j++) {
            let col = col0 + lid.x + j * 16u;
            if (row < p.m && col < p.n) {
                c[row * p.n + col] = acc[i][j];
            }
        }
    }
}
