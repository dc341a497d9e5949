//! Sources: `range`, and the file readers. Planning (listing files, reading
//! a CSV header or Parquet footers, comparing schemas) happens where the
//! dataset is built, so that a missing directory or a file that is not
//! Parquet fails there, naming the file; the reading itself is one task
//! per file (per row group for Parquet), fused with the stages after it.

use crate::block::{self, FILE_BUFFER_BYTES, invalid};
use crate::plan::{Code, Node, Read, ReadFn};
use arrow_array::{ArrayRef, BinaryArray, Int64Array, RecordBatch, RecordBatchReader, StringArray};
use arrow_schema::{Schema, SchemaRef};
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use serde::{Deserialize, Serialize};
use std::fs::File;
use std::io::{BufRead, BufReader, Seek};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::Arc;
use wray_guest_core::Error;

/// Rows per batch while parsing; batches are then joined up to the block
/// target. Small batches parse faster: arrow-csv parses column by column, and
/// a small batch's text stays in the cache for all its columns. On the
/// CSV → Parquet benchmark 4 Ki rows beat 8 Ki by 5 % and 16 Ki by 10 %;
/// parsing a whole block as one batch (no join) was slower still.
const PARSE_BATCH_ROWS: usize = 4 * 1024;
/// Lines read to infer a CSV or JSON schema.
const INFER_ROWS: usize = 1000;

/// One or more paths: files, directories (read whole, recursively, in name
/// order, skipping names that start with `.` or `_`) and glob patterns
/// (`/data/*.csv`, `/data/**/part-*.parquet`).
pub trait Paths {
    /// The paths as given.
    fn paths(self) -> Vec<String>;
}

impl Paths for &str {
    fn paths(self) -> Vec<String> {
        vec![self.to_string()]
    }
}
impl Paths for String {
    fn paths(self) -> Vec<String> {
        vec![self]
    }
}
impl Paths for &String {
    fn paths(self) -> Vec<String> {
        vec![self.clone()]
    }
}
// Lists of paths in every shape a caller has them: owned or borrowed,
// arrays or vectors, of `&str` or `String` (`read_csv(&["a.csv", "b.csv"])`
// as much as `read_csv(files)`).
impl<S: AsRef<str>> Paths for &[S] {
    fn paths(self) -> Vec<String> {
        self.iter().map(|s| s.as_ref().to_string()).collect()
    }
}
impl<S: AsRef<str>> Paths for Vec<S> {
    fn paths(self) -> Vec<String> {
        self.as_slice().paths()
    }
}
impl<S: AsRef<str>> Paths for &Vec<S> {
    fn paths(self) -> Vec<String> {
        self.as_slice().paths()
    }
}
impl<S: AsRef<str>, const N: usize> Paths for [S; N] {
    fn paths(self) -> Vec<String> {
        self.as_slice().paths()
    }
}
impl<S: AsRef<str>, const N: usize> Paths for &[S; N] {
    fn paths(self) -> Vec<String> {
        self.as_slice().paths()
    }
}

fn hidden(p: &Path) -> bool {
    p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with('.') || n.starts_with('_'))
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), Error> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| invalid(format!("{}: {e}", dir.display())))?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()
        .map_err(|e| invalid(format!("{}: {e}", dir.display())))?;
    entries.sort();
    for p in entries.into_iter().filter(|p| !hidden(p)) {
        if p.is_dir() { walk(&p, out)? } else { out.push(p) }
    }
    Ok(())
}

/// Expands paths to files, failing on any that does not exist.
pub(crate) fn expand(what: &str, paths: Vec<String>) -> Result<Vec<PathBuf>, Error> {
    let mut files = Vec::new();
    for p in paths {
        if p.contains(['*', '?', '[']) {
            let matches = glob::glob(&p).map_err(|e| invalid(format!("{what}: bad pattern {p:?}: {e}")))?;
            let before = files.len();
            for m in matches {
                let m = m.map_err(|e| invalid(format!("{what}: {e}")))?;
                if m.is_dir() { walk(&m, &mut files)? } else { files.push(m) }
            }
            if files.len() == before {
                return Err(invalid(format!("{what}: no file matches {p:?}")));
            }
            continue;
        }
        let path = PathBuf::from(&p);
        match std::fs::metadata(&path) {
            Ok(m) if m.is_dir() => walk(&path, &mut files)?,
            Ok(_) => files.push(path),
            Err(e) => {
                return Err(invalid(format!(
                    "{what}: {p}: {e} (a job sees only the directories granted with `wray run --dir HOST::GUEST`)"
                )));
            }
        }
    }
    if files.is_empty() {
        return Err(invalid(format!("{what}: no files to read")));
    }
    Ok(files)
}

fn open(what: &str, path: &str) -> Result<File, Error> {
    File::open(path).map_err(|e| invalid(format!("{what} {path}: {e}")))
}

fn schema_bytes(schema: &SchemaRef) -> Result<Vec<u8>, Error> {
    block::encode(&RecordBatch::new_empty(schema.clone()))
}

fn schema_of(bytes: &[u8]) -> Result<SchemaRef, Error> {
    Ok(block::decode(bytes.to_vec())?.schema())
}

/// Joins parsed batches into blocks of about `target` bytes.
fn coalesce(
    what: &str,
    path: &str,
    schema: &SchemaRef,
    batches: impl Iterator<Item = Result<RecordBatch, arrow_schema::ArrowError>>,
    target: usize,
) -> Result<Vec<RecordBatch>, Error> {
    let mut out = Vec::new();
    let mut pending = Vec::new();
    let mut bytes = 0;
    for b in batches {
        let b = b.map_err(|e| invalid(format!("{what} {path}: {e}")))?;
        bytes += b.get_array_memory_size();
        pending.push(b);
        if bytes >= target {
            out.push(block::concat(schema, &std::mem::take(&mut pending))?);
            bytes = 0;
        }
    }
    if !pending.is_empty() || out.is_empty() {
        out.push(if pending.is_empty() {
            RecordBatch::new_empty(schema.clone())
        } else {
            block::concat(schema, &pending)?
        });
    }
    Ok(out)
}

fn node(name: &str, reads: Vec<Read>) -> Rc<Node> {
    Rc::new(Node::Read { name: name.to_string(), reads })
}

fn read<A: Serialize + 'static>(code: ReadFn, arg: &A, rows: Option<u64>) -> Read {
    Read { code: Code::of(code), arg: wray_codec::encode(arg).expect("read arguments encode"), rows }
}

fn arg<A: serde::de::DeserializeOwned + 'static>(bytes: &[u8]) -> Result<A, Error> {
    wray_codec::decode(bytes).map_err(|e| invalid(format!("a read's argument: {e}")))
}

// ---- range ----

fn range_read(bytes: &[u8], _target: usize) -> Result<Vec<RecordBatch>, Error> {
    let (start, end): (i64, i64) = arg(bytes)?;
    let ids: ArrayRef = Arc::new(Int64Array::from_iter_values(start..end));
    Ok(vec![RecordBatch::try_from_iter([("id", ids)]).map_err(|e| invalid(e.to_string()))?])
}

pub(crate) fn range(n: u64, rows_per_block: usize) -> Rc<Node> {
    let per = rows_per_block.max(1) as u64;
    let reads = (0..n)
        .step_by(per as usize)
        .map(|s| {
            let e = (s + per).min(n);
            read(range_read, &(s as i64, e as i64), Some(e - s))
        })
        .collect();
    node("ReadRange", reads)
}

// ---- CSV ----

/// How CSV files are parsed.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CsvOptions {
    /// The field separator (`b','`).
    pub delimiter: u8,
    /// Whether the first line names the columns (otherwise they are
    /// `column_1`, `column_2`, ...).
    pub has_header: bool,
}

impl Default for CsvOptions {
    fn default() -> CsvOptions {
        CsvOptions { delimiter: b',', has_header: true }
    }
}

#[derive(Serialize, Deserialize)]
struct FileArg {
    path: String,
    schema: Vec<u8>,
    csv: Option<CsvOptions>,
}

fn csv_format(o: &CsvOptions) -> arrow_csv::reader::Format {
    arrow_csv::reader::Format::default().with_header(o.has_header).with_delimiter(o.delimiter)
}

fn csv_read(bytes: &[u8], target: usize) -> Result<Vec<RecordBatch>, Error> {
    let a: FileArg = arg(bytes)?;
    let schema = schema_of(&a.schema)?;
    let options = a.csv.unwrap_or_default();
    let reader = arrow_csv::ReaderBuilder::new(schema.clone())
        .with_format(csv_format(&options))
        .with_batch_size(PARSE_BATCH_ROWS)
        .build(BufReader::with_capacity(FILE_BUFFER_BYTES, open("read_csv", &a.path)?))
        .map_err(|e| invalid(format!("read_csv {}: {e}", a.path)))?;
    coalesce("read_csv", &a.path, &schema, reader, target)
}

pub(crate) fn csv(paths: Vec<String>, options: CsvOptions) -> Result<Rc<Node>, Error> {
    let files = expand("read_csv", paths)?;
    // One schema for every file, inferred from the first: a file whose
    // columns differ fails when it is read, naming itself.
    let first = files[0].display().to_string();
    let mut f = open("read_csv", &first)?;
    let (schema, _) = csv_format(&options)
        .infer_schema(&mut f, Some(INFER_ROWS))
        .map_err(|e| invalid(format!("read_csv {first}: {e}")))?;
    if schema.fields().is_empty() {
        return Err(invalid(format!("read_csv {first}: the file is empty")));
    }
    let schema = schema_bytes(&Arc::new(schema))?;
    let reads = files
        .iter()
        .map(|p| {
            let a = FileArg { path: p.display().to_string(), schema: schema.clone(), csv: Some(options.clone()) };
            read(csv_read, &a, None)
        })
        .collect();
    Ok(node("ReadCSV", reads))
}

// ---- JSON lines ----

fn json_read(bytes: &[u8], target: usize) -> Result<Vec<RecordBatch>, Error> {
    let a: FileArg = arg(bytes)?;
    let schema = schema_of(&a.schema)?;
    let reader = arrow_json::ReaderBuilder::new(schema.clone())
        .with_batch_size(PARSE_BATCH_ROWS)
        .build(BufReader::with_capacity(FILE_BUFFER_BYTES, open("read_json", &a.path)?))
        .map_err(|e| invalid(format!("read_json {}: {e}", a.path)))?;
    coalesce("read_json", &a.path, &schema, reader, target)
}

pub(crate) fn json(paths: Vec<String>) -> Result<Rc<Node>, Error> {
    let files = expand("read_json", paths)?;
    let first = files[0].display().to_string();
    let mut f = BufReader::with_capacity(FILE_BUFFER_BYTES, open("read_json", &first)?);
    let (schema, _) = arrow_json::reader::infer_json_schema_from_seekable(&mut f, Some(INFER_ROWS))
        .map_err(|e| invalid(format!("read_json {first}: {e}")))?;
    f.rewind().map_err(|e| invalid(format!("read_json {first}: {e}")))?;
    let schema = schema_bytes(&Arc::new(schema))?;
    let reads = files
        .iter()
        .map(|p| {
            let a = FileArg { path: p.display().to_string(), schema: schema.clone(), csv: None };
            read(json_read, &a, None)
        })
        .collect();
    Ok(node("ReadJSON", reads))
}

// ---- Parquet ----

/// Which columns to read from Parquet files.
#[derive(Clone, Debug, Default)]
pub struct ParquetOptions {
    /// Read only these columns (all if `None`).
    pub columns: Option<Vec<String>>,
}

#[derive(Serialize, Deserialize)]
struct RowGroupArg {
    path: String,
    row_group: usize,
    /// Leaf column indices to read; all if `None`.
    leaves: Option<Vec<usize>>,
}

/// A Parquet file read by path: each read opens the file anew. (`File`'s
/// own `ChunkReader` clones the descriptor, which WASI does not offer.)
struct PathReader {
    path: PathBuf,
    len: u64,
}

impl parquet::file::reader::Length for PathReader {
    fn len(&self) -> u64 {
        self.len
    }
}

impl parquet::file::reader::ChunkReader for PathReader {
    type T = std::io::Take<BufReader<File>>;

    fn get_read(&self, start: u64) -> parquet::errors::Result<Self::T> {
        use std::io::{Read, SeekFrom};
        let mut f = File::open(&self.path)?;
        f.seek(SeekFrom::Start(start))?;
        // No bigger a buffer than what is left: Parquet opens a reader per
        // column chunk, often a few KiB.
        let left = self.len.saturating_sub(start);
        let capacity = usize::try_from(left).map_or(FILE_BUFFER_BYTES, |l| l.min(FILE_BUFFER_BYTES));
        Ok(BufReader::with_capacity(capacity, f).take(left))
    }

    fn get_bytes(&self, start: u64, length: usize) -> parquet::errors::Result<bytes::Bytes> {
        use std::io::Read;
        let mut buf = vec![0; length];
        let mut f = File::open(&self.path)?;
        f.seek(std::io::SeekFrom::Start(start))?;
        f.read_exact(&mut buf)?;
        Ok(buf.into())
    }
}

fn parquet_builder(path: &str) -> Result<ParquetRecordBatchReaderBuilder<PathReader>, Error> {
    let len = open("read_parquet", path)?.metadata().map_err(|e| invalid(format!("read_parquet {path}: {e}")))?.len();
    ParquetRecordBatchReaderBuilder::try_new(PathReader { path: PathBuf::from(path), len })
        .map_err(|e| invalid(format!("read_parquet {path}: not a readable Parquet file: {e}")))
}

fn parquet_read(bytes: &[u8], _target: usize) -> Result<Vec<RecordBatch>, Error> {
    let a: RowGroupArg = arg(bytes)?;
    let builder = parquet_builder(&a.path)?;
    let mask = match &a.leaves {
        Some(l) => ProjectionMask::leaves(builder.parquet_schema(), l.iter().copied()),
        None => ProjectionMask::all(),
    };
    let reader = builder
        .with_row_groups(vec![a.row_group])
        .with_projection(mask)
        .with_batch_size(PARSE_BATCH_ROWS)
        .build()
        .map_err(|e| invalid(format!("read_parquet {}: {e}", a.path)))?;
    let schema = reader.schema();
    let batches: Vec<RecordBatch> = reader
        .collect::<Result<_, _>>()
        .map_err(|e| invalid(format!("read_parquet {} row group {}: {e}", a.path, a.row_group)))?;
    Ok(vec![block::concat(&schema, &batches)?])
}

pub(crate) fn parquet(paths: Vec<String>, options: ParquetOptions) -> Result<Rc<Node>, Error> {
    let files = expand("read_parquet", paths)?;
    let mut reads = Vec::new();
    let mut first: Option<(String, SchemaRef)> = None;
    for p in &files {
        let path = p.display().to_string();
        let builder = parquet_builder(&path)?;
        let schema = builder.schema().clone();
        match &first {
            None => first = Some((path.clone(), schema.clone())),
            Some((f, s)) if !same_fields(s, &schema) => {
                return Err(invalid(format!(
                    "read_parquet: {path} has columns {} but {f} has {}",
                    describe(&schema),
                    describe(s)
                )));
            }
            Some(_) => {}
        }
        let leaves = match &options.columns {
            None => None,
            Some(cols) => Some(
                cols.iter()
                    .map(|c| {
                        builder
                            .parquet_schema()
                            .columns()
                            .iter()
                            .position(|d| d.path().parts().first().is_some_and(|n| n == c))
                            .ok_or_else(|| {
                                invalid(format!("read_parquet {path}: no column {c:?} in {}", describe(&schema)))
                            })
                    })
                    .collect::<Result<Vec<_>, _>>()?,
            ),
        };
        for (i, rg) in builder.metadata().row_groups().iter().enumerate() {
            let a = RowGroupArg { path: path.clone(), row_group: i, leaves: leaves.clone() };
            reads.push(read(parquet_read, &a, Some(rg.num_rows() as u64)));
        }
    }
    Ok(node("ReadParquet", reads))
}

fn same_fields(a: &Schema, b: &Schema) -> bool {
    a.fields().len() == b.fields().len()
        && a.fields().iter().zip(b.fields()).all(|(x, y)| x.name() == y.name() && x.data_type() == y.data_type())
}

fn describe(s: &Schema) -> String {
    let cols: Vec<String> = s.fields().iter().map(|f| format!("{}: {}", f.name(), f.data_type())).collect();
    format!("[{}]", cols.join(", "))
}

// ---- text and binary ----

fn text_read(bytes: &[u8], target: usize) -> Result<Vec<RecordBatch>, Error> {
    let a: FileArg = arg(bytes)?;
    let lines: Vec<String> = BufReader::with_capacity(FILE_BUFFER_BYTES, open("read_text", &a.path)?)
        .lines()
        .collect::<Result<_, _>>()
        .map_err(|e| invalid(format!("read_text {}: {e}", a.path)))?;
    let text: ArrayRef = Arc::new(StringArray::from_iter_values(lines));
    let batch = RecordBatch::try_from_iter([("text", text)]).map_err(|e| invalid(e.to_string()))?;
    Ok(block::split_by_size(batch, target))
}

pub(crate) fn text(paths: Vec<String>) -> Result<Rc<Node>, Error> {
    let files = expand("read_text", paths)?;
    let reads = files
        .iter()
        .map(|p| {
            let a = FileArg { path: p.display().to_string(), schema: Vec::new(), csv: None };
            read(text_read, &a, None)
        })
        .collect();
    Ok(node("ReadText", reads))
}

fn binary_read(bytes: &[u8], _target: usize) -> Result<Vec<RecordBatch>, Error> {
    let path: String = arg(bytes)?;
    let data = std::fs::read(&path).map_err(|e| invalid(format!("read_binary_files {path}: {e}")))?;
    let paths: ArrayRef = Arc::new(StringArray::from_iter_values([path]));
    let data: ArrayRef = Arc::new(BinaryArray::from_iter_values([data]));
    Ok(vec![RecordBatch::try_from_iter([("path", paths), ("bytes", data)]).map_err(|e| invalid(e.to_string()))?])
}

pub(crate) fn binary(paths: Vec<String>) -> Result<Rc<Node>, Error> {
    let files = expand("read_binary_files", paths)?;
    let reads = files.iter().map(|p| read(binary_read, &p.display().to_string(), Some(1))).collect();
    Ok(node("ReadBinary", reads))
}

#[cfg(test)]
mod tests {
    use super::Paths;

    #[test]
    fn paths_come_in_every_list_shape() {
        let want = vec!["/data/a.csv".to_string(), "/data/b.csv".to_string()];
        let owned = want.clone();
        assert_eq!(["/data/a.csv", "/data/b.csv"].paths(), want);
        assert_eq!((&["/data/a.csv", "/data/b.csv"]).paths(), want);
        assert_eq!((&["/data/a.csv", "/data/b.csv"][..]).paths(), want);
        assert_eq!(vec!["/data/a.csv", "/data/b.csv"].paths(), want);
        assert_eq!((&owned).paths(), want);
        assert_eq!((&owned[..]).paths(), want);
        assert_eq!(owned.clone().paths(), want);
        assert_eq!([owned[0].clone(), owned[1].clone()].paths(), want);
        assert_eq!("/data/a.csv".paths(), want[..1]);
        assert_eq!(owned[0].clone().paths(), want[..1]);
    }
}
