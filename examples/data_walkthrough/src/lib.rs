//! The seeds' Ray Data walkthrough, on wray: `range`, `map`, `filter`,
//! `flat_map` and `take` (article 002), then `show`, `count`,
//! `random_shuffle`, `split`, the linear-regression data of article 001
//! (`from_items`, `split_at_indices`) and epochs with `repeat` and
//! `iter_batches`.
//!
//! ```text
//! wray run data_walkthrough.wasm
//! ```
//!
//! Rust integers are fixed-width: `x³` saturates at `u64::MAX` for the
//! largest rows (Python's integers grow); the ten rows `take` prints are
//! exact.

use serde::{Deserialize, Serialize};
use wray::data::{self, IterBatches};

#[derive(Serialize, Deserialize)]
struct Data {
    data: u64,
}

#[derive(Serialize, Deserialize)]
struct Point {
    x: f64,
    y: f64,
}

/// `--bench`: the pipelines `benches/data.sh` times against Ray Data.
fn bench() -> Result<(), wray::Error> {
    use std::time::Instant;
    #[derive(Serialize, Deserialize)]
    struct Row {
        id: i64,
        value: f64,
    }
    for run in 1..=3 {
        // 1,000,000 rows through map + filter with row functions, then
        // count and take_all.
        let start = Instant::now();
        let ds = data::range(1_000_000)
            .map(|id: i64| Row { id, value: id as f64 * 2.0 })
            .filter(|r: &Row| r.id % 2 == 0)
            .materialize()?;
        let n = ds.count()?;
        let rows: Vec<Row> = ds.take_all()?;
        let rows_s = start.elapsed().as_secs_f64();
        assert_eq!((n, rows.len()), (500_000, 500_000));
        // Two map_batches over columnar batches.
        let start = Instant::now();
        let ds = data::range(1_000_000)
            .map_batches(
                |b: data::Batch| {
                    let v: Vec<i64> = b.column::<i64>("id")?.iter().map(|x| x * 2).collect();
                    b.with_column("id", v)
                },
                4096,
            )
            .map_batches(
                |b: data::Batch| {
                    let v: Vec<i64> = b.column::<i64>("id")?.iter().map(|x| x + 1).collect();
                    b.with_column("id", v)
                },
                4096,
            )
            .materialize()?;
        let sum = ds.sum("id")?;
        let batches_s = start.elapsed().as_secs_f64();
        assert_eq!(sum, 1_000_000.0 * 999_999.0 + 1_000_000.0);
        println!("run {run}: row pipeline {rows_s:.4} s, map_batches {batches_s:.4} s");
    }
    Ok(())
}

/// `--bench-csv DIR`: every CSV file under DIR/csv converted to Parquet
/// files in DIR/parquet-wray (`benches/data.sh`, beside pyarrow).
fn bench_csv(dir: &str) -> Result<(), wray::Error> {
    use std::time::Instant;
    let out = format!("{dir}/parquet-wray");
    std::fs::create_dir_all(&out).map_err(|e| wray::Error::InvalidArgument(format!("{out}: {e}")))?;
    let start = Instant::now();
    let written = data::read_csv(format!("{dir}/csv"))?.write_parquet(&out)?;
    println!("csv to parquet: {} rows in {:.2} s", written.rows, start.elapsed().as_secs_f64());
    Ok(())
}

#[wray::main]
fn main(args: Vec<String>) -> Result<(), wray::Error> {
    if let Some(i) = args.iter().position(|a| a == "--bench-csv") {
        let dir = args.get(i + 1).map_or("/bench", String::as_str);
        return bench_csv(dir);
    }
    wray::data::DataContext::set(data::DataContext { progress: false, ..data::DataContext::current() });
    if args.iter().any(|a| a == "--bench") {
        return bench();
    }

    // ds = ray.data.range(10000)
    let ds = data::range(10_000);
    // ds = ds.map(lambda x: {"data": x ** 2})
    let ds = ds.map(|x: u64| Data { data: x * x });
    // ds = ds.filter(lambda x: x["data"] % 2 == 0)
    let ds = ds.filter(|x: &Data| x.data.is_multiple_of(2));
    // pipe = ds.window().map(lambda x: x["data"]).filter(...).flat_map(lambda x: [x, x ** 3])
    let pipe =
        ds.map(|x: Data| x.data).filter(|x: &u64| x.is_multiple_of(2)).flat_map(|x: u64| [x, x.saturating_pow(3)]);
    println!("# range(10000) -> map -> filter -> flat_map, take(10)");
    println!("{:?}", pipe.take::<u64>(10)?);

    println!("# show(5)");
    pipe.show(5)?;

    println!("# count");
    println!(
        "range: {} rows, after the filter: {} rows, after flat_map: {} rows",
        data::range(10_000).count()?,
        ds.count()?,
        pipe.count()?
    );

    println!("# random_shuffle(seed 42), split(2)");
    let shuffled = data::range(10_000).random_shuffle(Some(42)).materialize()?;
    let first: Vec<u64> = shuffled.take(5)?;
    println!("first rows after the shuffle: {first:?}");
    let halves = shuffled.split(2)?;
    for (i, h) in halves.iter().enumerate() {
        let rows: Vec<u64> = h.take_all()?;
        println!("split {i}: {} rows, sum {}", rows.len(), rows.iter().sum::<u64>());
    }

    // Article 001: y = a·x + b over 1000 points, 80 % for training.
    println!("# from_items, random_shuffle, split_at_indices");
    let (a, b, size) = (5.0, 10.0, 1000);
    let items: Vec<Point> = (0..size).map(|i| i as f64 / size as f64).map(|x| Point { x, y: a * x + b }).collect();
    let dataset = data::from_items(items)?;
    let split_index = (dataset.count()? as f64 * 0.8) as u64;
    let parts = dataset.random_shuffle(Some(7)).split_at_indices(&[split_index])?;
    let (train, validation) = (&parts[0], &parts[1]);
    println!("train: {} rows, validation: {} rows", train.count()?, validation.count()?);

    println!("# epochs: repeat(3), iter_batches(256)");
    let mut epoch_rows = Vec::new();
    for epoch in 0..3u64 {
        let options =
            IterBatches { local_shuffle_buffer_size: Some(512), local_shuffle_seed: epoch, ..IterBatches::new(256) };
        let mut rows = 0;
        let mut batches = 0;
        let mut sum_y = 0.0;
        for batch in train.iter_batches_with(options)? {
            let batch = batch?;
            rows += batch.num_rows();
            batches += 1;
            sum_y += batch.column::<f64>("y")?.iter().sum::<f64>();
        }
        println!("epoch {epoch}: {batches} batches, {rows} rows, mean y {:.4}", sum_y / rows as f64);
        epoch_rows.push(rows);
    }
    let repeated = train.repeat(3).count()?;
    println!("repeat(3): {repeated} rows");
    Ok(())
}
