//! Writers: one file per block, written by the task that made the block.
//!
//! Files are named `{write id}_{block:06}_{part:03}.{ext}`, with a write id
//! fresh for every write, and opened with `create_new`: a second write into
//! the same directory adds files beside the first's instead of replacing
//! them. A file is written under a hidden name (`.{name}.inprogress`, which
//! readers skip) and renamed when complete, so a failed write leaves no file
//! that looks complete.

use crate::block::{FILE_BUFFER_BYTES, invalid};
use crate::plan::StageCtx;
use arrow_array::{ArrayRef, RecordBatch, StringArray, UInt64Array};
use serde::{Deserialize, Serialize};
use std::fs::OpenOptions;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use wray_guest_core::Error;

/// A file format the writers produce.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub(crate) enum Format {
    Csv,
    Json,
    Parquet,
}

impl Format {
    fn ext(self) -> &'static str {
        match self {
            Format::Csv => "csv",
            Format::Json => "json",
            Format::Parquet => "parquet",
        }
    }

    pub fn op(self) -> &'static str {
        match self {
            Format::Csv => "WriteCSV",
            Format::Json => "WriteJSON",
            Format::Parquet => "WriteParquet",
        }
    }
}

#[derive(Serialize, Deserialize)]
pub(crate) struct WriteArg {
    pub dir: String,
    pub id: String,
    pub format: Format,
}

fn write_file(path: &Path, format: Format, batch: &RecordBatch) -> Result<(), String> {
    let file = OpenOptions::new().write(true).create_new(true).open(path).map_err(|e| e.to_string())?;
    match format {
        Format::Csv => {
            let mut w = arrow_csv::Writer::new(BufWriter::with_capacity(FILE_BUFFER_BYTES, file));
            w.write(batch).map_err(|e| e.to_string())?;
            w.into_inner().into_inner().map_err(|e| e.to_string())?.sync_all().map_err(|e| e.to_string())
        }
        Format::Json => {
            let mut w = arrow_json::LineDelimitedWriter::new(BufWriter::with_capacity(FILE_BUFFER_BYTES, file));
            w.write(batch).map_err(|e| e.to_string())?;
            w.finish().map_err(|e| e.to_string())?;
            let mut inner = w.into_inner();
            inner.flush().map_err(|e| e.to_string())?;
            inner.into_inner().map_err(|e| e.to_string())?.sync_all().map_err(|e| e.to_string())
        }
        Format::Parquet => {
            let mut props = parquet::file::properties::WriterProperties::builder()
                .set_compression(parquet::basic::Compression::SNAPPY);
            for (field, column) in batch.schema().fields().iter().zip(batch.columns()) {
                let choice = choose(column.as_ref());
                let path = parquet::schema::types::ColumnPath::from(field.name().as_str());
                if !choice.dictionary {
                    props = props.set_column_dictionary_enabled(path.clone(), false);
                }
                if !choice.compress {
                    props = props.set_column_compression(path, parquet::basic::Compression::UNCOMPRESSED);
                }
            }
            let props = props.build();
            let mut w = parquet::arrow::ArrowWriter::try_new(
                BufWriter::with_capacity(FILE_BUFFER_BYTES, file),
                batch.schema(),
                Some(props),
            )
            .map_err(|e| e.to_string())?;
            w.write(batch).map_err(|e| e.to_string())?;
            let inner = w.into_inner().map_err(|e| e.to_string())?;
            inner.into_inner().map_err(|e| e.to_string())?.sync_all().map_err(|e| e.to_string())
        }
    }
}

/// Values of a column looked at to choose how it is written.
const SAMPLE_VALUES: usize = 4096;
/// A sample that snappy shrinks by less than an eighth is stored
/// uncompressed.
const WORTH_COMPRESSING: f64 = 7.0 / 8.0;

/// How one Parquet column is written, chosen from a sample of its first
/// [`SAMPLE_VALUES`] values (columns of other types, and short ones, keep the
/// writer's defaults: a dictionary, then snappy).
///
/// - **No dictionary when most values differ** (ids, measurements, free
///   text). The writer would hash every such value into a dictionary until
///   the dictionary passed its 1 MiB limit and then fall back to plain
///   encoding: hashing that was a sixth of the CSV → Parquet benchmark's
///   time, for a file no smaller.
/// - **No compression when it does not pay**: such a column is written as
///   its plain values, and when snappy shrinks the sample's bytes by less
///   than an eighth (random floats, hashes) compressing every page costs a
///   tenth of that benchmark's time for a few percent of size. Readers see
///   no difference; the codec is recorded per column.
struct ColumnChoice {
    dictionary: bool,
    compress: bool,
}

fn choose(column: &dyn arrow_array::Array) -> ColumnChoice {
    use arrow_array::cast::AsArray;
    use arrow_schema::DataType;
    let defaults = ColumnChoice { dictionary: true, compress: true };
    let n = column.len().min(SAMPLE_VALUES);
    if n < 64 {
        return defaults;
    }
    // Declared before `values`, which borrows from it.
    let data = column.to_data();
    let values: Vec<&[u8]> = match column.data_type() {
        DataType::Utf8 => (0..n).map(|i| column.as_string::<i32>().value(i).as_bytes()).collect(),
        DataType::LargeUtf8 => (0..n).map(|i| column.as_string::<i64>().value(i).as_bytes()).collect(),
        DataType::Binary => (0..n).map(|i| column.as_binary::<i32>().value(i)).collect(),
        DataType::LargeBinary => (0..n).map(|i| column.as_binary::<i64>().value(i)).collect(),
        t => {
            let Some(width) = t.primitive_width() else { return defaults };
            let Some(buffer) = data.buffers().first() else { return defaults };
            let start = data.offset() * width;
            let Some(bytes) = buffer.as_slice().get(start..start + n * width) else { return defaults };
            bytes.chunks_exact(width).collect()
        }
    };
    let distinct: std::collections::HashSet<&[u8]> = values.iter().copied().collect();
    if distinct.len() * 2 <= n {
        return defaults;
    }
    // The bytes of the plain encoding: byte arrays carry a 4-byte length
    // each, which is often what compresses.
    let plain: Vec<u8> = if column.data_type().is_primitive() {
        values.concat()
    } else {
        values.iter().flat_map(|v| (v.len() as u32).to_le_bytes().into_iter().chain(v.iter().copied())).collect()
    };
    let compressed = snap::raw::Encoder::new().compress_vec(&plain).map_or(usize::MAX, |c| c.len());
    ColumnChoice { dictionary: false, compress: (compressed as f64) < plain.len() as f64 * WORTH_COMPRESSING }
}

/// The write stage: writes the block, returns one row `{path, rows}`.
pub(crate) fn write(batch: RecordBatch, ctx: &StageCtx, arg: &[u8]) -> Result<RecordBatch, Error> {
    let a: WriteArg = wray_codec::decode(arg).map_err(|e| invalid(format!("a write's argument: {e}")))?;
    let name = format!("{}_{:06}_{:03}.{}", a.id, ctx.index, ctx.part, a.format.ext());
    let dir = PathBuf::from(&a.dir);
    let target = dir.join(&name);
    let temp = dir.join(format!(".{name}.inprogress"));
    let what = a.format.op();
    // The write id makes names unique; an existing file is still an error,
    // never an overwrite.
    if target.exists() {
        return Err(invalid(format!("{what} {}: the file exists already", target.display())));
    }
    let result =
        write_file(&temp, a.format, &batch).and_then(|()| std::fs::rename(&temp, &target).map_err(|e| e.to_string()));
    if let Err(e) = result {
        let _ = std::fs::remove_file(&temp);
        return Err(invalid(format!("{what} {}: {e}", target.display())));
    }
    let paths: ArrayRef = Arc::new(StringArray::from_iter_values([target.display().to_string()]));
    let rows: ArrayRef = Arc::new(UInt64Array::from_iter_values([batch.num_rows() as u64]));
    RecordBatch::try_from_iter([("path", paths), ("rows", rows)]).map_err(|e| invalid(e.to_string()))
}

/// A fresh write id: the time and a counter, so two writes never share
/// names.
pub(crate) fn write_id() -> String {
    use std::time::{SystemTime, UNIX_EPOCH};
    thread_local!(static WRITES: std::cell::Cell<u32> = const { std::cell::Cell::new(0) });
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64);
    let n = WRITES.with(|c| {
        c.set(c.get() + 1);
        c.get()
    });
    format!("{nanos:x}{n:02x}")
}

#[cfg(test)]
mod tests {
    use super::choose;
    use arrow_array::{Float64Array, Int64Array, StringArray};

    #[test]
    fn columns_choose_a_dictionary_when_values_repeat_and_compression_when_it_pays() {
        // Repeating categories: the writer's defaults.
        let categories = StringArray::from_iter_values((0..10_000).map(|i| ["red", "green", "blue"][i % 3]));
        let c = choose(&categories);
        assert!(c.dictionary && c.compress);
        // Sequential ids: all distinct, but their high bytes repeat.
        let ids = Int64Array::from_iter_values(0..10_000);
        let c = choose(&ids);
        assert!(!c.dictionary && c.compress);
        // Random bits: distinct and incompressible.
        let mut rng = wray_guest_core::Rng::new(7);
        let noise = Float64Array::from_iter_values((0..10_000).map(|_| f64::from_bits(rng.next_u64())));
        let c = choose(&noise);
        assert!(!c.dictionary && !c.compress);
        // Random hex strings: the length before each value compresses.
        let tags = StringArray::from_iter_values((0..10_000).map(|_| format!("t{:015x}", rng.next_u64() >> 4)));
        let c = choose(&tags);
        assert!(!c.dictionary && c.compress);
        // Too short to judge: the defaults.
        let few = Int64Array::from_iter_values(0..10);
        let c = choose(&few);
        assert!(c.dictionary && c.compress);
    }
}
