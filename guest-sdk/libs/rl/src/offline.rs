//! Offline data (RLlib's `output`/`input`): experiences written as JSON
//! lines while an algorithm samples, read back to train DQN or behaviour
//! cloning without an environment.
//!
//! One line per step:
//!
//! ```json
//! {"obs":[0.01,-0.2,0.03,0.1],"action":[1],"reward":1.0,"next_obs":[...],"terminated":false,"truncated":false}
//! ```
//!
//! `action` is a list: a discrete action's index as its one element, or a
//! continuous action's values. `next_obs` is the observation the step led
//! to (for a truncated episode, its last; for a terminated one, unused).

use crate::replay::Transition;
use crate::runner::Fragment;
use serde::{Deserialize, Serialize};
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use wray_guest_core::Error;

/// Longest line read back: a file from elsewhere must not make the job
/// allocate without bound.
pub const MAX_LINE_BYTES: usize = 1 << 20;
/// Most steps read from offline data.
pub const MAX_OFFLINE_STEPS: usize = 1 << 22;

/// One step of offline data.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OfflineStep {
    /// The observation acted on.
    pub obs: Vec<f32>,
    /// The action (a discrete action as its one-element index).
    pub action: Vec<f32>,
    /// The reward.
    pub reward: f32,
    /// The observation after the step.
    pub next_obs: Vec<f32>,
    /// The episode ended in a terminal state.
    pub terminated: bool,
    /// The episode was cut short.
    pub truncated: bool,
}

/// A fragment's steps, segment by segment.
pub fn fragment_steps(f: &Fragment) -> Vec<OfflineStep> {
    let (d, k) = (f.obs_dim as usize, f.act_dim as usize);
    let final_of = f.final_of();
    let mut out = Vec::with_capacity(f.rows());
    for (segment, (start, steps)) in f.segments().into_iter().enumerate() {
        for t in 0..steps {
            let row = start + t;
            let obs = f.obs[row * d..(row + 1) * d].to_vec();
            let next_obs = if f.terminated[row] {
                obs.clone()
            } else if let Some(last) = final_of.get(&(row as u32)) {
                (*last).clone()
            } else if t + 1 == steps {
                f.next_obs[segment * d..(segment + 1) * d].to_vec()
            } else {
                f.obs[(row + 1) * d..(row + 2) * d].to_vec()
            };
            out.push(OfflineStep {
                obs,
                action: f.actions[row * k..(row + 1) * k].to_vec(),
                reward: f.rewards[row],
                next_obs,
                terminated: f.terminated[row],
                truncated: f.truncated[row],
            });
        }
    }
    out
}

/// Appends `fragments`' steps to `file` (created if missing).
pub fn write_steps(file: &Path, fragments: &[Fragment]) -> Result<(), Error> {
    let bad = |e: std::io::Error| Error::InvalidArgument(format!("offline output {}: {e}", file.display()));
    if let Some(dir) = file.parent() {
        std::fs::create_dir_all(dir).map_err(bad)?;
    }
    let out = std::fs::OpenOptions::new().create(true).append(true).open(file).map_err(bad)?;
    let mut out = std::io::BufWriter::new(out);
    for f in fragments {
        for step in fragment_steps(f) {
            let line = serde_json::to_string(&step).map_err(|e| Error::InvalidArgument(e.to_string()))?;
            writeln!(out, "{line}").map_err(bad)?;
        }
    }
    out.flush().map_err(bad)
}

/// The `.jsonl` files a path names: the file, or a directory's, in name
/// order.
fn files(path: &Path) -> Result<Vec<PathBuf>, Error> {
    let bad = |e: std::io::Error| Error::InvalidArgument(format!("offline input {}: {e}", path.display()));
    if !path.is_dir() {
        std::fs::metadata(path).map_err(bad)?;
        return Ok(vec![path.to_path_buf()]);
    }
    let mut found: Vec<PathBuf> = std::fs::read_dir(path)
        .map_err(bad)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
        .collect();
    found.sort();
    if found.is_empty() {
        return Err(Error::InvalidArgument(format!("offline input {}: no .jsonl files", path.display())));
    }
    Ok(found)
}

/// Every step under `path` (a `.jsonl` file or a directory of them),
/// checked against the observation size `obs_dim` and action size
/// `act_dim`; a malformed line is an error naming its file and line.
pub fn read_steps(path: &Path, obs_dim: usize, act_dim: usize) -> Result<Vec<OfflineStep>, Error> {
    let mut steps = Vec::new();
    for file in files(path)? {
        let bad = |line: usize, m: String| Error::InvalidArgument(format!("{}:{line}: {m}", file.display()));
        let reader = std::io::BufReader::new(std::fs::File::open(&file).map_err(|e| bad(0, e.to_string()))?);
        for (i, line) in reader.split(b'\n').enumerate() {
            let line = line.map_err(|e| bad(i + 1, e.to_string()))?;
            if line.len() > MAX_LINE_BYTES {
                return Err(bad(i + 1, format!("a line of more than {MAX_LINE_BYTES} bytes")));
            }
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let step: OfflineStep = serde_json::from_slice(&line).map_err(|e| bad(i + 1, e.to_string()))?;
            if step.obs.len() != obs_dim || step.next_obs.len() != obs_dim || step.action.len() != act_dim {
                return Err(bad(
                    i + 1,
                    format!(
                        "observations of {} and {} values and an action of {}, the environment has {obs_dim} and {act_dim}",
                        step.obs.len(),
                        step.next_obs.len(),
                        step.action.len()
                    ),
                ));
            }
            if steps.len() == MAX_OFFLINE_STEPS {
                return Err(bad(i + 1, format!("more than {MAX_OFFLINE_STEPS} steps")));
            }
            steps.push(step);
        }
    }
    Ok(steps)
}

/// Offline steps as one-step DQN transitions.
pub fn transitions(steps: &[OfflineStep], gamma: f32) -> Vec<Transition> {
    steps
        .iter()
        .map(|s| Transition {
            obs: s.obs.clone(),
            action: s.action.first().copied().unwrap_or(0.0) as u32,
            reward: s.reward,
            next_obs: s.next_obs.clone(),
            discount: if s.terminated { 0.0 } else { gamma },
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_written_read_back_and_bad_lines_named() {
        let f = Fragment {
            obs_dim: 1,
            act_dim: 1,
            num_envs: 1,
            steps: 3,
            obs: vec![0.0, 1.0, 2.0],
            actions: vec![1.0, 0.0, 1.0],
            logp: vec![0.0; 3],
            rewards: vec![1.0, 1.0, 1.0],
            terminated: vec![false, true, false],
            truncated: vec![false; 3],
            next_obs: vec![3.0],
            ..Fragment::default()
        };
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("a.jsonl");
        write_steps(&file, std::slice::from_ref(&f)).unwrap();
        write_steps(&file, &[f]).unwrap();
        let steps = read_steps(dir.path(), 1, 1).unwrap();
        assert_eq!(steps.len(), 6);
        assert_eq!((steps[0].next_obs[0], steps[1].terminated, steps[2].next_obs[0]), (1.0, true, 3.0));
        let t = transitions(&steps, 0.5);
        assert_eq!((t[0].discount, t[1].discount, t[2].action), (0.5, 0.0, 1));
        let e = read_steps(dir.path(), 4, 1).unwrap_err().to_string();
        assert!(e.contains("a.jsonl:1: observations of 1 and 1 values"), "{e}");
        std::fs::write(dir.path().join("b.jsonl"), "{\"obs\": [1]}\n").unwrap();
        let e = read_steps(dir.path(), 1, 1).unwrap_err().to_string();
        assert!(e.contains("b.jsonl:1: missing field"), "{e}");
        let e = read_steps(&dir.path().join("none"), 1, 1).unwrap_err().to_string();
        assert!(e.contains("offline input"), "{e}");
    }
}
