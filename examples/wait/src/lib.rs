//! Processing results as they finish with `wray::wait`, and nested tasks
//! (a task that submits tasks and waits for them) — which work even with a
//! single CPU, because a task blocked in `get` gives its CPU back.

use std::time::{Duration, Instant};

#[wray::remote]
fn work(ms: u64) -> u64 {
    std::thread::sleep(Duration::from_millis(ms));
    ms
}

#[wray::remote]
fn leaf(x: u64) -> u64 {
    x * x
}

/// Submits `n` leaves and sums them: a task waiting on its own children.
#[wray::remote]
fn sum_of_squares(n: u64) -> Result<u64, wray::Error> {
    let refs: Vec<_> = (1..=n).map(leaf::remote).collect();
    Ok(wray::get_all(&refs)?.into_iter().sum())
}

#[wray::main]
fn main() -> Result<(), wray::Error> {
    let start = Instant::now();
    let mut pending: Vec<_> =
        [400, 100, 300, 200].into_iter().map(|ms| work::options().num_cpus(0.25).remote(ms)).collect();
    let mut order = Vec::new();
    while !pending.is_empty() {
        let (ready, rest) = wray::wait(&pending, 1, None);
        for r in &ready {
            let ms = wray::get(r)?;
            println!("finished {ms} ms task after {:.1} s", start.elapsed().as_secs_f64());
            order.push(ms);
        }
        pending = rest;
    }
    println!("completion order: {order:?}");

    let (ready, pending) = wray::wait(&[work::remote(2000)], 1, Some(Duration::from_millis(100)));
    println!("after a 100 ms timeout: {} ready, {} pending", ready.len(), pending.len());

    let total = wray::get(&sum_of_squares::remote(10))?;
    println!("nested: sum of squares 1..=10 = {total}");
    Ok(())
}
