//! The examples run and print what their READMEs promise.

use crate::util::*;

fn run_example(job: &std::path::Path, extra: &[&str]) -> String {
    let mut args = vec!["run", path(job)];
    if !extra.is_empty() {
        args.push("--");
        args.extend_from_slice(extra);
    }
    let out = wray(&args);
    assert_code(&out, 0);
    stdout(&out)
}

/// The number after `label` on the line that starts with it.
fn seconds(out: &str, label: &str) -> f64 {
    let line = out.lines().find(|l| l.starts_with(label)).unwrap_or_else(|| panic!("no {label:?} line in:\n{out}"));
    line[label.len()..].trim().trim_end_matches('s').trim().parse().unwrap_or_else(|_| panic!("bad line {line:?}"))
}

#[test]
fn dns_tasks_beat_sequential_lookups() {
    let out = run_example(&guests().dns, &[]);
    let seq = seconds(&out, "sequential lookups:");
    let par = seconds(&out, "lookups as tasks:");
    assert!((1.45..3.0).contains(&seq), "sequential took {seq} s\n{out}");
    assert!(par < 0.95, "tasks took {par} s\n{out}");
    assert!(out.contains("server knows 4 names"), "{out}");
    assert!(out.contains("lookup ray.io -> Some(\"10.0."), "{out}");
    assert!(out.contains("lookup nowhere.invalid -> None"), "{out}");
}

#[test]
fn retrieve_in_parallel() {
    let out = run_example(&guests().retrieve, &[]);
    let seq = seconds(&out, "sequential:");
    let par = seconds(&out, "as tasks:");
    assert!((2.75..5.0).contains(&seq), "sequential took {seq} s\n{out}");
    assert!(par < 1.3, "tasks took {par} s\n{out}");
    assert!(
        out.contains(r#"items: ["item-0", "item-1", "item-2", "item-3", "item-4", "item-5", "item-6", "item-7"]"#),
        "{out}"
    );
}

#[test]
fn pi_estimate_is_close() {
    let out = run_example(&guests().pi, &[]);
    let line = out.lines().find(|l| l.starts_with("100 tasks x 1000000 samples: pi ~ ")).expect(&out);
    let pi: f64 = line.split("pi ~ ").nth(1).unwrap().split_whitespace().next().unwrap().parse().unwrap();
    assert!((pi - std::f64::consts::PI).abs() < 0.005, "{line}");
}

#[test]
fn wait_processes_results_as_they_finish() {
    let out = run_example(&guests().wait, &[]);
    assert!(out.contains("completion order: [100, 200, 300, 400]"), "{out}");
    assert!(out.contains("after a 100 ms timeout: 0 ready, 1 pending"), "{out}");
    assert!(out.contains("nested: sum of squares 1..=10 = 385"), "{out}");
}

#[test]
fn wait_nested_tasks_with_one_cpu() {
    let job = &guests().wait;
    let out = wray(&["run", "--cpus", "1", path(job)]);
    assert_code(&out, 0);
    assert!(stdout(&out).contains("nested: sum of squares 1..=10 = 385"), "{}", stdout(&out));
}
