//! Checkpoints: named files (a model's weights, a fitted preprocessor, an
//! optimizer's state) and metadata, as a value in memory, as bytes, or as a
//! directory — Ray's `Checkpoint`.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use wray_guest_core::Error;
use wray_tune::__private::json_string;

/// Files one checkpoint directory may hold.
pub const MAX_FILES: usize = 4096;

/// The file a checkpoint directory keeps its metadata in.
pub const METADATA_FILE: &str = ".metadata.json";

/// Bytes that open a checkpoint's `to_bytes` form (and a version).
const MAGIC: &[u8; 8] = b"WRAYCKP1";

/// A checkpoint: files by relative path, and string metadata.
///
/// ```no_run
/// # fn main() -> Result<(), wray::Error> {
/// use wray::train::Checkpoint;
/// let mut c = Checkpoint::new();
/// c.insert("weights.bin", vec![1, 2, 3]);
/// c.set_metadata("epoch", "7");
/// let back = Checkpoint::from_bytes(&c.to_bytes())?;
/// assert_eq!(back.get("weights.bin"), Some(&[1u8, 2, 3][..]));
/// # Ok(()) }
/// ```
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Checkpoint {
    files: BTreeMap<String, Vec<u8>>,
    metadata: BTreeMap<String, String>,
}

fn invalid(what: String) -> Error {
    Error::InvalidArgument(what)
}

impl Checkpoint {
    /// An empty checkpoint.
    pub fn new() -> Checkpoint {
        Checkpoint::default()
    }

    /// Adds (or replaces) a file. `name` is a relative path with `/`
    /// separators.
    pub fn insert(&mut self, name: &str, bytes: Vec<u8>) -> &mut Checkpoint {
        self.files.insert(name.to_string(), bytes);
        self
    }

    /// A file's bytes.
    pub fn get(&self, name: &str) -> Option<&[u8]> {
        self.files.get(name).map(Vec::as_slice)
    }

    /// The files' names.
    pub fn files(&self) -> impl Iterator<Item = &str> {
        self.files.keys().map(String::as_str)
    }

    /// Stores `value` as the file `name` (JSON-free: the codec's bytes).
    pub fn insert_value<T: Serialize + 'static>(&mut self, name: &str, value: &T) -> Result<&mut Checkpoint, Error> {
        let bytes = wray_codec::encode(value).map_err(|e| invalid(format!("checkpoint file {name}: {e}")))?;
        Ok(self.insert(name, bytes))
    }

    /// Reads the file `name` as a `T` stored with [`insert_value`](Checkpoint::insert_value).
    pub fn value<T: serde::de::DeserializeOwned + 'static>(&self, name: &str) -> Result<T, Error> {
        let bytes = self.get(name).ok_or_else(|| invalid(format!("the checkpoint has no file {name}")))?;
        wray_codec::decode(bytes).map_err(|e| invalid(format!("checkpoint file {name}: {e}")))
    }

    /// Stores the values of `params` (a model's `parameters()`, in order)
    /// as the file `name`: each tensor's shape and elements.
    pub fn insert_params(&mut self, name: &str, params: &[wray_nn::Var]) -> Result<&mut Checkpoint, Error> {
        let tensors = params
            .iter()
            .map(|p| Ok((p.shape(), p.value().to_vec()?)))
            .collect::<Result<Vec<(Vec<usize>, Vec<f32>)>, Error>>()?;
        self.insert_value(name, &tensors)
    }

    /// The tensors [`insert_params`](Checkpoint::insert_params) stored, in
    /// the parameters' order: build a model from them (e.g. `Linear {
    /// weight: Var::parameter(w), bias: Var::parameter(b) }`) to predict with.
    pub fn params(&self, name: &str) -> Result<Vec<wray_guest_core::Tensor>, Error> {
        let tensors: Vec<(Vec<usize>, Vec<f32>)> = self.value(name)?;
        tensors.iter().map(|(shape, data)| wray_guest_core::Tensor::from_vec(shape, data)).collect()
    }

    /// Sets a metadata entry.
    pub fn set_metadata(&mut self, key: &str, value: &str) -> &mut Checkpoint {
        self.metadata.insert(key.to_string(), value.to_string());
        self
    }

    /// The metadata.
    pub fn metadata(&self) -> &BTreeMap<String, String> {
        &self.metadata
    }

    /// The checkpoint as one byte string (Ray's `to_bytes`).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = MAGIC.to_vec();
        // A BTreeMap of strings and bytes always encodes.
        out.extend(wray_codec::encode(self).unwrap_or_default());
        out
    }

    /// A checkpoint from [`to_bytes`](Checkpoint::to_bytes)'s output.
    pub fn from_bytes(bytes: &[u8]) -> Result<Checkpoint, Error> {
        let body = bytes
            .strip_prefix(MAGIC.as_slice())
            .ok_or_else(|| invalid("these bytes are not a wray checkpoint (no WRAYCKP1 header)".into()))?;
        wray_codec::decode(body).map_err(|e| invalid(format!("a damaged checkpoint: {e}")))
    }

    /// Writes the checkpoint into `dir` (created if needed; the job must be
    /// granted it with `--dir`): one file per entry and [`METADATA_FILE`].
    /// Files are written under temporary names and renamed, so a failed
    /// write leaves no file that looks complete.
    pub fn to_directory(&self, dir: &str) -> Result<(), Error> {
        let root = Path::new(dir);
        let io =
            |what: &str, path: &Path, e: std::io::Error| invalid(format!("checkpoint: {what} {}: {e}", path.display()));
        std::fs::create_dir_all(root).map_err(|e| io("creating", root, e))?;
        let mut all: Vec<(PathBuf, &[u8])> = Vec::new();
        for (name, bytes) in &self.files {
            all.push((root.join(safe_name(name)?), bytes));
        }
        let metadata = metadata_json(&self.metadata);
        all.push((root.join(METADATA_FILE), metadata.as_bytes()));
        for (path, bytes) in all {
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent).map_err(|e| io("creating", parent, e))?;
            }
            let tmp = path.with_extension("wray-partial");
            std::fs::write(&tmp, bytes).map_err(|e| io("writing", &tmp, e))?;
            std::fs::rename(&tmp, &path).map_err(|e| io("renaming", &tmp, e))?;
        }
        Ok(())
    }

    /// Reads a checkpoint directory (Ray's `from_directory`): every file
    /// under it, and the metadata if [`METADATA_FILE`] is there. A path that
    /// is not a directory is an error naming it.
    pub fn from_directory(dir: &str) -> Result<Checkpoint, Error> {
        let root = Path::new(dir);
        if !root.is_dir() {
            return Err(invalid(format!("checkpoint: {dir} is not a directory (or the job was not granted it)")));
        }
        let mut checkpoint = Checkpoint::new();
        let mut stack = vec![root.to_path_buf()];
        while let Some(d) = stack.pop() {
            let entries =
                std::fs::read_dir(&d).map_err(|e| invalid(format!("checkpoint: reading {}: {e}", d.display())))?;
            for entry in entries {
                let path = entry.map_err(|e| invalid(format!("checkpoint: reading {}: {e}", d.display())))?.path();
                if path.is_dir() {
                    stack.push(path);
                    continue;
                }
                let rel = path.strip_prefix(root).unwrap_or(&path).to_string_lossy().replace('\\', "/");
                if rel.ends_with(".wray-partial") {
                    continue;
                }
                let bytes = std::fs::read(&path)
                    .map_err(|e| invalid(format!("checkpoint: reading {}: {e}", path.display())))?;
                if rel == METADATA_FILE {
                    checkpoint.metadata = parse_metadata_json(&bytes)
                        .ok_or_else(|| invalid(format!("checkpoint: {} is not its metadata", path.display())))?;
                } else {
                    checkpoint.files.insert(rel, bytes);
                }
                if checkpoint.files.len() > MAX_FILES {
                    return Err(invalid(format!("checkpoint: {dir} holds more than {MAX_FILES} files")));
                }
            }
        }
        Ok(checkpoint)
    }
}

/// A relative path that stays inside the checkpoint's directory.
fn safe_name(name: &str) -> Result<&str, Error> {
    let ok = !name.is_empty()
        && !name.starts_with('/')
        && name != METADATA_FILE
        && name.split('/').all(|p| !p.is_empty() && p != "." && p != "..");
    if ok { Ok(name) } else { Err(invalid(format!("checkpoint: {name:?} is not a file name inside the checkpoint"))) }
}

/// Metadata as a flat JSON object of strings (readable by anyone).
fn metadata_json(metadata: &BTreeMap<String, String>) -> String {
    let body: Vec<String> = metadata.iter().map(|(k, v)| format!("{}: {}", json_string(k), json_string(v))).collect();
    format!("{{{}}}\n", body.join(", "))
}

/// Parses what [`metadata_json`] writes (a flat object of strings).
fn parse_metadata_json(bytes: &[u8]) -> Option<BTreeMap<String, String>> {
    let text = std::str::from_utf8(bytes).ok()?.trim();
    let mut chars = text.strip_prefix('{')?.strip_suffix('}')?.chars().peekable();
    let mut out = BTreeMap::new();
    let string = |chars: &mut std::iter::Peekable<std::str::Chars>| -> Option<String> {
        while chars.peek()?.is_whitespace() {
            chars.next();
        }
        if chars.next()? != '"' {
            return None;
        }
        let mut s = String::new();
        loop {
            match chars.next()? {
                '"' => return Some(s),
                '\\' => match chars.next()? {
                    'n' => s.push('\n'),
                    'r' => s.push('\r'),
                    't' => s.push('\t'),
                    'u' => {
                        let hex: String = (0..4).filter_map(|_| chars.next()).collect();
                        s.push(char::from_u32(u32::from_str_radix(&hex, 16).ok()?)?);
                    }
                    c => s.push(c),
                },
                c => s.push(c),
            }
        }
    };
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace() || *c == ',') {
            chars.next();
        }
        if chars.peek().is_none() {
            return Some(out);
        }
        let key = string(&mut chars)?;
        while chars.peek()?.is_whitespace() {
            chars.next();
        }
        if chars.next()? != ':' {
            return None;
        }
        let value = string(&mut chars)?;
        out.insert(key, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_survives_its_json_form() {
        let mut m = BTreeMap::new();
        m.insert("epoch".to_string(), "7".to_string());
        m.insert("odd \"key\"\n".to_string(), "tab\there \u{1}".to_string());
        assert_eq!(parse_metadata_json(metadata_json(&m).as_bytes()), Some(m));
        assert_eq!(parse_metadata_json(b"{}"), Some(BTreeMap::new()));
        assert_eq!(parse_metadata_json(b"not json"), None);
    }

    #[test]
    fn bytes_round_trip_and_foreign_bytes_are_refused() {
        let mut c = Checkpoint::new();
        c.insert("a/b.bin", vec![0, 1, 2]).set_metadata("k", "v");
        assert_eq!(Checkpoint::from_bytes(&c.to_bytes()).unwrap(), c);
        assert!(Checkpoint::from_bytes(b"PK\x03\x04zip").unwrap_err().to_string().contains("not a wray checkpoint"));
    }

    #[test]
    fn names_stay_inside_the_directory() {
        for bad in ["", "/etc/passwd", "../x", "a/../../x", "a//b", METADATA_FILE] {
            assert!(safe_name(bad).is_err(), "{bad}");
        }
        assert!(safe_name("model/weights.bin").is_ok());
    }
}
