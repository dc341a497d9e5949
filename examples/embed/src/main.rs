//! Embedding wray in a host program: load a job component, call one of its
//! remote functions directly with typed arguments, then run its driver.
//!
//! ```text
//! cargo run -p embed -- path/to/pi.wasm
//! ```

use anyhow::Context;
use wray_runtime::{JobConfig, Runtime};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let path = std::env::args().nth(1).context("usage: embed PATH/TO/pi.wasm")?;
    let runtime = Runtime::builder().cpus(2.0).object_store_memory(64 << 20).build()?;
    let job = runtime.load_file(path.as_ref())?;

    // `pi::sample(samples, seed) -> u64`, called as a task from the host.
    let inside: u64 = runtime.call(&job, "sample", (100_000u64, 7u64), JobConfig::default()).await?;
    println!("sample(100000, 7) = {inside} points inside the quarter circle");
    println!("pi ~ {:.3}", 4.0 * inside as f64 / 100_000.0);

    // The same component's #[wray::main], with arguments.
    runtime.run_job(&job, vec!["8".into()], JobConfig::default()).await?;
    Ok(())
}
