//! `wray::train`: collectives between tasks, the trainer's loop with
//! reports, shards and checkpoints, restarts after a failing worker,
//! data-parallel `wray::nn`, bad input, and the wine example — through real
//! jobs.

use crate::util::*;

fn line_after<'a>(out: &'a str, prefix: &str) -> &'a str {
    out.lines().find_map(|l| l.strip_prefix(prefix)).unwrap_or_else(|| panic!("no line {prefix:?} in:\n{out}")).trim()
}

fn scenario(name: &str) -> (String, String) {
    let dir = tempfile::tempdir().unwrap();
    let grant = format!("{}::/work", dir.path().display());
    run_ok(&guests().testjob, &["--dir", &grant], &[name, "/work"], &[])
}

/// Three member tasks run every collective; every rank sees the same
/// result; sizes that disagree, a rank that never comes and an abort are
/// errors naming the group, operation and ranks.
#[test]
fn collectives_between_tasks_agree_and_fail_clearly() {
    let (out, _) = scenario("train-collective");
    for rank in 0..3 {
        let r = |what: &str| line_after(&out, &format!("rank {rank}: {what}")).to_string();
        assert_eq!(r("Sum"), "[6.0, -3.0, 30.0]", "{out}");
        assert_eq!(r("Mean"), "[2.0, -1.0, 10.0]", "{out}");
        assert_eq!(r("Max"), "[3.0, -0.0, 20.0]", "{out}");
        assert_eq!(r("Min"), "[1.0, -2.0, 0.0]", "{out}");
        // 300,000 elements: past ONE_ROUND_BYTES, reduced in chunks.
        assert_eq!(r("large allreduce of 300000:"), "0 wrong", "{out}");
        assert_eq!(r("broadcast"), "[7.0, 8.0, 9.0]", "{out}");
        assert_eq!(r("allgather"), "[[0.0], [1.0, 1.0], [2.0, 2.0, 2.0]]", "{out}");
        assert_eq!(r("tensor"), "[3.0, 3.0, 3.0, 6.0]", "{out}");
        // Each rank's third of [3, 6, 9, 12, 15, 18].
        let want = ["[3.0, 6.0]", "[9.0, 12.0]", "[15.0, 18.0]"][rank];
        assert_eq!(r("reduce_scatter"), want, "{out}");
    }
    // The first operation meets through the group's actor.
    let mismatch = "collective group 'mismatch', operation #1: rank 0 called allreduce of 4 elements but rank 1 \
                    called allreduce of 5 elements";
    assert!(line_after(&out, "mismatch rank 0:").contains(mismatch), "{out}");
    assert!(line_after(&out, "mismatch rank 1:").contains(mismatch), "{out}");
    assert!(
        line_after(&out, "timeout:").contains("collective group 'lonely'")
            && line_after(&out, "timeout:").contains("waited 300ms for ranks [1], which never joined"),
        "{out}"
    );
    // Later ones meet in the host (every member runs on this node): the
    // same errors, as clear.
    for rank in 0..2 {
        let line = line_after(&out, &format!("mismatch (host) rank {rank}:"));
        assert!(line.contains("collective group 'mismatch'") && line.contains("operation #2"), "{out}");
        assert!(
            line.contains("rank 0 called allreduce of 4 elements but rank 1 called allreduce of 5 elements"),
            "{out}"
        );
    }
    let timeout = line_after(&out, "timeout (host):");
    assert!(
        timeout.contains("collective group 'lonely'")
            && timeout.contains("barrier (operation #2) on rank 0 waited 300ms")
            && timeout.contains("never joined"),
        "{out}"
    );
    for path in ["", " (host)"] {
        let abort = line_after(&out, &format!("abort{path}:"));
        assert!(abort.contains("collective group 'aborted'"), "{out}");
        assert!(abort.contains("rank 1 died: killed by the test"), "{out}");
    }
    assert_eq!(line_after(&out, "long name:"), r#"Ok("three barriers")"#, "{out}");
    assert!(line_after(&out, "bad size:").contains("0 members (1 to 1024)"), "{out}");
}

/// Two workers read their shards, allreduce, report from inside the loop;
/// the driver keeps the two best checkpoints by score and lays the run out
/// as Ray does.
#[test]
fn a_trainer_runs_the_loop_on_its_workers_and_keeps_checkpoints() {
    let (out, err) = scenario("train-loop");
    assert_eq!(line_after(&out, "error:"), "None", "{out}");
    assert_eq!(line_after(&out, "iterations:"), "5", "{out}");
    // Shards of range(1000): their rows add up to 1000 and the sums to
    // 499500 per epoch, weighted by the epoch: 499500 * (1+2+3+4+5).
    assert_eq!(line_after(&out, "final:"), "epoch 5 rows 1000 total 7492500", "{out}");
    assert_eq!(line_after(&out, "world size"), "2, local ranks 0", "{out}");
    // score = epoch % 3: epochs 2 and 5 score 2 (the later first).
    assert_eq!(line_after(&out, "kept:"), r#"["5@2", "2@2"]"#, "{out}");
    assert_eq!(line_after(&out, "latest:"), "epoch 5", "{out}");
    assert_eq!(
        line_after(&out, "run dir:"),
        r#"["checkpoint_000002", "checkpoint_000005", "events.out.tfevents.*", "progress.csv", "result.json"]"#,
        "{out}"
    );
    assert_eq!(line_after(&out, "result.json lines:"), "5", "{out}");
    // A header and a row per iteration.
    assert_eq!(line_after(&out, "progress.csv lines:"), "6", "{out}");
    // MLflow's file store: the experiment's meta.yaml beside one run whose
    // `total` metric has a line per iteration ("<ms> <value> <step>"),
    // finished (status 3).
    assert_eq!(line_after(&out, "mlflow experiment:"), r#"["meta.yaml"]"#, "{out}");
    assert_eq!(line_after(&out, "mlflow total:"), r#"5 lines, last Some(["7492500", "5"])"#, "{out}");
    assert_eq!(line_after(&out, "mlflow status:"), r#"Some("status: 3")"#, "{out}");
    assert_eq!(line_after(&out, "from_directory:"), "epoch 5 rank 0", "{out}");
    // A status line per iteration on standard error.
    assert_eq!(err.lines().filter(|l| l.starts_with("[train] loop iteration")).count(), 5, "{err}");
}

/// Rank 1 panics at epoch 3; the group restarts from the epoch-2 checkpoint
/// and ends with the clean run's metrics. Without restarts the run fails,
/// naming the rank and the cause.
#[test]
fn a_failed_worker_restarts_the_group_from_the_latest_checkpoint() {
    let (out, err) = scenario("train-fail");
    assert_eq!(line_after(&out, "clean:"), "total 7492500 after 5 iterations", "{out}");
    assert_eq!(line_after(&out, "restarted:"), "total 7492500 after 5 iterations, 1 failures, error None", "{out}");
    assert!(err.contains("restarting the worker group from the latest checkpoint (restart 1 of 1)"), "{err}");
    let failed = line_after(&out, "no restarts:");
    assert!(failed.contains("worker rank 1") && failed.contains("rank 1 fails at epoch 3 as the test asked"), "{out}");
}

#[test]
fn bad_trainer_input_fails_with_errors_naming_the_rank_metric_or_path() {
    let (out, _) = scenario("train-bad");
    let expect = [
        ("too many workers:", "Err invalid argument: ScalingConfig: 64 workers × 1 CPU need 64 CPU; the cluster has 2"),
        ("gpu:", "Err invalid argument: ScalingConfig: 1 worker × 1 GPU need 1 GPU; the cluster has 0"),
        ("never reports:", "without calling wray::train::report"),
        ("one rank silent:", "worker rank 1 called train::report 0 times, others 2 times"),
        ("nan score:", "iteration 1 reported score = NaN with a checkpoint"),
        ("unknown shard:", "the trainer has no dataset named 'test'"),
        ("own error:", "worker rank 0 (node "),
        ("own error:", "failed: loss diverged at epoch 7"),
        ("io error:", "No such file or directory"),
        (
            "no config:",
            "Err invalid argument: the training loop takes a testjob::train::LoopConfig: give it one with `.train_loop_config(..)`",
        ),
        ("outside a trainer:", "only available inside a training loop"),
        ("not a directory:", "/work/no-such-checkpoint is not a directory"),
        ("not a checkpoint:", "not a wray checkpoint"),
    ];
    for (what, words) in expect {
        assert!(line_after(&out, what).contains(words), "{what} {words}\n{out}");
    }
}

/// Gradients averaged in rank order keep the replicas bit-identical after
/// every step; `prepare_model` copies rank 0's weights into replicas built
/// from other seeds, and refuses a replica of another size.
#[test]
fn data_parallel_replicas_stay_bit_identical() {
    let (out, _) = scenario("train-ddp");
    assert_eq!(line_after(&out, "ddp:"), "identical 1 error None", "{out}");
    assert_eq!(line_after(&out, "different seeds:"), "identical 1 error None", "{out}");
    let sizes = line_after(&out, "different sizes:");
    assert!(sizes.contains("prepare_model: rank 0's model has 49 parameters, rank 1's 55"), "{out}");
}

/// The same on the GPU path (lavapipe): the replicas' tensors live in GPU
/// memory, `prepare_model` writes rank 0's weights there, and the replicas
/// stay bit-identical.
#[test]
fn data_parallel_replicas_stay_bit_identical_on_a_gpu() {
    let (out, _) = run_ok(&guests().testjob, &["--gpus", "1"], &["train-ddp-gpu"], &[SOFTWARE_GPU]);
    assert_eq!(line_after(&out, "ddp on gpu:"), "identical 1 on_gpu 1 error None", "{out}");
    // `get_gpu_ids`: the driver and a task without GPU have none.
    assert_eq!(line_after(&out, "gpu ids:"), "[] [] [0]", "{out}");
}

/// The seeds' wine classifier trained by two workers from `read_csv`,
/// checkpointed, reloaded and used for batch prediction on an actor pool:
/// the single-process `wine_mlp`'s accuracy (0.75) or better.
#[test]
fn the_wine_classifier_trained_by_two_workers_reaches_the_reference_accuracy() {
    let data = workspace().join("examples/data");
    let results = tempfile::tempdir().unwrap();
    let grants = [format!("{}::/data", data.display()), format!("{}::/results", results.path().display())];
    let (out, err) =
        run_ok(&guests().train_wine, &["--dir", &grants[0], "--dir", &grants[1]], &["--storage", "/results"], &[]);
    assert!(out.contains("trained by 2 workers: 15 reports"), "{out}");
    assert!(out.contains("checkpoint of epoch 150"), "{out}");
    let accuracy = number_after(&out, "test accuracy:");
    assert!(accuracy >= 0.75, "accuracy {accuracy}\n{out}\n{err}");
    let run = results.path().join("train_wine");
    let mut entries: Vec<String> =
        std::fs::read_dir(&run).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    entries.sort();
    // Two checkpoints kept by loss (the latest among them), and Ray's
    // result.json and progress.csv.
    assert_eq!(entries.len(), 4, "{entries:?}");
    for name in ["checkpoint_000015", "result.json", "progress.csv"] {
        assert!(entries.contains(&name.to_string()), "{entries:?}");
    }
}

/// Every preprocessor on tests/data/preprocess.csv (in 3 blocks, so fitting
/// merges per-block summaries) prints what scikit-learn computed on the
/// same file (tests/reference/preprocess.py wrote
/// tests/data/preprocess_sklearn.txt); a fitted chain survives a
/// checkpoint; bad input is named.
#[test]
fn preprocessors_match_scikit_learn() {
    let data = workspace().join("tests/data");
    let grant = format!("{}::/work", data.display());
    let (out, _) = run_ok(&guests().testjob, &["--dir", &grant], &["train-preprocess", "/work"], &[]);
    let reference = std::fs::read_to_string(data.join("preprocess_sklearn.txt")).unwrap();
    for line in reference.lines() {
        assert!(out.lines().any(|l| l == line), "scikit-learn printed\n{line}\nwray printed\n{out}");
    }
    assert!(
        line_after(&out, "unseen category:")
            .contains("OrdinalEncoder: column 'color' has the value purple, not seen when fitting"),
        "{out}"
    );
    assert!(line_after(&out, "unfitted:").contains("StandardScaler: transform before fit"), "{out}");
    assert!(line_after(&out, "no such column:").contains("no column 'w'"), "{out}");
    assert!(line_after(&out, "text scaled:").contains("column 'color' is text"), "{out}");
    assert!(line_after(&out, "bad quantile range:").contains("RobustScaler: the quantile range must be"), "{out}");
}

/// A trainer handed to Tune: every trial runs a 2-worker group with the
/// trial's parameters laid over the trainer's config, ASHA ends the poor
/// trials early, each keeps its latest checkpoint, and workers no node can
/// hold fail the trial naming the resource.
#[test]
fn a_trainer_is_a_tune_trainable() {
    let (out, _) = scenario("train-tune");
    let trials: Vec<&str> = out.lines().filter(|l| l.starts_with("trial lr=")).collect();
    assert_eq!(trials.len(), 8, "{out}");
    let mut early = 0;
    for line in &trials {
        let iterations: u32 = line.split("after ").nth(1).unwrap().split(' ').next().unwrap().parse().unwrap();
        assert!(line.contains("TERMINATED") && line.contains("world size 2"), "{line}");
        // The sampled `hidden` reached the loop; the base `epochs` (8) too.
        let hidden = line.split("hidden=").nth(1).unwrap().split(':').next().unwrap();
        assert!(line.contains(&format!("hidden seen {hidden},")), "{line}");
        assert!(line.ends_with(&format!("checkpoint epoch Some({iterations})")), "{line}");
        assert!(iterations <= 8, "{line}");
        early += (iterations < 8) as u32;
    }
    assert!(early >= 2, "ASHA stops some trials early:\n{out}");
    assert!(out.contains("best: hidden=") && out.contains("train_loop_config/lr=4.000000 score 32.5"), "{out}");
    assert!(
        out.contains(
            "too big: task TrialRunner.run failed: invalid argument: ScalingConfig: 64 workers × 1 CPU need 64 CPU"
        ),
        "{out}"
    );
}

/// The same example under Tune: six samples of the learning rate and hidden
/// sizes, each trial a 2-worker group judged on held-out rows, ASHA ending
/// the poor ones; the best parameters refitted on all training rows reach
/// the reference accuracy too.
#[test]
fn the_wine_classifier_tuned_by_asha_reaches_the_reference_accuracy() {
    let data = workspace().join("examples/data");
    let grant = format!("{}::/data", data.display());
    let (out, err) = run_ok(&guests().train_wine, &["--dir", &grant], &["--tune", "6"], &[]);
    let tuned = line_after(&out, "tuned 6 trials (");
    let stopped: usize = tuned.split(' ').next().unwrap().parse().unwrap();
    assert!(stopped >= 1, "ASHA stops trials early: {tuned}");
    assert!(tuned.contains("best hidden1=") && tuned.contains("lr="), "{tuned}");
    assert!(out.contains("trained by 2 workers: 15 reports"), "{out}");
    let accuracy = number_after(&out, "test accuracy:");
    assert!(accuracy >= 0.75, "accuracy {accuracy}\n{out}\n{err}");
}

/// The example's breast-cancer variant: 30 features, the same pipeline.
#[test]
fn the_breast_cancer_classifier_trained_by_two_workers_beats_ninety_percent() {
    let data = workspace().join("examples/data");
    let grant = format!("{}::/data", data.display());
    let (out, err) = run_ok(&guests().train_wine, &["--dir", &grant], &["--dataset", "breast-cancer"], &[]);
    assert!(out.contains("trained by 2 workers: 15 reports"), "{out}");
    let accuracy = number_after(&out, "test accuracy:");
    assert!(accuracy >= 0.93, "accuracy {accuracy}\n{out}\n{err}");
}
