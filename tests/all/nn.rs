//! Tensors, `wray::nn` and GPUs: the ML examples train to their reference
//! accuracy, gradients match finite differences, bad tensor input is an
//! error, and tasks asking for GPUs get one (Mesa's lavapipe here, allowed
//! with WRAY_ALLOW_SOFTWARE_GPU=1).

use crate::util::*;
use std::time::Duration;

/// Runs an example with the datasets granted at /data.
fn run_example(job: &std::path::Path, flags: &[&str], args: &[&str], envs: &[(&str, &str)]) -> (String, String) {
    let grant = format!("{}::/data", workspace().join("examples/data").display());
    let mut all = vec!["--dir", grant.as_str()];
    all.extend_from_slice(flags);
    run_ok(job, &all, args, envs)
}

#[test]
fn wine_mlp_reaches_the_reference_accuracy_on_the_cpu_path() {
    let (out, _) = run_example(&guests().wine_mlp, &[], &[], &[]);
    assert!(out.contains("device: cpu"), "{out}");
    let accuracy = number_after(&out, "test accuracy:");
    // scikit-learn's MLP on the same split: 0.7525.
    assert!(accuracy >= 0.75, "accuracy {accuracy}\n{out}");
}

#[test]
fn wine_mlp_trains_on_a_gpu_like_on_the_cpu() {
    // Without permission to use the software adapter: a notice, then the
    // CPU path.
    let (cpu, err) = run_example(&guests().wine_mlp, &["--gpus", "1"], &["--epochs", "1", "--gpus", "1"], &[]);
    assert!(err.contains("no usable GPU") && err.contains("CPU path"), "{err}");
    assert!(cpu.contains("device: cpu"), "{cpu}");
    let (gpu, _) =
        run_example(&guests().wine_mlp, &["--gpus", "1"], &["--epochs", "1", "--gpus", "1"], &[SOFTWARE_GPU]);
    assert!(gpu.contains("device: gpu 0: "), "{gpu}");
    // Same data, same seed, same kernels' semantics: the same model.
    let (lc, lg) =
        (number_after(&cpu, "epochs: 1, final batch loss"), number_after(&gpu, "epochs: 1, final batch loss"));
    assert!((lc - lg).abs() < 1e-3, "loss on cpu {lc}, on gpu {lg}");
    assert_eq!(number_after(&cpu, "test accuracy:"), number_after(&gpu, "test accuracy:"));
}

#[test]
fn breast_cancer_mlp_matches_gradient_boosting() {
    let (out, _) = run_example(&guests().breast_cancer_mlp, &[], &[], &[]);
    // Gradient boosting on the same data here: 0.965.
    assert!(number_after(&out, "test accuracy:") >= 0.95, "{out}");
}

#[test]
fn data_parallel_training_matches_one_worker() {
    let (out, _) = run_example(&guests().data_parallel_mlp, &[], &["--workers", "2", "--epochs", "40"], &[]);
    assert!(out.contains("2 workers, 40 epochs") && out.contains("replicas identical: true"), "{out}");
    let parallel = number_after(&out, "data-parallel test accuracy:");
    let single = number_after(&out, "single-worker test accuracy:");
    assert!(parallel >= 0.72 && single >= 0.72, "{out}");
    assert!((parallel - single).abs() <= 0.03, "{out}");
}

#[test]
fn gradients_match_finite_differences() {
    let out = scenario(&[], &["nn-gradcheck"]);
    assert_code(&out, 0);
    let text = stdout(&out);
    assert!(!text.contains("gradcheck ") || !text.contains(": element"), "{text}");
    let worst = text.lines().find_map(|l| l.split("worst relative error ").nth(1)).expect(&text);
    assert!(worst.trim().parse::<f64>().unwrap() < 1e-2, "{text}");
    assert!(text.contains("gradcheck: 16 operations"), "{text}");
    assert!(
        text.contains("xor sgd: [0.0, 1.0, 1.0, 0.0]") && text.contains("xor adam: [0.0, 1.0, 1.0, 0.0]"),
        "{text}"
    );
}

#[test]
fn bad_tensor_input_is_an_error_naming_operation_and_shapes() {
    let out = scenario(&["--memory-limit", "256MiB"], &["nn-errors"]);
    assert_code(&out, 0);
    let text = stdout(&out);
    for want in [
        "matmul: invalid argument: matmul: shapes [2, 3] and [4, 5] do not fit",
        "add: invalid argument: add: shapes [2, 3] and [4, 5] do not broadcast",
        "gather: invalid argument: gather-rows: index 7 at position 1 is out of range for shape [2, 3]",
        "xent: invalid argument: cross-entropy: target 9 at row 1 is out of range",
        "from_vec: invalid argument: tensor from data: shape [2, 2] needs 4 values, got 1",
        "rank: invalid argument: tensor full: shape [1, 1, 1, 1, 1] has more than 4 dimensions",
        "huge: invalid argument: tensor full: shape [1073741824, 1073741824] has more than 33554432 elements",
        "freed: invalid argument: unary: the tensor was freed",
        "sgd: invalid argument: sgd-step: parameter and grad are the same tensor",
        "limit after 3 tensors: invalid argument: tensor memory limit exceeded",
        "after dropping: true",
    ] {
        assert!(text.contains(want), "missing {want:?} in:\n{text}");
    }
}

#[test]
fn tensors_travel_through_the_object_store() {
    let out = scenario(&[], &["nn-objects"]);
    assert_code(&out, 0);
    let text = stdout(&out);
    assert!(text.contains("round trip: [2, 3] [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]"), "{text}");
    assert!(text.contains("as value: [2, 3] [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]"), "{text}");
    assert!(text.contains("task: [2.0, 4.0, 6.0, 8.0, 10.0, 12.0]"), "{text}");
    assert!(
        text.contains("not a tensor: invalid argument: tensor from-object: the object does not hold a tensor"),
        "{text}"
    );
}

#[test]
fn fractional_gpu_tasks_share_one_device() {
    let job = guests().testjob.clone();
    let out = wray_with(
        // No --gpus: the adapter found is offered as `GPU: 1`.
        &["run", "--cpus", "4", path(&job), "--", "gpu-share", "4"],
        &[SOFTWARE_GPU],
        Duration::from_secs(120),
    );
    assert_code(&out, 0);
    let text = stdout(&out);
    let tasks: Vec<&str> = text.lines().filter(|l| l.starts_with("task ")).collect();
    assert_eq!(tasks.len(), 4, "{text}");
    let starts: Vec<u128> = tasks.iter().map(|l| l.split("start=").nth(1).unwrap().trim().parse().unwrap()).collect();
    for t in &tasks {
        assert!(t.contains("gpu=true device=gpu 0: ") && t.contains("matmul=[7.0, 10.0, 15.0, 22.0]"), "{t}");
    }
    // Four 0.25-GPU tasks of 300 ms ran at once, not one after another.
    let spread = starts.iter().max().unwrap() - starts.iter().min().unwrap();
    assert!(spread < 250, "start times {starts:?}\n{text}");
    assert!(text.contains("cpu task: task 9: gpu=false device=cpu"), "{text}");
}

#[test]
fn more_gpus_than_exist_fail_clearly() {
    let job = guests().testjob.clone();
    let out = wray_with(&["run", "--gpus", "1", path(&job), "--", "gpu-infeasible"], &[], Duration::from_secs(60));
    // Submitting names the demand and what the node has; the job fails.
    assert_code(&out, 1);
    let err = stderr(&out);
    assert!(err.contains("demand {CPU: 1, GPU: 2} can never be met: the node has {CPU: "), "{err}");
    assert!(err.contains("GPU: 1}"), "{err}");
}

#[test]
fn the_split_is_scikit_learns() {
    let out = scenario(&[], &["perm"]);
    assert_code(&out, 0);
    // numpy.random.RandomState(0).permutation(10)
    assert!(stdout(&out).contains("perm10: [2, 8, 4, 9, 1, 6, 7, 3, 0, 5]"), "{}", stdout(&out));
}
