//! `wray::util::Pool` (Ray's multiprocessing Pool): every call form, the
//! bound on chunks at once, and a panicking function.

use std::time::{Duration, Instant};
use wray::Error;
use wray::util::Pool;

fn square(x: u64) -> u64 {
    x * x
}

fn add(a: i64, b: i64) -> i64 {
    a + b
}

/// Sleeps `ms` and says when it started and ended (ms since the Unix epoch).
fn nap(ms: u64) -> (u128, u128) {
    let now = || std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_millis();
    let start = now();
    std::thread::sleep(Duration::from_millis(ms));
    (start, now())
}

fn fragile(x: u32) -> u32 {
    if x == 13 {
        panic!("unlucky {x}");
    }
    x
}

pub fn run() -> Result<(), Error> {
    let pool = Pool::new(2);
    println!("map: {:?}", pool.map(square, 0..10u64)?);
    let ordered: Vec<u64> = pool.imap(square, 0..50u64, 4).collect::<Result<_, _>>()?;
    println!("imap in order: {}", ordered == (0..50u64).map(square).collect::<Vec<_>>());
    let mut unordered: Vec<u64> = pool.imap_unordered(square, 0..50u64, 3).collect::<Result<_, _>>()?;
    unordered.sort_unstable();
    println!("imap_unordered has all: {}", unordered == (0..50u64).map(square).collect::<Vec<_>>());
    println!("starmap: {:?}", pool.starmap(add, vec![(1, 2), (3, 4), (-5, 5)])?);
    let pending = pool.apply_async(square, 12)?;
    pending.wait(Duration::from_secs(30));
    println!("apply_async: ready {} value {}", pending.ready(), pending.get()?);
    println!("apply: {}", pool.apply(|(a, b): (i64, i64)| a + b, (40, 2))?);
    // Six naps of 300 ms, one per chunk, two at a time: never more than two
    // overlap, and the whole takes about three naps.
    let start = Instant::now();
    let spans: Vec<(u128, u128)> =
        Pool::new(2).num_cpus(0.5).imap(nap, vec![300u64; 6], 1).collect::<Result<_, _>>()?;
    let most = spans.iter().map(|(s, _)| spans.iter().filter(|(a, b)| a <= s && s < b).count()).max().unwrap_or(0);
    println!("naps: at most {most} at once, {:.1} s", start.elapsed().as_secs_f64());
    let results: Vec<Result<u32, Error>> = pool.imap(fragile, 0..20u32, 5).collect();
    let ok = results.iter().filter(|r| r.is_ok()).count();
    let err = results.iter().find_map(|r| r.as_ref().err()).map(|e| e.to_string()).unwrap_or_default();
    println!("panicking item: {ok} results before the error; {err}");
    Ok(())
}
