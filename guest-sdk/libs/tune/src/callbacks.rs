//! Callbacks, and the loggers built on them.

use super::Metrics;
use super::results::Trial;
use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

/// Hooks into an experiment's life (Ray's `tune.Callback`).
pub trait Callback {
    /// A trial started (or restarted).
    fn on_trial_start(&mut self, _trial: &Trial) {}
    /// A trial reported a result.
    fn on_trial_result(&mut self, _trial: &Trial, _result: &Metrics) {}
    /// A trial finished or was stopped.
    fn on_trial_complete(&mut self, _trial: &Trial) {}
    /// A trial failed (each failure, retried or not).
    fn on_trial_error(&mut self, _trial: &Trial) {}
    /// A trial saved a checkpoint.
    fn on_checkpoint(&mut self, _trial: &Trial) {}
    /// The experiment ended.
    fn on_experiment_end(&mut self, _trials: &[Trial]) {}
}

fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn json_number(x: f64) -> String {
    // JSON has no NaN or infinities: write them as null, as Ray does.
    if x.is_finite() { format!("{x}") } else { "null".into() }
}

/// One JSON object per line: a result with its trial's config.
pub(crate) fn result_json(trial: &Trial, result: &Metrics) -> String {
    let mut fields: Vec<String> =
        result.iter().map(|(k, v)| format!("{}: {}", json_string(k), json_number(*v))).collect();
    let config: Vec<String> = trial
        .config
        .0
        .iter()
        .map(|(k, v)| {
            let v = match v {
                super::Value::Float(x) => json_number(*x),
                super::Value::Int(i) => i.to_string(),
                super::Value::Bool(b) => b.to_string(),
                super::Value::Str(s) => json_string(s),
            };
            format!("{}: {v}", json_string(k))
        })
        .collect();
    fields.push(format!("\"config\": {{{}}}", config.join(", ")));
    format!("{{{}}}", fields.join(", "))
}

/// Writes `<dir>/<trial>/result.json` (JSON lines, one per result) and
/// `<dir>/<trial>/progress.csv`, as Ray's default loggers do.
pub struct FileLogger {
    dir: PathBuf,
    files: HashMap<usize, (File, File, Vec<String>)>,
    failed: bool,
}

impl FileLogger {
    /// Logs under `dir` (the experiment's directory).
    pub fn new(dir: &Path) -> FileLogger {
        FileLogger { dir: dir.to_path_buf(), files: HashMap::new(), failed: false }
    }

    fn write(&mut self, trial: &Trial, result: &Metrics) -> std::io::Result<()> {
        if !self.files.contains_key(&trial.id) {
            let dir = self.dir.join(&trial.name);
            std::fs::create_dir_all(&dir)?;
            let open = |name: &str| OpenOptions::new().create(true).append(true).open(dir.join(name));
            let columns: Vec<String> = result.keys().cloned().collect();
            let mut csv = open("progress.csv")?;
            if csv.metadata()?.len() == 0 {
                writeln!(
                    csv,
                    "{}",
                    columns.iter().map(|c| super::results::csv_field(c)).collect::<Vec<_>>().join(",")
                )?;
            }
            self.files.insert(trial.id, (open("result.json")?, csv, columns));
        }
        let (json, csv, columns) = self.files.get_mut(&trial.id).expect("opened above");
        writeln!(json, "{}", result_json(trial, result))?;
        let row: Vec<String> =
            columns.iter().map(|c| result.get(c).map(|v| v.to_string()).unwrap_or_default()).collect();
        writeln!(csv, "{}", row.join(","))
    }
}

impl Callback for FileLogger {
    fn on_trial_result(&mut self, trial: &Trial, result: &Metrics) {
        if self.failed {
            return;
        }
        if let Err(e) = self.write(trial, result) {
            // Logging must not fail the experiment: say so once and stop.
            eprintln!("wray::tune: cannot write trial logs under {}: {e}; logging is off", self.dir.display());
            self.failed = true;
        }
    }

    fn on_trial_complete(&mut self, trial: &Trial) {
        self.files.remove(&trial.id);
    }
}

/// CRC-32C (Castagnoli), bitwise: records are small and few.
fn crc32c(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 { (crc >> 1) ^ 0x82f6_3b78 } else { crc >> 1 };
        }
    }
    !crc
}

/// TFRecord's masked CRC.
fn masked_crc(data: &[u8]) -> u32 {
    let c = crc32c(data);
    c.rotate_right(15).wrapping_add(0xa282_ead8)
}

fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// A length-delimited protobuf field.
fn field_bytes(out: &mut Vec<u8>, number: u64, bytes: &[u8]) {
    varint(out, (number << 3) | 2);
    varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

/// A `tensorflow.Event`: wall time, step, and either the file version or a
/// summary of scalar values.
fn event(wall_time: f64, step: i64, file_version: Option<&str>, scalars: &[(String, f32)]) -> Vec<u8> {
    let mut e = Vec::new();
    e.push(0x09);
    e.extend_from_slice(&wall_time.to_le_bytes());
    e.push(0x10);
    varint(&mut e, step as u64);
    if let Some(v) = file_version {
        field_bytes(&mut e, 3, v.as_bytes());
    }
    if !scalars.is_empty() {
        let mut summary = Vec::new();
        for (tag, value) in scalars {
            let mut v = Vec::new();
            field_bytes(&mut v, 1, tag.as_bytes());
            v.push(0x15);
            v.extend_from_slice(&value.to_le_bytes());
            field_bytes(&mut summary, 1, &v);
        }
        field_bytes(&mut e, 5, &summary);
    }
    e
}

/// One TFRecord: length, its CRC, the data, its CRC.
fn record(data: &[u8]) -> Vec<u8> {
    let len = (data.len() as u64).to_le_bytes();
    let mut out = Vec::with_capacity(data.len() + 16);
    out.extend_from_slice(&len);
    out.extend_from_slice(&masked_crc(&len).to_le_bytes());
    out.extend_from_slice(data);
    out.extend_from_slice(&masked_crc(data).to_le_bytes());
    out
}

/// Writes TensorBoard event files (`events.out.tfevents.*` in each trial's
/// directory, scalars tagged `ray/tune/<metric>` as Ray's logger does), so
/// `tensorboard --logdir <storage>/<experiment>` shows every trial.
pub struct TensorBoardLogger {
    dir: PathBuf,
    files: HashMap<usize, File>,
    failed: bool,
}

impl TensorBoardLogger {
    /// Logs under `dir` (the experiment's directory).
    pub fn new(dir: &Path) -> TensorBoardLogger {
        TensorBoardLogger { dir: dir.to_path_buf(), files: HashMap::new(), failed: false }
    }

    fn now() -> f64 {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64())
    }

    fn write(&mut self, trial: &Trial, result: &Metrics) -> std::io::Result<()> {
        if !self.files.contains_key(&trial.id) {
            let dir = self.dir.join(&trial.name);
            std::fs::create_dir_all(&dir)?;
            let name = format!("events.out.tfevents.{}.wray", Self::now() as u64);
            let mut f = OpenOptions::new().create(true).append(true).open(dir.join(name))?;
            f.write_all(&record(&event(Self::now(), 0, Some("brain.Event:2"), &[])))?;
            self.files.insert(trial.id, f);
        }
        let step = result.get("training_iteration").copied().unwrap_or(0.0) as i64;
        let scalars: Vec<(String, f32)> = result
            .iter()
            .filter(|(k, _)| k.as_str() != "training_iteration")
            .map(|(k, v)| (format!("ray/tune/{k}"), *v as f32))
            .collect();
        let f = self.files.get_mut(&trial.id).expect("opened above");
        f.write_all(&record(&event(Self::now(), step, None, &scalars)))
    }
}

impl Callback for TensorBoardLogger {
    fn on_trial_result(&mut self, trial: &Trial, result: &Metrics) {
        if self.failed {
            return;
        }
        if let Err(e) = self.write(trial, result) {
            eprintln!("wray::tune: cannot write TensorBoard events under {}: {e}; they are off", self.dir.display());
            self.failed = true;
        }
    }

    fn on_trial_complete(&mut self, trial: &Trial) {
        self.files.remove(&trial.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32c_and_records_follow_tfrecord() {
        // The CRC-32C check value.
        assert_eq!(crc32c(b"123456789"), 0xe306_9283);
        let r = record(b"abc");
        assert_eq!(&r[..8], &3u64.to_le_bytes());
        assert_eq!(&r[12..15], b"abc");
        assert_eq!(r.len(), 8 + 4 + 3 + 4);
        // Event{wall_time: 1.0, step: 2, summary {value {tag: "t", simple_value: 0.5}}}
        let e = event(1.0, 2, None, &[("t".into(), 0.5)]);
        let mut want = vec![0x09];
        want.extend_from_slice(&1.0f64.to_le_bytes());
        want.extend_from_slice(&[0x10, 2, 0x2a, 10, 0x0a, 8, 0x0a, 1, b't', 0x15]);
        want.extend_from_slice(&0.5f32.to_le_bytes());
        assert_eq!(e, want);
    }
}
