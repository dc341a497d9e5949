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
