//! Retrieving items that take different times — Ray's "retrieve" tutorial.
//! Item i takes i/10 s: fetched one by one, 8 items take ~2.8 s; as tasks,
//! about as long as the slowest (~0.7 s).

use std::time::{Duration, Instant};

fn fetch(i: u32) -> (u32, String) {
    std::thread::sleep(Duration::from_millis(100 * u64::from(i)));
    (i, format!("item-{i}"))
}

#[wray::remote]
fn retrieve(i: u32) -> (u32, String) {
    fetch(i)
}

#[wray::main]
fn main() -> Result<(), wray::Error> {
    let start = Instant::now();
    let sequential: Vec<_> = (0..8).map(fetch).collect();
    println!("sequential: {:.2} s", start.elapsed().as_secs_f64());

    let start = Instant::now();
    // Sleeping tasks need little CPU: ask for an eighth so all 8 run at once.
    let refs: Vec<_> = (0..8).map(|i| retrieve::options().num_cpus(0.125).remote(i)).collect();
    let parallel = wray::get_all(&refs)?;
    println!("as tasks:   {:.2} s", start.elapsed().as_secs_f64());
    assert_eq!(sequential, parallel);
    println!("items: {:?}", parallel.iter().map(|(_, s)| s.as_str()).collect::<Vec<_>>());
    Ok(())
}
