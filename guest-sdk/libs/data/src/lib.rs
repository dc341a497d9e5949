//! Datasets for wray jobs — Ray Data for WebAssembly: rows in Arrow blocks
//! held in the object store, transformed lazily and executed as a stream of
//! tasks (and actor pools) with bounded memory, read from and written to
//! CSV, JSON lines and Parquet.
//!
//! Enable it with the `data` feature of `wray`, and use it as `wray::data`:
//!
//! ```no_run
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Serialize, Deserialize)]
//! struct Wine { alcohol: f32, quality: i64 }
//!
//! # fn main() -> Result<(), wray::Error> {
//! let wines = wray::data::read_csv("/data/winequality-red.csv")?; // granted with --dir
//! let good = wines.filter(|w: &Wine| w.quality >= 7);
//! println!("{} good wines", good.count()?);
//! let mean = good.mean("alcohol")?;
//! let out = good.map_with(mean, |m: &f64, w: Wine| w.alcohol as f64 - m).write_parquet("/out")?;
//! println!("wrote {} rows in {} files", out.rows, out.files.len());
//! # Ok(()) }
//! ```
//!
//! - **Sources**: [`range`], [`from_items`], [`from_batches`], [`read_csv`],
//!   [`read_json`], [`read_parquet`], [`read_text`], [`read_binary_files`] —
//!   files, directories and globs, one read task per file (per row group
//!   for Parquet).
//! - **Transforms** on [`Dataset`]: row-wise ones (`map`, `filter`,
//!   `flat_map`, `map_batches`, column edits) fuse into one task per
//!   block; `map_batches_on_actors` runs a [`BatchMapper`] on an
//!   [`ActorPool`]; all-to-all ones (`random_shuffle`, `sort`, `groupby`,
//!   `repartition`) exchange rows between blocks.
//! - **Consuming**: `iter_batches`, `iter_rows`, `take`, `show`, `count`,
//!   `schema`, `stats`, the writers; [`Batch::tensor`] hands columns to
//!   `wray::nn`.
//!
//! Rows are any serde type: a struct reads and writes the columns named
//! like its fields, any other type (`u64`, `String`, a tuple) the single
//! column `item` — or the only column of the block, whatever its name.
//! The functions given to transforms run in other instances of the job and
//! must not capture variables; see `docs/DATA.md` for why and for the
//! limits.

#![deny(missing_docs)]

// The SDK's macros expand to `::wray::...`; inside this crate that is the
// core.
extern crate wray_guest_core as wray;

mod batch;
mod block;
mod context;
mod dataset;
mod equal;
mod exchange;
mod exec;
mod ops;
mod plan;
mod pool;
mod read;
mod rows;
mod split;
mod stats;
mod write;

pub use batch::{Batch, Number};
pub use block::{DEFAULT_ROWS_PER_BLOCK, TARGET_BLOCK_BYTES};
pub use context::DataContext;
pub use dataset::{Dataset, GroupedData, IterBatches, Written};
pub use exchange::Agg;
pub use ops::Row;
pub use pool::{ActorPool, BatchMapper};
pub use read::{CsvOptions, ParquetOptions, Paths};
pub use split::{DataIterator, MAX_SPLITS, StreamingSplit};
pub use stats::{OpStats, Stats};

/// Arrow, as the blocks use it: build arrays and record batches for
/// [`from_batches`] and [`Batch::with_array`].
pub mod arrow {
    pub use arrow_array as array;
    pub use arrow_schema as schema;
}

use plan::Node;
use std::rc::Rc;
use wray_guest_core::Error;

/// The integers `0..n` in the column `id` (Ray's `range`).
pub fn range(n: u64) -> Dataset {
    Dataset::from_node(read::range(n, DataContext::current().rows_per_block))
}

/// A dataset of these rows (Ray's `from_items`): a struct's fields become
/// columns, other values the column `item`. The blocks are stored now.
pub fn from_items<T: Row>(items: Vec<T>) -> Result<Dataset, Error> {
    let per = DataContext::current().rows_per_block.max(1);
    let mut blocks = Vec::new();
    for chunk in items.chunks(per) {
        blocks.push(block::put(&rows::to_batch(chunk)?)?);
    }
    if blocks.is_empty() {
        blocks.push(block::put(&rows::to_batch::<T>(&[])?)?);
    }
    Ok(Dataset::from_node(Rc::new(Node::Blocks { blocks })))
}

/// A dataset of these batches, one block each (Ray's `from_arrow`).
pub fn from_batches(batches: Vec<Batch>) -> Result<Dataset, Error> {
    let blocks = batches.iter().map(|b| block::put(b.record_batch())).collect::<Result<_, _>>()?;
    Ok(Dataset::from_node(Rc::new(Node::Blocks { blocks })))
}

/// Reads CSV files with a header line, the column types inferred from the
/// first file's first 1000 rows.
pub fn read_csv(paths: impl Paths) -> Result<Dataset, Error> {
    read_csv_with(paths, CsvOptions::default())
}

/// Reads CSV files as `options` say.
pub fn read_csv_with(paths: impl Paths, options: CsvOptions) -> Result<Dataset, Error> {
    Ok(Dataset::from_node(read::csv(paths.paths(), options)?))
}

/// Reads JSON-lines files (one object per line).
pub fn read_json(paths: impl Paths) -> Result<Dataset, Error> {
    Ok(Dataset::from_node(read::json(paths.paths())?))
}

/// Reads Parquet files, one task per row group; `count` comes from the
/// files' metadata. Every file must have the same columns.
pub fn read_parquet(paths: impl Paths) -> Result<Dataset, Error> {
    read_parquet_with(paths, ParquetOptions::default())
}

/// Reads Parquet files as `options` say (e.g. only some columns).
pub fn read_parquet_with(paths: impl Paths, options: ParquetOptions) -> Result<Dataset, Error> {
    Ok(Dataset::from_node(read::parquet(paths.paths(), options)?))
}

/// Reads text files, a row `{text}` per line.
pub fn read_text(paths: impl Paths) -> Result<Dataset, Error> {
    Ok(Dataset::from_node(read::text(paths.paths())?))
}

/// Reads whole files, a row `{path, bytes}` per file.
pub fn read_binary_files(paths: impl Paths) -> Result<Dataset, Error> {
    Ok(Dataset::from_node(read::binary(paths.paths())?))
}
