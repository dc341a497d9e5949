//! GEMM throughput of the CPU path and of the wgpu path (whatever adapter
//! the machine has; on a machine without a GPU that is Mesa's lavapipe, so
//! the GPU figures there say nothing about real GPUs).
//!
//! `cargo run --release -p wray-gpu --example gemm [-- 256 512 1024 2048]`
//! prints one line per size and path: `gemm <path> <n> <GFLOP/s>`.

use std::time::{Duration, Instant};
use wray_gpu::{Device, DeviceConfig, Devices, Tensor};

fn gflops(n: usize, per_run: Duration) -> f64 {
    2.0 * (n as f64).powi(3) / per_run.as_secs_f64() / 1e9
}

/// Runs `f` until at least `budget` has passed (and at least twice), returns
/// the best time of one run.
fn best(budget: Duration, mut f: impl FnMut()) -> Duration {
    let start = Instant::now();
    let mut best = Duration::MAX;
    let mut runs = 0;
    while runs < 2 || start.elapsed() < budget {
        let t = Instant::now();
        f();
        best = best.min(t.elapsed());
        runs += 1;
    }
    best
}

fn main() {
    let sizes: Vec<usize> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let sizes = if sizes.is_empty() { vec![256, 512, 1024, 2048] } else { sizes };
    let devices = Devices::discover(&DeviceConfig { allow_software: true, max: Some(1) });
    let gpu = devices.gpus().first().cloned();
    match &gpu {
        Some(g) => println!("# gpu path: {}{}", g.name(), if g.is_software() { " (software)" } else { "" }),
        None => println!("# gpu path: none ({})", devices.notice().unwrap_or("")),
    }
    for &n in &sizes {
        let data: Vec<f32> = (0..n * n).map(|i| ((i * 7919) % 1000) as f32 / 1000.0 - 0.5).collect();
        let a = Tensor::from_data(&Device::Cpu, &[n, n], &data).unwrap();
        let t = best(Duration::from_secs(1), || {
            a.matmul(&a, false, false).unwrap();
        });
        println!("gemm cpu {n} {:.1}", gflops(n, t));
        if let Some(g) = &gpu {
            let a = Tensor::from_data(&Device::Gpu(g.clone()), &[n, n], &data).unwrap();
            // Warm up (pipeline compilation), then time kernels to completion.
            a.matmul(&a, false, false).unwrap().to_vec().unwrap();
            let t = best(Duration::from_secs(2), || {
                let c = a.matmul(&a, false, false).unwrap();
                c.reshape(&[n * n]).unwrap();
                c.to_vec().unwrap();
            });
            println!("gemm gpu {n} {:.2}", gflops(n, t));
        }
    }
}
