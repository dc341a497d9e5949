//! Writers: one file per block, written by the task that made the block.
//!
//! Files are named `{write id}_{block:06}_{part:03}.{ext}`, with a write id
//! fresh for every write, and opened with `create_new`: a second write into
//! the same directory adds files beside the first's instead of replacing
//! them. A file is written under a hidden name (`.{name}.inprogress`, which
//! readers skip) and renamed when complete, so a failed write leaves no file
//! that looks complete.

use crate::block::invalid;
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
            let mut w = arrow_csv::Writer::new(BufWriter::new(file));
            w.write(batch).map_err(|e| e.to_string())?;
            w.into_inner().into_inner().map_err(|e| e.to_string())?.sync_all().map_err(|e| e.to_string())
        }
        Format::Json => {
            let mut w = arrow_json::LineDelimitedWriter::new(BufWriter::new(file));
            w.write(batch).map_err(|e| e.to_string())?;
            w.finish().map_err(|e| e.to_string())?;
            let mut inner = w.into_inner();
            inner.flush().map_err(|e| e.to_string())?;
            inner.into_inner().map_err(|e| e.to_string())?.sync_all().map_err(|e| e.to_string())
        }
        Format::Parquet => {
            let props = parquet::file::properties::WriterProperties::builder()
                .set_compression(parquet::basic::Compression::SNAPPY)
                .build();
            let mut w = parquet::arrow::ArrowWriter::try_new(BufWriter::new(file), batch.schema(), Some(props))
                .map_err(|e| e.to_string())?;
            w.write(batch).map_err(|e| e.to_string())?;
            let inner = w.into_inner().map_err(|e| e.to_string())?;
            inner.into_inner().map_err(|e| e.to_string())?.sync_all().map_err(|e| e.to_string())
        }
    }
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
