//! `wray::data` scenarios: files written and read back in every format,
//! the transforms, an actor pool, and each kind of bad input.

use serde::{Deserialize, Serialize};
use wray::Error;
use wray::data::{self, ActorPool, Agg, Batch, BatchMapper};

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
struct Rec {
    id: i64,
    x: f64,
    name: String,
}

#[derive(Serialize, Deserialize)]
struct Id {
    id: i64,
}

fn rec(id: u64) -> Rec {
    Rec { id: id as i64, x: id as f64 * 0.5, name: format!("row-{id}") }
}

fn checksum(ds: &data::Dataset) -> Result<(u64, f64), Error> {
    Ok((ds.count()?, ds.sum("id")?))
}

struct AddOffset {
    offset: i64,
    calls: u64,
}

impl BatchMapper for AddOffset {
    type Args = i64;
    fn new(offset: i64) -> Result<Self, Error> {
        Ok(AddOffset { offset, calls: 0 })
    }
    fn call(&mut self, batch: Batch) -> Result<Batch, Error> {
        self.calls += 1;
        let id: Vec<i64> = batch.column::<i64>("id")?.iter().map(|v| v + self.offset).collect();
        batch.with_column("id", id)
    }
}

fn files(dir: &str) -> usize {
    std::fs::read_dir(dir)
        .map(|d| d.filter_map(Result::ok).filter(|e| !e.file_name().to_string_lossy().starts_with('.')).count())
        .unwrap_or(0)
}

fn scenario_files(dir: &str) -> Result<(), Error> {
    let n = 20_000;
    let recs = data::range(n).map(rec);
    // The Parquet directory is left for `write_parquet` to make, as Ray's
    // writers make theirs.
    for sub in ["csv", "json"] {
        std::fs::create_dir_all(format!("{dir}/{sub}"))?;
    }
    let w = recs.write_csv(&format!("{dir}/csv"))?;
    println!("write_csv: {} rows, {} files", w.rows, w.files.len());
    let w = recs.write_json(&format!("{dir}/json"))?;
    println!("write_json: {} rows, {} files", w.rows, w.files.len());
    let w = recs.write_parquet(&format!("{dir}/parquet"))?;
    println!("write_parquet: {} rows, {} files", w.rows, w.files.len());
    let expect = (n, (0..n).sum::<u64>() as f64);
    println!("expected: {expect:?}");
    println!("read_csv: {:?}", checksum(&data::read_csv(format!("{dir}/csv/*.csv"))?)?);
    println!("read_json: {:?}", checksum(&data::read_json(format!("{dir}/json"))?)?);
    let pq = data::read_parquet(format!("{dir}/parquet"))?;
    println!("read_parquet: {:?}", checksum(&pq)?);
    let rows: Vec<Rec> = data::read_parquet(format!("{dir}/parquet"))?.sort("id", false).take(3)?;
    println!("parquet rows: {rows:?}");
    let only =
        data::read_parquet_with(format!("{dir}/parquet"), data::ParquetOptions { columns: Some(vec!["name".into()]) })?;
    println!("parquet columns: {:?}", only.columns()?);
    // A second write adds files beside the first's.
    recs.write_parquet(&format!("{dir}/parquet"))?;
    println!(
        "after a second write: {} rows in {} files",
        data::read_parquet(format!("{dir}/parquet"))?.count()?,
        files(&format!("{dir}/parquet"))
    );
    let text = data::read_text(format!("{dir}/csv"))?;
    println!("read_text: {} lines", text.count()?);
    println!("read_binary_files: {} files", data::read_binary_files(format!("{dir}/json"))?.count()?);

    // Transforms.
    let sorted: Vec<i64> = pq.sort("id", true).limit(3).select_columns(&["id"]).take_all()?;
    println!("sort desc: {sorted:?}");
    let groups = data::range(1000)
        .map(|i: u64| Id { id: (i % 3) as i64 })
        .add_column("v", |b: &Batch| Ok(b.column::<i64>("id")?.iter().map(|v| v * 10).collect::<Vec<i64>>()));
    let agg = groups
        .groupby(&["id"])
        .aggregate(vec![Agg::Count, Agg::Sum("v".into()), Agg::Mean("v".into()), Agg::Max("v".into())])
        .sort("id", false);
    // The sorted groups may come in several blocks: print them as one.
    let (mut ids, mut counts, mut sums) = (Vec::new(), Vec::new(), Vec::new());
    for b in agg.take_all_batches()? {
        ids.extend(b.column::<i64>("id")?.iter().copied());
        counts.extend(b.column::<i64>("count()")?.iter().copied());
        sums.extend(b.column::<f64>("sum(v)")?.iter().copied());
    }
    println!("groupby: {ids:?} {counts:?} {sums:?}");
    let sizes = groups
        .groupby(&["id"])
        .map_groups(|g: Batch| Batch::from_columns(vec![("size", vec![g.num_rows() as u64])]))
        .sum("size")?;
    println!("map_groups sizes sum: {sizes}");
    println!("std of 0..10: {:.4}", data::from_items((0..10).map(f64::from).collect::<Vec<f64>>())?.std("item")?);
    let pooled = data::range(10_000).map_batches_on_actors::<AddOffset>(1, ActorPool::new(1, 2), 1000);
    println!("actor pool: {:?}", checksum(&pooled)?);
    let u = data::range(10).union(&data::range(5));
    println!("union: {} rows", u.count()?);
    let z = data::range(4).zip(&data::range(4).map(|i: u64| i * 100))?;
    println!("zip: {:?}", z.columns()?);
    let r = data::range(1000).repartition(3).materialize()?;
    println!("repartition: {} blocks", r.take_all_batches()?.len());
    let renamed = data::range(3).rename_columns(&[("id", "n")]).drop_columns(&[]);
    println!("renamed: {:?}", renamed.columns()?);
    let (train, test) = data::range(100).train_test_split(0.25, Some(0))?;
    println!("train_test_split: {} + {}", train.count()?, test.count()?);
    let stats = pq.map(|r: Rec| r.id).filter(|v: &i64| v % 2 == 0);
    let _ = stats.count()?;
    print!("{}", stats.stats());
    Ok(())
}

#[derive(Serialize, Deserialize)]
struct Ab {
    a: i64,
    b: i64,
}

/// `Ab` with `a` read as text: a row type that does not match the columns.
#[derive(Serialize, Deserialize)]
struct AbText {
    #[allow(dead_code)]
    a: String,
}

fn report(what: &str, r: Result<u64, Error>) {
    match r {
        Ok(n) => println!("{what}: unexpectedly fine ({n} rows)"),
        Err(e) => println!("{what}: {e}"),
    }
}

fn scenario_bad(dir: &str) -> Result<(), Error> {
    std::fs::create_dir_all(format!("{dir}/bad"))?;
    // The bad value comes after the rows the column types are inferred from.
    let mut csv = String::from("a,b\n");
    for i in 0..1500 {
        csv.push_str(&format!("{i},{}\n", i * 2));
    }
    csv.push_str("5,oops\n");
    std::fs::write(format!("{dir}/bad/rows.csv"), csv)?;
    report(
        "malformed csv",
        data::read_csv(format!("{dir}/bad/rows.csv")).and_then(|d| d.map(|r: Ab| r.a + r.b).count()),
    );
    std::fs::write(format!("{dir}/bad/not.parquet"), "this is not parquet")?;
    report("not parquet", data::read_parquet(format!("{dir}/bad/not.parquet")).and_then(|d| d.count()));
    std::fs::create_dir_all(format!("{dir}/mixed"))?;
    data::range(10).write_parquet(&format!("{dir}/mixed"))?;
    data::range(10).map(|i: u64| Ab { a: i as i64, b: 0 }).write_parquet(&format!("{dir}/mixed"))?;
    report("schemas differ", data::read_parquet(format!("{dir}/mixed")).and_then(|d| d.count()));
    report(
        "wrong row type",
        data::range(3).map(|i: u64| Ab { a: i as i64, b: 0 }).take::<AbText>(3).map(|rows| rows.len() as u64),
    );
    report("missing directory", data::read_csv("/not-granted/x.csv").and_then(|d| d.count()));
    report(
        "map panics",
        data::range(1000)
            .map(|x: u64| if x == 577 { panic!("row {x} is bad") } else { x })
            .take_all::<u64>()
            .map(|rows| rows.len() as u64),
    );
    std::fs::create_dir_all(format!("{dir}/out"))?;
    // CSV cannot hold a list column: the write fails and leaves no file.
    let lists = data::from_items(vec![vec![1u32, 2], vec![3]])?;
    match lists.write_csv(&format!("{dir}/out")) {
        Ok(w) => println!("failed write: unexpectedly wrote {w:?}"),
        Err(e) => println!("failed write: {e}"),
    }
    let left: Vec<String> = std::fs::read_dir(format!("{dir}/out"))?
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    println!("files after the failed write: {left:?}");
    report(
        "a pool that takes every cpu",
        data::range(10).map_batches_on_actors::<AddOffset>(0, ActorPool::fixed(64), None).count(),
    );
    match data::range(3).write_json("/not-granted") {
        Ok(_) => println!("write to a missing directory: unexpectedly fine"),
        Err(e) => println!("write to a missing directory: {e}"),
    }
    Ok(())
}

/// The node of the task that makes a block.
fn node_column(b: &Batch) -> Result<Vec<String>, Error> {
    Ok(vec![wray::runtime_context().node_id; b.num_rows()])
}

/// On a cluster whose nodes share `dir`: files written and read back by
/// tasks on every node, blocks consumed where they were not made.
fn scenario_cluster(dir: &str) -> Result<(), Error> {
    let n = 400_000;
    let out = format!("{dir}/cluster");
    std::fs::create_dir_all(&out)?;
    let written = data::range(n).map(rec).add_column("node", node_column).write_parquet(&out)?;
    println!("written: {} rows in {} files", written.rows, written.files.len());
    let writers = data::read_parquet(&out)?.groupby(&["node"]).count().count()?;
    println!("nodes that wrote: {writers}");
    let read = data::read_parquet(&out)?
        .drop_columns(&["node"])
        .add_column("node", node_column)
        .filter(|r: &Id| r.id % 2 == 0)
        .materialize()?;
    let readers = read.groupby(&["node"]).count().count()?;
    println!("nodes that read: {readers}");
    println!("even rows: {:?}", checksum(&read)?);
    // Three half-CPU actors on three one-CPU nodes. Spread one per node they
    // would leave half a CPU everywhere and a whole one nowhere, and the
    // one-CPU tasks around the pool would wait for ever (this hung about
    // one run in six under load); the head now puts fractional demands
    // where they break no whole CPU.
    let pooled = read.map_batches_on_actors::<AddOffset>(1, ActorPool::new(3, 3).num_cpus(0.5), None);
    println!("actor pool: {:?}", checksum(&pooled)?);
    Ok(())
}

/// A generated row: ~60 bytes of CSV, a random-ish float pair and tag.
#[derive(Serialize, Deserialize)]
struct Wide {
    id: i64,
    a: f64,
    b: f64,
    tag: String,
}

fn wide(offset: &u64, i: u64) -> Wide {
    let id = i + offset;
    let mut r = wray::Rng::new(id);
    Wide {
        id: id as i64,
        a: f64::from(r.uniform()),
        b: f64::from(r.normal()),
        tag: format!("t{:015x}", r.next_u64() >> 4),
    }
}

#[derive(Serialize, Deserialize)]
struct Slim {
    id: i64,
    k: i64,
    s: f64,
}

/// Rounds each block's `s` to 1/1000 on an actor: a stage whose blocks go
/// through the object store (it cannot fuse with the reads).
struct Round;

impl BatchMapper for Round {
    type Args = ();
    fn new((): ()) -> Result<Self, Error> {
        Ok(Round)
    }
    fn call(&mut self, batch: Batch) -> Result<Batch, Error> {
        let s: Vec<f64> = batch.column::<f64>("s")?.iter().map(|v| (v * 1000.0).round() / 1000.0).collect();
        batch.with_column("s", s)
    }
}

fn disk_bytes(dir: &str) -> u64 {
    std::fs::read_dir(dir)
        .map(|d| d.filter_map(Result::ok).filter_map(|e| e.metadata().ok()).map(|m| m.len()).sum())
        .unwrap_or(0)
}

/// `data-generate DIR ROWS`: ROWS rows as CSV files and ROWS more as
/// Parquet files under DIR/in, 262,144 rows a file.
fn scenario_generate(dir: &str, rows: u64) -> Result<(), Error> {
    data::DataContext::set(data::DataContext { rows_per_block: 256 * 1024, ..data::DataContext::current() });
    for sub in ["csv", "parquet"] {
        std::fs::create_dir_all(format!("{dir}/in/{sub}"))?;
    }
    data::range(rows).map_with(0u64, wide).write_csv(&format!("{dir}/in/csv"))?;
    data::range(rows).map_with(rows, wide).write_parquet(&format!("{dir}/in/parquet"))?;
    let (csv, parquet) = (disk_bytes(&format!("{dir}/in/csv")), disk_bytes(&format!("{dir}/in/parquet")));
    println!("generated: {} rows, {csv} bytes of CSV, {parquet} bytes of Parquet", 2 * rows);
    Ok(())
}

/// `data-stream DIR`: reads what `data-generate` wrote, maps, filters,
/// rounds on an actor pool, writes Parquet, and checks counts and sums
/// against the ones computed here.
fn scenario_stream(dir: &str) -> Result<(), Error> {
    let input = data::read_parquet(format!("{dir}/in/parquet"))?.union(&data::read_csv(format!("{dir}/in/csv"))?);
    let rows = input.count()?;
    let out = format!("{dir}/out");
    std::fs::create_dir_all(&out)?;
    let start = std::time::Instant::now();
    let written = input
        .map(|w: Wide| Slim { id: w.id, k: w.id * 7 % 1000, s: w.a + w.b })
        .filter(|r: &Slim| r.id % 3 != 0)
        .map_batches_on_actors::<Round>((), ActorPool::fixed(2).num_cpus(0.5), None)
        .write_parquet(&out)?;
    println!("pipeline: {} rows written in {:.1} s", written.rows, start.elapsed().as_secs_f64());
    let back = data::read_parquet(&out)?;
    let (mut n, mut ids, mut ks) = (0u64, 0u64, 0u64);
    for id in (0..rows).filter(|i| i % 3 != 0) {
        n += 1;
        ids += id;
        ks += id * 7 % 1000;
    }
    println!("expected: {n} rows, id sum {ids}, k sum {ks}");
    println!("got: {} rows, id sum {}, k sum {}", back.count()?, back.sum("id")? as u64, back.sum("k")? as u64);
    Ok(())
}

/// A Train-worker stand-in: per epoch, the rows and the sum of the ids it
/// took from its share of a streaming split.
#[wray::remote]
fn consume(mut share: data::DataIterator, epochs: u32) -> Result<Vec<(u64, u64)>, Error> {
    (0..epochs)
        .map(|_| {
            let (mut rows, mut sum) = (0, 0);
            for b in share.iter_batches(1000) {
                let b = b?;
                rows += b.num_rows() as u64;
                sum += b.column::<u64>("item")?.iter().sum::<u64>();
            }
            Ok((rows, sum))
        })
        .collect()
}

/// Per epoch, the rows and the ids a share of an equal split yielded.
#[wray::remote]
fn consume_ids(mut share: data::DataIterator, epochs: u32) -> Result<Vec<(u64, Vec<u64>)>, Error> {
    (0..epochs)
        .map(|_| {
            let mut ids = Vec::new();
            for b in share.iter_batches(1000) {
                let b = b?;
                ids.extend_from_slice(&b.column::<u64>("id")?);
            }
            Ok((ids.len() as u64, ids))
        })
        .collect()
}

/// A dataset is a value: a task runs the plan it is given.
#[wray::remote]
fn count_in_a_task(ds: data::Dataset) -> Result<(u64, f64), Error> {
    Ok((ds.count()?, ds.sum("item")?))
}

/// `data-split`: two consumers share two epochs of one dataset.
fn scenario_split() -> Result<(), Error> {
    let ds = data::range(100_000).map(|i: u64| i * 2);
    let shares = ds.streaming_split(2)?;
    let runs: Vec<_> = shares.into_iter().map(|s| consume::remote(s, 2)).collect();
    let per_consumer = wray::get_all(&runs)?;
    for epoch in 0..2 {
        let rows: u64 = per_consumer.iter().map(|c| c[epoch].0).sum();
        let sum: u64 = per_consumer.iter().map(|c| c[epoch].1).sum();
        let each: Vec<u64> = per_consumer.iter().map(|c| c[epoch].0).collect();
        println!("split epoch {}: {rows} rows, sum {sum}, per consumer {each:?}", epoch + 1);
    }
    // Equal shares: 100,001 rows in blocks of 1,000 for three consumers —
    // 33,333 each an epoch, two rows dropped.
    data::DataContext::set(data::DataContext { rows_per_block: 1000, ..data::DataContext::current() });
    let uneven = data::range(100_001);
    data::DataContext::set(data::DataContext {
        rows_per_block: data::DEFAULT_ROWS_PER_BLOCK,
        ..data::DataContext::current()
    });
    let shares = uneven.streaming_split_with(3, data::StreamingSplit { equal: true })?;
    let runs: Vec<_> = shares.into_iter().map(|s| consume_ids::remote(s, 2)).collect();
    let per_consumer = wray::get_all(&runs)?;
    for epoch in 0..2 {
        let each: Vec<u64> = per_consumer.iter().map(|c| c[epoch].0).collect();
        let distinct = per_consumer.iter().flat_map(|c| c[epoch].1.iter()).collect::<std::collections::BTreeSet<_>>();
        println!("equal split epoch {}: per consumer {each:?}, distinct ids {}", epoch + 1, distinct.len());
    }
    println!(
        "a dataset in a task: {:?}",
        wray::get(&count_in_a_task::remote(ds.filter(|x: &u64| x.is_multiple_of(4))))?
    );
    Ok(())
}

/// `data-progress`: a few seconds of row functions, for the progress line.
fn scenario_progress() -> Result<(), Error> {
    let n = data::range(4_000_000).map(|i: u64| i * 3).filter(|x: &u64| x.is_multiple_of(2)).count()?;
    println!("progress: {n} rows");
    Ok(())
}

pub fn run(scenario: &str, args: &[String]) -> Result<(), Error> {
    let dir = args.first().map(String::as_str).unwrap_or("/work");
    match scenario {
        "data-files" => scenario_files(dir),
        "data-bad" => scenario_bad(dir),
        "data-cluster" => scenario_cluster(dir),
        "data-generate" => scenario_generate(dir, args.get(1).and_then(|r| r.parse().ok()).unwrap_or(1_000_000)),
        "data-stream" => scenario_stream(dir),
        "data-progress" => scenario_progress(),
        "data-split" => scenario_split(),
        other => panic!("unknown scenario {other}"),
    }
}
