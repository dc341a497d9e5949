//! Every kernel, GPU against CPU, on random inputs of odd shapes.
//!
//! These need a Vulkan adapter; lavapipe (Debian `mesa-vulkan-drivers`,
//! installed by `scripts/setup`) is enough. Without one they fail and say so
//! rather than pass without testing anything.

use crate::*;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use std::sync::{Arc, OnceLock};

/// Largest absolute difference allowed, relative to max(1, |expected|): the
/// two paths sum in different orders (GEMM tiles, fused multiply-adds) and
/// the GPU's exp/log/tanh are not correctly rounded.
const TOLERANCE: f32 = 1e-4;

fn gpu() -> Arc<GpuDevice> {
    static GPU: OnceLock<Devices> = OnceLock::new();
    let devices = GPU.get_or_init(|| Devices::discover(&DeviceConfig { allow_software: true, max: Some(1) }));
    match devices.gpus().first() {
        Some(g) => g.clone(),
        None => panic!(
            "these tests need a Vulkan adapter (apt-get install mesa-vulkan-drivers, or run scripts/setup): {}",
            devices.notice().unwrap_or("none found")
        ),
    }
}

fn random(rng: &mut SmallRng, n: usize, lo: f32, hi: f32) -> Vec<f32> {
    (0..n).map(|_| rng.random_range(lo..hi)).collect()
}

fn pair(shape: &[usize], data: &[f32]) -> (Tensor, Tensor) {
    let cpu = Tensor::from_data(&Device::Cpu, shape, data).unwrap();
    let gpu = Tensor::from_data(&Device::Gpu(gpu()), shape, data).unwrap();
    (cpu, gpu)
}

#[track_caller]
fn assert_close(what: &str, cpu: &Tensor, gpu: &Tensor) {
    assert_eq!(cpu.shape(), gpu.shape(), "{what}: shapes differ");
    assert_eq!(gpu.device_kind(), DeviceKind::Gpu);
    let (c, g) = (cpu.to_vec().unwrap(), gpu.to_vec().unwrap());
    for (i, (x, y)) in c.iter().zip(&g).enumerate() {
        let same = (x.is_nan() && y.is_nan()) || x == y || (x - y).abs() <= TOLERANCE * x.abs().max(1.0);
        assert!(same, "{what} {:?}: element {i}: cpu {x}, gpu {y}", cpu.shape());
    }
}

const SHAPES: &[&[usize]] = &[&[1], &[7], &[3, 5], &[33, 17], &[2, 3, 4], &[1000, 3], &[2, 1, 3, 5]];

#[test]
fn unary_kernels_match() {
    let mut rng = SmallRng::seed_from_u64(1);
    let ops = [
        Unary::Neg,
        Unary::Relu,
        Unary::Sigmoid,
        Unary::Tanh,
        Unary::Exp,
        Unary::Abs,
        Unary::Affine { scale: -1.5, shift: 0.25 },
        Unary::Clamp { lo: -0.5, hi: 0.75 },
        Unary::Pow { exponent: 2.0 },
        Unary::Pow { exponent: 3.0 },
    ];
    for shape in SHAPES {
        let n = shape.iter().product();
        let (c, g) = pair(shape, &random(&mut rng, n, -20.0, 20.0));
        for op in ops {
            assert_close(&format!("{op:?}"), &c.unary(op).unwrap(), &g.unary(op).unwrap());
        }
        let (c, g) = pair(shape, &random(&mut rng, n, 0.001, 50.0));
        for op in [Unary::Log, Unary::Sqrt, Unary::Pow { exponent: 0.5 }] {
            assert_close(&format!("{op:?}"), &c.unary(op).unwrap(), &g.unary(op).unwrap());
        }
    }
}

#[test]
fn binary_kernels_broadcast_alike() {
    let mut rng = SmallRng::seed_from_u64(2);
    let cases: &[(&[usize], &[usize])] = &[
        (&[7], &[7]),
        (&[33, 17], &[33, 17]),
        (&[33, 17], &[17]),
        (&[33, 17], &[33, 1]),
        (&[1, 17], &[33, 1]),
        (&[2, 3, 4], &[3, 1]),
        (&[5, 1, 3, 2], &[4, 1, 2]),
        (&[1], &[9, 9]),
    ];
    let ops = [
        Binary::Add,
        Binary::Sub,
        Binary::Mul,
        Binary::Div,
        Binary::Maximum,
        Binary::Minimum,
        Binary::Greater,
        Binary::ReluBackward,
    ];
    for (sa, sb) in cases {
        let a = random(&mut rng, sa.iter().product(), -3.0, 3.0);
        let b = random(&mut rng, sb.iter().product(), 0.5, 3.0);
        let (ca, ga) = pair(sa, &a);
        let (cb, gb) = pair(sb, &b);
        for op in ops {
            assert_close(&format!("{op:?} {sa:?} {sb:?}"), &ca.binary(op, &cb).unwrap(), &ga.binary(op, &gb).unwrap());
        }
    }
}

#[test]
fn gemm_matches_with_transposes_and_odd_shapes() {
    let mut rng = SmallRng::seed_from_u64(3);
    for (m, k, n) in [(1, 1, 1), (3, 5, 7), (64, 64, 64), (65, 17, 130), (200, 33, 1), (1, 300, 9), (128, 256, 96)] {
        for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
            let sa = if ta { [k, m] } else { [m, k] };
            let sb = if tb { [n, k] } else { [k, n] };
            let (ca, ga) = pair(&sa, &random(&mut rng, m * k, -1.0, 1.0));
            let (cb, gb) = pair(&sb, &random(&mut rng, k * n, -1.0, 1.0));
            let what = format!("matmul {m}x{k}x{n} ta={ta} tb={tb}");
            let c = ca.matmul(&cb, ta, tb).unwrap();
            assert_eq!(c.shape(), &[m, n]);
            assert_close(&what, &c, &ga.matmul(&gb, ta, tb).unwrap());
        }
    }
    // The CPU path against a plain triple loop, so both are not wrong alike.
    let a = random(&mut rng, 6, -1.0, 1.0);
    let b = random(&mut rng, 12, -1.0, 1.0);
    let c = Tensor::from_data(&Device::Cpu, &[2, 3], &a)
        .unwrap()
        .matmul(&Tensor::from_data(&Device::Cpu, &[3, 4], &b).unwrap(), false, false)
        .unwrap()
        .to_vec()
        .unwrap();
    for i in 0..2 {
        for j in 0..4 {
            let want: f32 = (0..3).map(|p| a[i * 3 + p] * b[p * 4 + j]).sum();
            assert!((c[i * 4 + j] - want).abs() < 1e-5);
        }
    }
}

#[test]
fn reductions_softmax_and_cross_entropy_match() {
    let mut rng = SmallRng::seed_from_u64(4);
    for shape in SHAPES {
        let (c, g) = pair(shape, &random(&mut rng, shape.iter().product(), -5.0, 5.0));
        for axis in 0..shape.len() {
            for op in [Reduce::Sum, Reduce::Mean, Reduce::Max] {
                assert_close(
                    &format!("{op:?} axis {axis}"),
                    &c.reduce(op, axis).unwrap(),
                    &g.reduce(op, axis).unwrap(),
                );
            }
        }
    }
    for (rows, cols) in [(1, 1), (5, 3), (37, 10), (300, 2)] {
        let (c, g) = pair(&[rows, cols], &random(&mut rng, rows * cols, -30.0, 30.0));
        assert_close("softmax", &c.softmax().unwrap(), &g.softmax().unwrap());
        let targets: Vec<u32> = (0..rows).map(|_| rng.random_range(0..cols as u32)).collect();
        assert_close("cross-entropy", &c.cross_entropy(&targets).unwrap(), &g.cross_entropy(&targets).unwrap());
        let idx: Vec<u32> = (0..rows * 2).map(|_| rng.random_range(0..rows as u32)).collect();
        assert_close("gather-rows", &c.gather_rows(&idx).unwrap(), &g.gather_rows(&idx).unwrap());
    }
    let sm = Tensor::from_data(&Device::Cpu, &[1, 3], &[1.0, 2.0, 3.0]).unwrap().softmax().unwrap().to_vec().unwrap();
    assert!((sm.iter().sum::<f32>() - 1.0).abs() < 1e-6 && sm[2] > sm[1] && sm[1] > sm[0]);
}

#[test]
fn optimizer_steps_match() {
    let mut rng = SmallRng::seed_from_u64(5);
    for shape in [&[1usize][..], &[11, 10], &[1001]] {
        let n = shape.iter().product();
        let (p, g, s1, s2) = (
            random(&mut rng, n, -1.0, 1.0),
            random(&mut rng, n, -1.0, 1.0),
            random(&mut rng, n, -0.1, 0.1),
            random(&mut rng, n, 0.0, 0.1),
        );
        let sgd = SgdParams { lr: 0.01, momentum: 0.9, weight_decay: 1e-4 };
        let (cp, gp) = pair(shape, &p);
        let (cg, gg) = pair(shape, &g);
        let (cv, gv) = pair(shape, &s1);
        for _ in 0..3 {
            cp.sgd_step(&cg, &cv, sgd).unwrap();
            gp.sgd_step(&gg, &gv, sgd).unwrap();
        }
        assert_close("sgd param", &cp, &gp);
        assert_close("sgd velocity", &cv, &gv);

        let (cp, gp) = pair(shape, &p);
        let (cm, gm) = pair(shape, &s1);
        let (cv, gv) = pair(shape, &s2);
        for step in 1..=3 {
            let adam = AdamParams { lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay: 0.0, step };
            cp.adam_step(&cg, &cm, &cv, adam).unwrap();
            gp.adam_step(&gg, &gm, &gv, adam).unwrap();
        }
        assert_close("adam param", &cp, &gp);
        assert_close("adam m", &cm, &gm);
        assert_close("adam v", &cv, &gv);
    }
}

/// `write` replaces a tensor's elements in place on both paths; a view of
/// the same storage sees them; a kernel queued before the write reads the
/// old values, one queued after the new.
#[test]
fn a_write_lands_in_place_in_order() {
    let old = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
    let new = [-1.0, 0.5, 8.0, 0.0, 2.5, -3.0];
    let (cpu, gpu) = pair(&[2, 3], &old);
    for t in [&cpu, &gpu] {
        let view = t.reshape(&[6]).unwrap();
        let before = t.unary(Unary::Neg).unwrap();
        t.write(&new).unwrap();
        let after = t.unary(Unary::Neg).unwrap();
        assert_eq!(view.to_vec().unwrap(), new, "{:?}", t.device_kind());
        assert_eq!(before.to_vec().unwrap(), old.map(|x: f32| -x), "{:?}", t.device_kind());
        assert_eq!(after.to_vec().unwrap(), new.map(|x: f32| -x), "{:?}", t.device_kind());
        let e = t.write(&new[..5]).unwrap_err().to_string();
        assert!(e.contains("write") && e.contains("holds 6 values, got 5"), "{e}");
    }
}

#[test]
fn bad_input_is_an_error_naming_the_operation_and_shapes() {
    for device in [Device::Cpu, Device::Gpu(gpu())] {
        let a = Tensor::full(&device, &[2, 3], 1.0).unwrap();
        let b = Tensor::full(&device, &[4, 5], 1.0).unwrap();
        let e = a.matmul(&b, false, false).unwrap_err().to_string();
        assert!(e.starts_with("matmul:") && e.contains("[2, 3]") && e.contains("[4, 5]"), "{e}");
        let e = a.binary(Binary::Add, &b).unwrap_err().to_string();
        assert!(e.contains("add") && e.contains("do not broadcast"), "{e}");
        let e = a.gather_rows(&[0, 2]).unwrap_err().to_string();
        assert!(e.contains("index 2") && e.contains("out of range"), "{e}");
        let e = a.cross_entropy(&[0, 3]).unwrap_err().to_string();
        assert!(e.contains("target 3"), "{e}");
        let e = a.reduce(Reduce::Sum, 2).unwrap_err().to_string();
        assert!(e.contains("axis 2"), "{e}");
        let e = a.reshape(&[4]).unwrap_err().to_string();
        assert!(e.contains("cannot reshape [2, 3]"), "{e}");
        let e = a.sgd_step(&a, &b, SgdParams { lr: 0.1, momentum: 0.0, weight_decay: 0.0 }).unwrap_err().to_string();
        assert!(e.contains("velocity has shape [4, 5]"), "{e}");
        let v = Tensor::full(&device, &[2, 3], 0.0).unwrap();
        let e = a.sgd_step(&v, &v, SgdParams { lr: 0.1, momentum: 0.0, weight_decay: 0.0 }).unwrap_err().to_string();
        assert!(e.contains("same tensor"), "{e}");
        assert!(Tensor::from_data(&device, &[2, 2], &[1.0]).is_err());
        assert!(Tensor::full(&device, &[1, 1, 1, 1, 1], 0.0).unwrap_err().to_string().contains("dimensions"));
        assert!(Tensor::full(&device, &[1 << 20, 1 << 20], 0.0).unwrap_err().to_string().contains("elements"));
        assert!(Tensor::one_hot(&device, &[1, 5], 3).unwrap_err().to_string().contains("index 5"));
    }
    let on_gpu = Tensor::full(&Device::Gpu(gpu()), &[2], 1.0).unwrap();
    let on_cpu = Tensor::full(&Device::Cpu, &[2], 1.0).unwrap();
    assert!(on_gpu.binary(Binary::Add, &on_cpu).unwrap_err().to_string().contains("different devices"));
}

#[test]
fn a_lost_device_fails_its_kernels_and_the_node_falls_back_to_the_cpu() {
    // A device of its own: losing the shared one would break the other tests.
    let devices = Devices::discover(&DeviceConfig { allow_software: true, max: Some(1) });
    let gpu = devices.gpus().first().expect("a Vulkan adapter (see gpu())").clone();
    let t = Tensor::from_data(&Device::Gpu(gpu.clone()), &[2], &[1.0, 2.0]).unwrap();
    assert_eq!(t.unary(Unary::Neg).unwrap().to_vec().unwrap(), vec![-1.0, -2.0]);
    assert!(matches!(devices.for_task(0.5), Device::Gpu(_)));
    gpu.simulate_loss();
    let e = t.unary(Unary::Neg).unwrap_err().to_string();
    assert!(e.contains("was lost") && e.contains("CPU path"), "{e}");
    assert!(t.to_vec().unwrap_err().to_string().contains("was lost"));
    assert_eq!(devices.usable(), 0);
    assert!(matches!(devices.for_task(1.0), Device::Cpu));
    assert!(matches!(devices.for_task(0.0), Device::Cpu));
}

#[test]
fn optimizer_steps_follow_their_formulas() {
    // Both paths could be wrong alike; check the CPU path by hand.
    let t = |v: f32| Tensor::from_data(&Device::Cpu, &[1], &[v]).unwrap();
    let (p, g, v) = (t(1.0), t(0.5), t(0.0));
    let h = SgdParams { lr: 0.1, momentum: 0.9, weight_decay: 0.0 };
    p.sgd_step(&g, &v, h).unwrap();
    assert_eq!((p.to_vec().unwrap()[0], v.to_vec().unwrap()[0]), (0.95, 0.5));
    p.sgd_step(&g, &v, h).unwrap();
    // v = 0.9·0.5 + 0.5 = 0.95; p = 0.95 - 0.095
    assert!((v.to_vec().unwrap()[0] - 0.95).abs() < 1e-6 && (p.to_vec().unwrap()[0] - 0.855).abs() < 1e-6);
    // Adam's first step moves each parameter by lr against its gradient's sign.
    let (p, m, v) = (t(1.0), t(0.0), t(0.0));
    let h = AdamParams { lr: 0.01, beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay: 0.0, step: 1 };
    p.adam_step(&t(-3.0), &m, &v, h).unwrap();
    assert!((p.to_vec().unwrap()[0] - 1.01).abs() < 1e-6);
    assert!((m.to_vec().unwrap()[0] + 0.3).abs() < 1e-6 && (v.to_vec().unwrap()[0] - 0.009).abs() < 1e-6);
}
