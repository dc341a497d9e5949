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

/// A boxed callback is one (so callbacks collected as trait objects can be
/// handed on).
impl<C: Callback + ?Sized> Callback for Box<C> {
    fn on_trial_start(&mut self, trial: &Trial) {
        (**self).on_trial_start(trial)
    }
    fn on_trial_result(&mut self, trial: &Trial, result: &Metrics) {
        (**self).on_trial_result(trial, result)
    }
    fn on_trial_complete(&mut self, trial: &Trial) {
        (**self).on_trial_complete(trial)
    }
    fn on_trial_error(&mut self, trial: &Trial) {
        (**self).on_trial_error(trial)
    }
    fn on_checkpoint(&mut self, trial: &Trial) {
        (**self).on_checkpoint(trial)
    }
    fn on_experiment_end(&mut self, trials: &[Trial]) {
        (**self).on_experiment_end(trials)
    }
}

/// `s` as a JSON string literal.
pub fn json_string(s: &str) -> String {
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

pub(crate) fn json_number(x: f64) -> String {
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

/// Writes each trial as a run of MLflow's local file store
/// (`<dir>/mlruns/0/<run id>/` with `meta.yaml`, `metrics/<key>` lines of
/// `<timestamp ms> <value> <step>`, `params/<key>`, `tags/mlflow.runName`),
/// so `mlflow ui --backend-store-uri <dir>/mlruns` lists them (Ray's
/// `MLflowLoggerCallback` with a local tracking URI). Paths inside
/// `meta.yaml` are the job's paths (`/results/...`), which is what a job
/// granted a directory sees; metrics and params do not depend on them.
pub struct MlflowLogger {
    dir: PathBuf,
    experiment: String,
    runs: HashMap<usize, PathBuf>,
    failed: bool,
}

/// MLflow's experiment id for the one experiment this logger writes.
const MLFLOW_EXPERIMENT_ID: &str = "0";

impl MlflowLogger {
    /// Logs under `<dir>/mlruns`, in an experiment named `experiment`.
    pub fn new(dir: &Path, experiment: &str) -> MlflowLogger {
        MlflowLogger {
            dir: dir.join("mlruns"),
            experiment: experiment.to_string(),
            runs: HashMap::new(),
            failed: false,
        }
    }

    fn millis() -> u128 {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis())
    }

    fn yaml_string(s: &str) -> String {
        format!("'{}'", s.replace('\'', "''"))
    }

    fn run_dir(&mut self, trial: &Trial) -> std::io::Result<PathBuf> {
        if let Some(d) = self.runs.get(&trial.id) {
            return Ok(d.clone());
        }
        let now = Self::millis();
        let experiment = self.dir.join(MLFLOW_EXPERIMENT_ID);
        std::fs::create_dir_all(&experiment)?;
        let meta = experiment.join("meta.yaml");
        if !meta.exists() {
            std::fs::write(
                &meta,
                format!(
                    "artifact_location: file://{}\ncreation_time: {now}\nexperiment_id: '{MLFLOW_EXPERIMENT_ID}'\n\
                     last_update_time: {now}\nlifecycle_stage: active\nname: {}\n",
                    experiment.display(),
                    Self::yaml_string(&self.experiment)
                ),
            )?;
        }
        // A run id is 32 hex digits: the time and the trial number.
        let run_id = format!("{:020x}{:012x}", now, trial.id);
        let run = experiment.join(&run_id);
        for sub in ["metrics", "params", "tags", "artifacts"] {
            std::fs::create_dir_all(run.join(sub))?;
        }
        std::fs::write(run.join("tags").join("mlflow.runName"), &trial.name)?;
        for (k, v) in &trial.config.0 {
            if let Some(path) = key_path(&run.join("params"), k)? {
                std::fs::write(path, v.to_string())?;
            }
        }
        self.write_meta(&run, &run_id, &trial.name, now, None, 1)?;
        self.runs.insert(trial.id, run.clone());
        Ok(run)
    }

    /// `status`: MLflow's RUNNING (1), FINISHED (3) or FAILED (4).
    fn write_meta(
        &self,
        run: &Path,
        run_id: &str,
        name: &str,
        start: u128,
        end: Option<u128>,
        status: u8,
    ) -> std::io::Result<()> {
        let end = end.map_or("null".to_string(), |e| e.to_string());
        std::fs::write(
            run.join("meta.yaml"),
            format!(
                "artifact_uri: file://{}\nend_time: {end}\nentry_point_name: ''\nexperiment_id: '{MLFLOW_EXPERIMENT_ID}'\n\
                 lifecycle_stage: active\nrun_id: {run_id}\nrun_name: {}\nrun_uuid: {run_id}\nsource_name: ''\n\
                 source_type: 4\nsource_version: ''\nstart_time: {start}\nstatus: {status}\ntags: []\nuser_id: wray\n",
                run.join("artifacts").display(),
                Self::yaml_string(name)
            ),
        )
    }

    fn write(&mut self, trial: &Trial, result: &Metrics) -> std::io::Result<()> {
        let run = self.run_dir(trial)?;
        let now = Self::millis();
        let step = result.get("training_iteration").copied().unwrap_or(0.0) as i64;
        for (k, v) in result {
            if !v.is_finite() {
                continue;
            }
            let Some(path) = key_path(&run.join("metrics"), k)? else { continue };
            let mut f = OpenOptions::new().create(true).append(true).open(path)?;
            writeln!(f, "{now} {v} {step}")?;
        }
        Ok(())
    }

    fn finish(&mut self, trial: &Trial, status: u8) {
        let Some(run) = self.runs.remove(&trial.id) else { return };
        let run_id = run.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let start = u128::from_str_radix(&run_id[..20.min(run_id.len())], 16).unwrap_or(0);
        if let Err(e) = self.write_meta(&run, &run_id, &trial.name, start, Some(Self::millis()), status) {
            eprintln!("wray::tune: cannot finish the MLflow run {}: {e}", run.display());
        }
    }
}

/// Where MLflow keeps key `key` under `dir`: a nested key (`model/lr`) is a
/// nested file, as MLflow stores it. `None` for a key that would leave
/// `dir` (an empty, `.` or `..` part).
fn key_path(dir: &Path, key: &str) -> std::io::Result<Option<PathBuf>> {
    if key.split('/').any(|p| p.is_empty() || p == "." || p == "..") {
        return Ok(None);
    }
    let path = dir.join(key);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    Ok(Some(path))
}

impl Callback for MlflowLogger {
    fn on_trial_result(&mut self, trial: &Trial, result: &Metrics) {
        if self.failed {
            return;
        }
        if let Err(e) = self.write(trial, result) {
            eprintln!("wray::tune: cannot write MLflow runs under {}: {e}; they are off", self.dir.display());
            self.failed = true;
        }
    }

    fn on_trial_complete(&mut self, trial: &Trial) {
        self.finish(trial, 3);
    }

    fn on_trial_error(&mut self, trial: &Trial) {
        if trial.status == super::Status::Error {
            self.finish(trial, 4);
        }
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
