//! `wray::tune`: the examples find their optima, bad experiments fail before
//! any trial, failing trials are marked ERROR while the rest go on, and a
//! killed experiment resumes without redoing finished trials.

use crate::util::*;
use std::process::{Command, Stdio};
use std::time::Duration;

#[test]
fn grid_search_finds_the_origin() {
    let out = wray(&["run", path(&guests().tune_grid)]);
    assert_code(&out, 0);
    let text = stdout(&out);
    assert!(text.contains("trials: 25"), "{text}");
    assert!(text.contains("best config: x=0 y=0") && text.contains("best score: 0"), "{text}");
    // The status table: a header and a row per trial.
    assert!(text.contains("== Status == FIFO | 25 TERMINATED"), "{text}");
    assert!(
        text.contains("| Trial name  | status     | x ") && text.contains("| trial_00024 | TERMINATED |"),
        "{text}"
    );
}

#[test]
fn hyperband_and_asha_stop_most_trials_early() {
    let out = wray(&["run", path(&guests().tune_hyperband)]);
    assert_code(&out, 0);
    let text = stdout(&out);
    for name in ["hyperband", "asha"] {
        let line = text.lines().find(|l| l.starts_with(&format!("{name}: "))).unwrap_or_else(|| panic!("{text}"));
        let number = |label: &str| -> f64 {
            line.split(label).nth(1).unwrap().split([' ', ',', '(']).next().unwrap().parse().unwrap()
        };
        assert!(line.contains(": 20 trials"), "{line}");
        let iterations = number("trials, ");
        assert!(iterations < 20.0 * 30.0 / 2.0, "most trials stop early: {line}");
        assert!(number("weight=") < 0.3 && number("bias=") < 0.3, "{line}");
    }
}

#[test]
fn bad_experiments_fail_before_any_trial_and_failing_trials_do_not_stop_the_rest() {
    let out = scenario(&[], &["tune-errors"]);
    assert_code(&out, 0);
    let text = stdout(&out);
    for want in [
        "empty choice: invalid argument: search space parameter \"x\": choice of nothing (an empty list)",
        "low >= high: invalid argument: search space parameter \"lr\": needs low < high, got low 1, high 0.5",
        "loguniform: invalid argument: search space parameter \"lr\": loguniform needs positive bounds, got low -1",
        "mode: invalid argument: tune: mode must be \"min\" or \"max\", got \"maximum\"",
        "no metric: invalid argument: tune: set the metric to optimise with .metric(name, mode)",
        "reported no metric \"accuracy\" (it reported [\"score\", \"time_total_s\", \"training_iteration\"])",
        "trial x=0: TERMINATED after 5 iterations, 0 failures, last iteration 5",
        "trial x=1: ERROR after 1 iterations, 2 failures, last iteration 1, error: task ProbeTrial.step failed: invalid argument: probe 1 gives up at step 2",
        "trial x=2: ERROR after 1 iterations, 2 failures, last iteration 1, error: task ProbeTrial.step failed: panicked at",
        // Failed once at step 3, retried from its step-2 checkpoint.
        "trial x=3: TERMINATED after 5 iterations, 1 failures, last iteration 5",
        "trial x=4: TERMINATED after 5 iterations, 0 failures, last iteration 5",
        "best x: 4",
        // Starts include the three retries; errors count every failure.
        "callbacks: {\"checkpoint\": 17, \"complete\": 3, \"end\": 1, \"error\": 5, \"result\": 17, \"start\": 8}",
        "csv header: trial_id,status,iterations,config/x,done,score,time_total_s,training_iteration",
    ] {
        assert!(text.contains(want), "missing {want:?} in:\n{text}");
    }
    // The ERROR rows show their message in the table.
    assert!(text.contains("| trial_00002 | ERROR      | 2 | 1    |"), "{text}");
}

#[test]
fn a_killed_experiment_resumes_without_redoing_finished_trials() {
    let store = tempfile::tempdir().unwrap();
    let grant = format!("{}::/store", store.path().display());
    let job = guests().testjob.clone();
    let state = store.path().join("resumable/experiment_state.bin");
    let starts = || std::fs::read_to_string(store.path().join("starts.log")).unwrap_or_default().lines().count();
    let mut first = Command::new(wray_bin())
        .args(["run", "--dir", &grant, path(&job), "--", "tune-resume", "/store"])
        .env("XDG_CACHE_HOME", target_dir().join("test-cache"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Each trial takes ~0.3 s, two at a time: kill once a few have finished.
    wait_until(Duration::from_secs(60), || starts() >= 6, || format!("only {} trials started", starts()));
    first.kill().unwrap();
    first.wait().unwrap();
    assert!(state.is_file(), "no experiment state was saved");
    let before = starts();
    assert!(before < 12, "the experiment finished before it was killed ({before} starts)");
    let out = wray(&["run", "--dir", &grant, path(&job), "--", "tune-resume", "/store", "resume"]);
    assert_code(&out, 0);
    let text = stdout(&out);
    let finished: usize = text
        .split("resuming resumable: ")
        .nth(1)
        .and_then(|r| r.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{text}"));
    assert!(finished >= 2, "{text}");
    assert!(text.contains("finished with 5 iterations: 12 of 12"), "{text}");
    // Finished trials were not started again: 12 trials, plus at most the
    // two that were running when the driver died.
    let total = starts();
    assert!(total <= 14, "{total} trial starts for 12 trials ({before} before the kill)\n{text}");
    // Ray's per-trial logs and the experiment's table.
    let trial = store.path().join("resumable/trial_00000");
    let json = std::fs::read_to_string(trial.join("result.json")).unwrap();
    assert!(json.lines().count() >= 1 && json.starts_with("{\"score\": 1, "), "{json}");
    assert!(json.contains("\"config\": {\"log\": \"/store\", \"slow_ms\": 60, \"x\": 0}"), "{json}");
    let csv = std::fs::read_to_string(trial.join("progress.csv")).unwrap();
    assert!(csv.starts_with("score,time_total_s,training_iteration\n1,"), "{csv}");
    let table = std::fs::read_to_string(store.path().join("resumable/results.csv")).unwrap();
    assert_eq!(table.lines().count(), 13, "{table}");
    // TensorBoard event files: TFRecords starting with the file version.
    let events = std::fs::read_dir(&trial)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.file_name().unwrap().to_str().unwrap().starts_with("events.out.tfevents."))
        .expect("an event file");
    let bytes = std::fs::read(events).unwrap();
    let first = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    assert!(bytes[12..12 + first].windows(13).any(|w| w == b"brain.Event:2"));
    assert!(bytes.windows(14).any(|w| w == b"ray/tune/score"));
}

#[test]
fn stoppers_end_trials_and_experiments() {
    let out = scenario(&[], &["tune-stoppers"]);
    assert_code(&out, 0);
    let text = stdout(&out);
    assert!(text.contains("criteria iterations: [2, 2, 2]"), "{text}");
    assert!(text.contains("stop fn iterations: [5, 3, 1]"), "{text}");
    let secs: f64 = text.split("stopped after ").nth(1).unwrap().split(' ').next().unwrap().parse().unwrap();
    assert!(secs < 1.5, "the 250 ms budget stopped six 0.5 s trials: {text}");
}

/// `tune::function!` used twice in one module: two trial classes, no clash.
#[test]
fn two_function_trainables_live_in_one_module() {
    let out = scenario(&[], &["tune-two-functions"]);
    assert_code(&out, 0);
    assert!(stdout(&out).contains("two functions: rising best 6, falling best -3"), "{}", stdout(&out));
}

/// `name: ... weight=W bias=B score=S` from an example's line.
fn best_of(text: &str, name: &str) -> (f64, f64, f64) {
    let line = text.lines().find(|l| l.starts_with(&format!("{name}: "))).unwrap_or_else(|| panic!("{text}"));
    let get = |label: &str| -> f64 { line.split(label).nth(1).unwrap().split(' ').next().unwrap().parse().unwrap() };
    (get("weight="), get("bias="), get("score="))
}

#[test]
fn model_based_searchers_beat_random_search() {
    let out = wray(&["run", path(&guests().tune_bayesopt)]);
    assert_code(&out, 0);
    let text = stdout(&out);
    let random = best_of(&text, "random").2;
    for name in ["bayesopt", "tpe"] {
        let (w, b, score) = best_of(&text, name);
        assert!(text.contains(&format!("{name}: 20 trials")), "{text}");
        assert!(w < 0.1 && b < 0.1 && score <= random, "{name}: {w} {b} {score} vs random {random}\n{text}");
    }
}

#[test]
fn asha_tunes_the_wine_mlp() {
    let data = workspace().join("examples/data");
    let grant = format!("{}::/data", data.display());
    let out = wray_with(&["run", "--dir", &grant, path(&guests().tune_wine_mlp)], &[], Duration::from_secs(300));
    assert_code(&out, 0);
    let text = stdout(&out);
    let stopped: usize = text
        .split("stopped after the first rung: ")
        .nth(1)
        .and_then(|r| r.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{text}"));
    assert!(stopped > 50 && text.contains(&format!("{stopped} of 100")), "most trials stop at the first rung:\n{text}");
    let accuracy: f64 = text.split("best accuracy: ").nth(1).unwrap().split(' ').next().unwrap().parse().unwrap();
    assert!(accuracy >= 0.74, "{text}");
}

#[test]
fn population_based_training_spreads_the_best_config() {
    let out = scenario(&[], &["tune-pbt"]);
    assert_code(&out, 0);
    let text = stdout(&out);
    let mean_lr: f64 = text.split("mean final lr ").nth(1).unwrap().split(' ').next().unwrap().parse().unwrap();
    let min_score: f64 =
        text.split("min final score ").nth(1).unwrap().split_whitespace().next().unwrap().parse().unwrap();
    assert!(mean_lr > 0.5, "PBT moves the population towards a high lr: {text}");
    // Exploiting trials continue from their donor's score, so even the
    // slowest ends far above what lr 0.1 alone reaches in 20 steps (2.0).
    assert!(min_score > 3.0, "{text}");
    assert!(text.contains("pbt: iterations [20, 20, 20, 20, 20, 20, 20, 20]"), "{text}");
}

#[test]
fn loop_trials_report_inside_their_loop_and_stop_where_the_scheduler_says() {
    let out = scenario(&[], &["tune-loop"]);
    assert_code(&out, 0);
    let text = stdout(&out);
    // The best trial ran to the end, through a failure at step 5: it
    // restarted from the step-4 checkpoint it reported (12 iterations in
    // all, not 4 + 12).
    assert!(text.contains("trial rate=3.2: TERMINATED after 12 iterations, 1 failures, checkpoint Some(12)"), "{text}");
    assert!(text.contains("best rate: 3.2 score 38.4"), "{text}");
    // ASHA stopped the others early, and every loop stopped in the very
    // `report` whose result the scheduler judged: none ran ahead.
    let mut stopped_early = 0;
    for rate in ["1.6", "0.8", "0.4", "0.2", "0.1"] {
        let line =
            text.lines().find(|l| l.starts_with(&format!("trial rate={rate}:"))).unwrap_or_else(|| panic!("{text}"));
        let iterations: usize = line.split("after ").nth(1).unwrap().split(' ').next().unwrap().parse().unwrap();
        assert!(line.contains("TERMINATED") && line.contains(&format!("checkpoint Some({iterations})")), "{line}");
        if iterations < 12 {
            stopped_early += 1;
            assert!(text.contains(&format!("loop rate={rate}: stopped after report {iterations}\n")), "{text}");
        }
    }
    assert!(stopped_early >= 3, "{text}");
    assert!(
        text.contains("silent: Err(\"invalid argument: tune: trial_00000's loop returned without calling tune::report"),
        "{text}"
    );
    assert!(
        text.contains(
            "report outside a trial: Err(\"invalid argument: wray::tune::report is only available inside a trial's loop"
        ),
        "{text}"
    );
}
