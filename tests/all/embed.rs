//! The embedding API (`wray-runtime`), as a host service uses it.

use crate::util::*;
use std::time::Duration;
use wray_runtime::{Grants, JobConfig, Output, OutputPipe, Runtime};

fn runtime(memory: usize, cache: Option<std::path::PathBuf>) -> Runtime {
    Runtime::builder().cpus(2.0).object_store_memory(memory).cache_dir(cache).build().unwrap()
}

/// A job config whose output goes to a buffer the test can read.
fn captured() -> (JobConfig, Pipe) {
    let pipe = Pipe(OutputPipe::new(1 << 20));
    let config = JobConfig {
        grants: Grants { output: Output::Capture(pipe.0.clone()), ..Grants::default() },
        ..JobConfig::default()
    };
    (config, pipe)
}

struct Pipe(OutputPipe);

impl Pipe {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.contents()).into_owned()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn call_a_function_directly_and_run_the_driver() {
    let rt = runtime(64 << 20, None);
    let job = rt.load_file(&guests().pi).unwrap();
    let a: u64 = rt.call(&job, "sample", (10_000u64, 3u64), JobConfig::default()).await.unwrap();
    let b: u64 = rt.call(&job, "pi::sample", (10_000u64, 3u64), JobConfig::default()).await.unwrap();
    assert_eq!(a, b, "same seed, same sample");
    assert!((7_000..8_700).contains(&a), "{a} of 10000 inside");
    let (config, pipe) = captured();
    rt.run_job(&job, vec!["4".into()], config).await.unwrap();
    assert!(pipe.text().contains("4 tasks x 1000000 samples: pi ~ 3.1"), "{}", pipe.text());
    assert_eq!(rt.store_stats().objects, 0, "a finished job leaves no objects behind");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calling_an_unknown_function_is_an_error() {
    let rt = runtime(64 << 20, None);
    let job = rt.load_file(&guests().pi).unwrap();
    let err = rt.call::<u64>(&job, "nope", (), JobConfig::default()).await.unwrap_err();
    assert!(err.to_string().contains("no \"nope\" is registered"), "{err}");
    let err = rt.call::<u64>(&job, "sample", (1u64,), JobConfig::default()).await.unwrap_err();
    assert!(err.to_string().contains("takes 2 arguments, got 1"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spilled_objects_are_counted() {
    let rt = runtime(8 << 20, None);
    let job = rt.load_file(&guests().testjob).unwrap();
    let (config, pipe) = captured();
    rt.run_job(&job, vec!["spill".into()], config).await.unwrap();
    assert!(pipe.text().contains("spill: 32 of 32 objects intact"), "{}", pipe.text());
    let stats = rt.store_stats();
    assert!(stats.spills >= 24, "{stats:?}");
    assert!(stats.restores > 0, "{stats:?}");
    assert_eq!(stats.objects, 0, "{stats:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn objects_are_freed_when_their_last_ref_drops() {
    // 256 MiB put one MiB at a time through an 8 MiB budget: if dropped refs
    // did not free their objects, the store would have to spill.
    let rt = runtime(8 << 20, None);
    let job = rt.load_file(&guests().testjob).unwrap();
    let (config, pipe) = captured();
    rt.run_job(&job, vec!["churn".into()], config).await.unwrap();
    assert!(pipe.text().contains("churn: done"), "{}", pipe.text());
    let stats = rt.store_stats();
    assert_eq!(stats.spills, 0, "{stats:?}");
    assert_eq!(stats.objects, 0, "{stats:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_jobs_side_by_side() {
    let rt = runtime(64 << 20, None);
    let job = rt.load_file(&guests().testjob).unwrap();
    let (c1, p1) = captured();
    let (c2, p2) = captured();
    let (a, b) = tokio::join!(rt.run_job(&job, vec!["limits".into()], c1), rt.run_job(&job, vec!["basics".into()], c2));
    a.unwrap();
    b.unwrap();
    assert!(p1.text().contains("after limits: 4"), "{}", p1.text());
    assert!(p2.text().contains("many: 2001000"), "{}", p2.text());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compiled_components_are_cached_on_disk() {
    let cache = tempfile::tempdir().unwrap();
    let rt = runtime(64 << 20, Some(cache.path().to_path_buf()));
    rt.load_file(&guests().pi).unwrap();
    let artifacts: Vec<_> = std::fs::read_dir(cache.path()).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(artifacts.len(), 1, "{artifacts:?}");
    // Dated in the past, so that the use a load records shows whatever the
    // clock's resolution.
    use std::os::unix::fs::MetadataExt;
    let written = std::time::UNIX_EPOCH + Duration::from_secs(1_000_000);
    std::fs::File::options().write(true).open(&artifacts[0]).unwrap().set_modified(written).unwrap();
    let inode = std::fs::metadata(&artifacts[0]).unwrap().ino();
    // A new runtime (a second `wray run`) loads the artifact instead of
    // compiling: the same file (a rewrite is a new file renamed into place),
    // its modification time moved to now (the cache evicts by last use).
    let rt2 = runtime(64 << 20, Some(cache.path().to_path_buf()));
    let job = rt2.load_file(&guests().pi).unwrap();
    let after = std::fs::metadata(&artifacts[0]).unwrap();
    assert_eq!(after.ino(), inode, "the artifact was rewritten");
    assert!(after.modified().unwrap() > written, "the load did not count as a use");
    let v: u64 = rt2.call(&job, "sample", (100u64, 1u64), JobConfig::default()).await.unwrap();
    assert!(v <= 100);
}
