//! Monte Carlo π: 100 tasks of 1 M samples each, reduced in the driver.

use std::time::Instant;

/// xorshift64*: small, fast, good enough for sampling.
struct Rng(u64);

impl Rng {
    fn next_f64(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Counts how many of `samples` random points in the unit square fall inside
/// the quarter circle.
#[wray::remote]
pub fn sample(samples: u64, seed: u64) -> u64 {
    let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
    let mut inside = 0;
    for _ in 0..samples {
        let (x, y) = (rng.next_f64(), rng.next_f64());
        if x * x + y * y <= 1.0 {
            inside += 1;
        }
    }
    inside
}

#[wray::main]
fn main(args: Vec<String>) -> Result<(), wray::Error> {
    let tasks: u64 = args.first().and_then(|a| a.parse().ok()).unwrap_or(100);
    let samples = 1_000_000;
    let start = Instant::now();
    let refs: Vec<_> = (0..tasks).map(|seed| sample::remote(samples, seed)).collect();
    let inside: u64 = wray::get_all(&refs)?.into_iter().sum();
    let pi = 4.0 * inside as f64 / (tasks * samples) as f64;
    println!(
        "{tasks} tasks x {samples} samples: pi ~ {pi:.5} (error {:.5}) in {:.2} s",
        (pi - std::f64::consts::PI).abs(),
        start.elapsed().as_secs_f64()
    );
    Ok(())
}
